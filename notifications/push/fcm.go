package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/api/option"
)

// MaxBatch is the most messages one SendEach call takes.
const MaxBatch = 500

// FCMConfig configures the FCM sender. Only ProjectID is required; real FCM
// authenticates with Google Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS naming a service-account JSON key, or the
// metadata server on Google Cloud) unless CredentialsFile is set.
type FCMConfig struct {
	ProjectID string
	// CredentialsFile is a service-account JSON key; "" uses Application
	// Default Credentials.
	CredentialsFile string
	// Endpoint, when set, replaces https://fcm.googleapis.com (the SDK's
	// option.WithEndpoint, with "/v1" appended) and turns authentication
	// off: for the local FCM-compatible server (package fcmfake).
	Endpoint string
	// HTTPClient is used with Endpoint; nil means a client tuned for many
	// concurrent requests to one host.
	HTTPClient *http.Client
	// MaxAttempts bounds SendEach calls per message within one Send
	// (default 5); a message still failing is reported Retry.
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the exponential backoff with full
	// jitter after UNAVAILABLE or INTERNAL (defaults 500ms and 30s); a
	// Retry-After header wins when longer.
	BaseBackoff, MaxBackoff time.Duration
	// QuotaPause is how long the whole sender pauses after QUOTA_EXCEEDED
	// without a Retry-After header (default 60s); with one, the header
	// says how long.
	QuotaPause time.Duration
	// Logger receives operational events (never tokens or message text).
	Logger *slog.Logger
	// Registerer, when set, gets the sender's metrics (MetricResponses,
	// MetricResults, MetricPaused, MetricPauses).
	Registerer prometheus.Registerer
	// Now, Sleep and Rand are the clock, the wait and the jitter source
	// (defaults: time.Now, a timer honouring ctx, math/rand/v2).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
	// Tracer, when set, gives every Send a span ("fcm.send": message
	// count and results by outcome) and every SendEach call a child span
	// ("fcm.send_each": attempt, message count); never tokens or text.
	Tracer trace.Tracer
}

// FCM sends through one shared Firebase messaging client. It is safe for
// concurrent use.
type FCM struct {
	client  *messaging.Client
	cfg     FCMConfig
	metrics *metrics

	mu          sync.Mutex
	pausedUntil time.Time // QUOTA_EXCEEDED: the whole sender waits
}

var _ Sender = (*FCM)(nil)

// NewFCM builds the sender and its Firebase client.
func NewFCM(ctx context.Context, cfg FCMConfig) (*FCM, error) {
	if cfg.ProjectID == "" {
		return nil, errors.New("push.NewFCM: missing project id")
	}
	if cfg.Logger == nil {
		return nil, errors.New("push.NewFCM: missing logger")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.QuotaPause <= 0 {
		cfg.QuotaPause = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	var opts []option.ClientOption
	switch {
	case cfg.Endpoint != "":
		hc := cfg.HTTPClient
		if hc == nil {
			hc = NewHTTPClient()
		}
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(cfg.Endpoint, "/")+"/v1"), option.WithoutAuthentication(), option.WithHTTPClient(hc))
	case cfg.CredentialsFile != "":
		opts = append(opts, option.WithCredentialsFile(cfg.CredentialsFile)) //nolint:staticcheck // a service-account key file is the documented setup
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("push.NewFCM: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("push.NewFCM: %w", err)
	}
	f := &FCM{client: client, cfg: cfg}
	if f.metrics, err = newMetrics(cfg.Registerer, f.pausedNow); err != nil {
		return nil, fmt.Errorf("push.NewFCM: %w", err)
	}
	return f, nil
}

// NewHTTPClient returns an HTTP client that keeps enough idle connections
// for SendEach's 50 concurrent requests to one host.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 512
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// Client is the shared Firebase messaging client (for baselines in tests).
func (f *FCM) Client() *messaging.Client { return f.client }

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Send implements Sender: SendEach in batches of MaxBatch, retrying the
// messages that failed with UNAVAILABLE, INTERNAL or QUOTA_EXCEEDED.
// Only answers that mean the token is dead are InvalidToken:
// UNREGISTERED, SENDER_ID_MISMATCH, and INVALID_ARGUMENT whose detail
// names message.token. Any other INVALID_ARGUMENT (a bad payload) is
// Failed, logged and counted, and the device is kept.
func (f *FCM) Send(ctx context.Context, msgs []Message) []Result {
	var span trace.Span
	if f.cfg.Tracer != nil {
		ctx, span = f.cfg.Tracer.Start(ctx, "fcm.send", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.Int("mtm.push.messages", len(msgs))))
	}
	out := make([]Result, len(msgs))
	for start := 0; start < len(msgs); start += MaxBatch {
		end := min(start+MaxBatch, len(msgs))
		f.sendBatch(ctx, msgs[start:end], out[start:end])
	}
	refused := map[string]int{} // code → messages refused with the device kept
	for i, r := range out {
		code := r.Code
		if code == "" {
			code = CodeNotSent
		}
		f.metrics.results.WithLabelValues(r.Outcome.String(), code).Inc()
		if r.Outcome == Failed {
			refused[code]++
			if refused[code] == 1 {
				f.cfg.Logger.WarnContext(ctx, "fcm refused a push: device kept", slog.String("code", code), slog.String("kind", string(msgs[i].Kind)),
					slog.String("device", msgs[i].DeviceID), slog.String("error", r.Err.Error()))
			}
		}
	}
	for code, n := range refused {
		if n > 1 {
			f.cfg.Logger.WarnContext(ctx, "fcm refused pushes: devices kept", slog.String("code", code), slog.Int("messages", n))
		}
	}
	if span != nil {
		var byOutcome [4]int
		for _, r := range out {
			if int(r.Outcome) < len(byOutcome) {
				byOutcome[r.Outcome]++
			}
		}
		span.SetAttributes(attribute.Int("mtm.push.sent", byOutcome[Sent]), attribute.Int("mtm.push.retry", byOutcome[Retry]),
			attribute.Int("mtm.push.invalid_token", byOutcome[InvalidToken]), attribute.Int("mtm.push.failed", byOutcome[Failed]))
		span.End()
	}
	return out
}

// pausedNow is 1 while a QUOTA_EXCEEDED pause runs (the paused gauge).
func (f *FCM) pausedNow() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pausedUntil.After(f.cfg.Now()) {
		return 1
	}
	return 0
}

func (f *FCM) sendBatch(ctx context.Context, msgs []Message, out []Result) {
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
		out[i] = Result{Outcome: Retry, Err: errors.New("not attempted")}
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt >= f.cfg.MaxAttempts {
			return
		}
		if err := f.waitPause(ctx); err != nil {
			return
		}
		batch := make([]*messaging.Message, len(pending))
		for j, i := range pending {
			batch[j] = FCMMessage(msgs[i], f.cfg.Now())
		}
		resp, err := f.sendEach(ctx, batch, attempt)
		if err != nil { // the SDK refused the batch before sending
			for _, i := range pending {
				out[i] = Result{Outcome: Failed, Err: err, Code: CodeOther}
			}
			return
		}
		var again []int
		var wait time.Duration
		quota := false
		for j, r := range resp.Responses {
			i := pending[j]
			code := fcmCode(r.Error)
			f.metrics.responses.WithLabelValues(code).Inc()
			if r.Success {
				out[i] = Result{Outcome: Sent, Code: CodeOK}
				continue
			}
			switch {
			case code == CodeUnregistered, code == CodeSenderIDMismatch, code == CodeInvalidArgument && namesToken(r.Error):
				out[i] = Result{Outcome: InvalidToken, Err: r.Error, Code: code}
			case code == CodeInvalidArgument:
				out[i] = Result{Outcome: Failed, Err: r.Error, Code: code}
			case messaging.IsQuotaExceeded(r.Error):
				quota = true
				pause := f.cfg.QuotaPause
				if d, ok := f.retryAfter(r.Error); ok {
					pause = d
				}
				wait = max(wait, pause)
				out[i], again = Result{Outcome: Retry, Err: r.Error, Code: code}, append(again, i)
			case messaging.IsUnavailable(r.Error), messaging.IsInternal(r.Error), errorutils.IsUnavailable(r.Error),
				errorutils.IsInternal(r.Error), errorutils.IsDeadlineExceeded(r.Error), errorutils.IsUnknown(r.Error):
				hint, _ := f.retryAfter(r.Error)
				wait = max(wait, f.backoff(attempt), hint)
				out[i], again = Result{Outcome: Retry, Err: r.Error, Code: code}, append(again, i)
			default:
				out[i] = Result{Outcome: Failed, Err: r.Error, Code: code}
			}
		}
		if ctx.Err() != nil {
			return
		}
		pending = again
		if len(pending) == 0 || attempt+1 >= f.cfg.MaxAttempts {
			return
		}
		if quota {
			f.pause(wait)
			f.metrics.pauses.Inc()
			f.cfg.Logger.WarnContext(ctx, "fcm quota exceeded: sender paused", slog.Duration("pause", wait), slog.Int("messages", len(pending)))
			continue
		}
		f.cfg.Logger.InfoContext(ctx, "fcm unavailable: backing off", slog.Duration("wait", wait), slog.Int("messages", len(pending)))
		if err := f.cfg.Sleep(ctx, wait); err != nil {
			return
		}
	}
}

// sendEach is one SendEach call, in a span of its own when tracing.
func (f *FCM) sendEach(ctx context.Context, batch []*messaging.Message, attempt int) (*messaging.BatchResponse, error) {
	if f.cfg.Tracer == nil {
		return f.client.SendEach(ctx, batch)
	}
	ctx, span := f.cfg.Tracer.Start(ctx, "fcm.send_each", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("mtm.push.attempt", attempt+1), attribute.Int("mtm.push.messages", len(batch))))
	defer span.End()
	resp, err := f.client.SendEach(ctx, batch)
	if err != nil {
		span.SetStatus(codes.Error, "batch refused before sending")
	} else {
		span.SetAttributes(attribute.Int("mtm.push.failures", resp.FailureCount))
	}
	return resp, err
}

// backoff is full-jitter exponential backoff for attempt (0-based).
func (f *FCM) backoff(attempt int) time.Duration {
	d := f.cfg.BaseBackoff << min(attempt, 20)
	d = min(d, f.cfg.MaxBackoff)
	return time.Duration(f.cfg.Rand()*float64(d/2)) + d/2
}

// retryAfter is the error's Retry-After header (seconds or an HTTP date).
func (f *FCM) retryAfter(err error) (time.Duration, bool) {
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return 0, false
	}
	h := resp.Header.Get("Retry-After")
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(f.cfg.Now()), 0), true
	}
	return 0, false
}

// pause stops every Send of this sender for d (extending a running pause).
func (f *FCM) pause(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if until := f.cfg.Now().Add(d); until.After(f.pausedUntil) {
		f.pausedUntil = until
	}
}

// waitPause waits out a sender-wide pause.
func (f *FCM) waitPause(ctx context.Context) error {
	for {
		f.mu.Lock()
		left := f.pausedUntil.Sub(f.cfg.Now())
		f.mu.Unlock()
		if left <= 0 {
			return ctx.Err()
		}
		if err := f.cfg.Sleep(ctx, left); err != nil {
			return err
		}
	}
}

// FCMMessage is the FCM message the sender sends for m at now: the
// occurrence as collapse key, Android notification tag and APNs collapse
// id, so that a re-send replaces what the device shows; priority and TTL by
// kind (StyleOf).
func FCMMessage(m Message, now time.Time) *messaging.Message {
	if m.Silent {
		return silentMessage(m, now)
	}
	st := StyleOf(m.Kind)
	ttl := st.TTL
	android := &messaging.AndroidConfig{
		CollapseKey: m.CollapseKey,
		Priority:    "normal",
		TTL:         &ttl,
		Notification: &messaging.AndroidNotification{
			Tag:       m.CollapseKey,
			ChannelID: "reminders",
		},
	}
	apnsPriority := "5"
	if st.HighPriority {
		android.Priority = "high"
		apnsPriority = "10"
	}
	headers := map[string]string{
		"apns-priority":   apnsPriority,
		"apns-push-type":  "alert",
		"apns-expiration": strconv.FormatInt(now.Add(st.TTL).Unix(), 10),
	}
	if m.CollapseKey != "" {
		headers["apns-collapse-id"] = m.CollapseKey
	}
	return &messaging.Message{
		Token:        m.Token,
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body},
		Data:         m.Data,
		Android:      android,
		APNS: &messaging.APNSConfig{
			Headers: headers,
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Sound: "default", ThreadID: string(m.Kind)}},
		},
	}
}

// silentMessage is the data-only form of m: no notification on either
// platform, normal priority (Android) and priority 5 with push type
// background and content-available (APNs, which allows no higher for a
// silent push), collapsed by m.CollapseKey.
func silentMessage(m Message, now time.Time) *messaging.Message {
	ttl := StyleOf(m.Kind).TTL
	headers := map[string]string{
		"apns-priority":   "5",
		"apns-push-type":  "background",
		"apns-expiration": strconv.FormatInt(now.Add(ttl).Unix(), 10),
	}
	if m.CollapseKey != "" {
		headers["apns-collapse-id"] = m.CollapseKey
	}
	return &messaging.Message{
		Token:   m.Token,
		Data:    m.Data,
		Android: &messaging.AndroidConfig{CollapseKey: m.CollapseKey, Priority: "normal", TTL: &ttl},
		APNS: &messaging.APNSConfig{
			Headers: headers,
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ContentAvailable: true}},
		},
	}
}
