// Package fcmfake is a local server compatible with the part of the
// Firebase Cloud Messaging HTTP v1 API the Firebase Admin SDK for Go uses
// to send: POST /v1/projects/{project}/messages:send (Send and SendEach;
// SendEach is 50 concurrent single sends, there is no batch call). It
// records what it receives and can be told to fail, the way FCM does, with
// UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT (about the message, or
// naming the token), QUOTA_EXCEEDED, UNAVAILABLE or INTERNAL (optionally
// with a Retry-After header), and to add latency.
//
// Tests and the load test start it in-process (New, then httptest or
// Serve); cmd/fcmfake runs it as a command. GET /fake/stats reports the
// counts as JSON.
package fcmfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is an error answer FCM gives.
type Fault string

// Faults, by FCM error code.
const (
	Unregistered     Fault = "UNREGISTERED"
	SenderIDMismatch Fault = "SENDER_ID_MISMATCH"
	// InvalidArgument is FCM's answer to a bad message (payload, TTL,
	// headers): INVALID_ARGUMENT with no detail naming the token.
	InvalidArgument Fault = "INVALID_ARGUMENT"
	// InvalidToken is FCM's answer to a malformed registration token:
	// INVALID_ARGUMENT with a google.rpc.BadRequest detail whose field
	// violation is on "message.token".
	InvalidToken  Fault = "INVALID_TOKEN"
	QuotaExceeded Fault = "QUOTA_EXCEEDED"
	Unavailable   Fault = "UNAVAILABLE"
	Internal      Fault = "INTERNAL"
)

// faultHTTP is how FCM answers each fault: HTTP status, google.rpc status,
// the FcmError code, and whether a BadRequest detail names message.token.
var faultHTTP = map[Fault]struct {
	code       int
	status     string
	fcmCode    string
	namesToken bool
}{
	Unregistered:     {http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", false},
	SenderIDMismatch: {http.StatusForbidden, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", false},
	InvalidArgument:  {http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", false},
	InvalidToken:     {http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", true},
	QuotaExceeded:    {http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", false},
	Unavailable:      {http.StatusServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", false},
	Internal:         {http.StatusInternalServerError, "INTERNAL", "INTERNAL", false},
}

// Known reports whether f is one of the faults the server can inject.
func Known(f Fault) bool { _, ok := faultHTTP[f]; return ok }

// Received is one message the server accepted.
type Received struct {
	Project     string
	Token       string
	Title, Body string
	Data        map[string]string
	CollapseKey string // android.collapse_key
	Tag         string // android.notification.tag
	AndroidPrio string
	AndroidTTL  string
	APNsHeaders map[string]string
	// APNsPayload is apns.payload as sent (e.g. {"aps":{"content-available":1}}).
	APNsPayload map[string]any
	// Notification reports whether the message has a notification part
	// (top-level or Android): false for a silent data message.
	Notification   bool
	ValidateOnly   bool
	ReceivedAtUnix int64
}

// Options configure the server. The zero value accepts everything.
type Options struct {
	// UnregisteredPrefix makes every token starting with it UNREGISTERED
	// ("" disables).
	UnregisteredPrefix string
	// Latency is added to every send.
	Latency time.Duration
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	mu        sync.Mutex
	opts      Options
	tokens    map[string]Fault // per-token faults
	next      []injected       // faults for the next requests, in order
	received  []Received
	keep      bool // keep received messages (not just count them)
	accepted  atomic.Int64
	refused   atomic.Int64
	idCounter atomic.Int64
}

type injected struct {
	fault      Fault
	retryAfter time.Duration
}

// New returns a server that keeps every message it accepts.
func New(opts Options) *Server {
	return &Server{opts: opts, tokens: map[string]Fault{}, keep: true}
}

// CountOnly stops keeping message contents (for load tests); Accepted
// still counts.
func (s *Server) CountOnly() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = false
}

// FailToken makes every send to token fail with f (e.g. Unregistered).
func (s *Server) FailToken(token string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = f
}

// FailNext makes the next n sends (whatever their token) fail with f,
// with a Retry-After header of retryAfter when it is positive (whole
// seconds, rounded up).
func (s *Server) FailNext(n int, f Fault, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.next = append(s.next, injected{f, retryAfter})
	}
}

// SetLatency changes the latency added to every send.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Latency = d
}

// Received returns the accepted messages, in order of arrival.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Accepted is the number of messages accepted; Refused the number of
// sends answered with a fault.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Refused is the number of sends answered with a fault.
func (s *Server) Refused() int64 { return s.refused.Load() }

// Reset forgets received messages, counts and pending faults.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received, s.next, s.tokens = nil, nil, map[string]Fault{}
	s.accepted.Store(0)
	s.refused.Store(0)
}

// wire is the FCM v1 send request.
type wire struct {
	ValidateOnly bool `json:"validate_only"`
	Message      struct {
		Token        string            `json:"token"`
		Topic        string            `json:"topic"`
		Condition    string            `json:"condition"`
		Data         map[string]string `json:"data"`
		Notification *struct {
			Title string `json:"title"`
			Body  string `json:"body"`
		} `json:"notification"`
		Android *struct {
			CollapseKey  string `json:"collapse_key"`
			Priority     string `json:"priority"`
			TTL          string `json:"ttl"`
			Notification *struct {
				Tag string `json:"tag"`
			} `json:"notification"`
		} `json:"android"`
		APNS *struct {
			Headers map[string]string `json:"headers"`
			Payload map[string]any    `json:"payload"`
		} `json:"apns"`
	} `json:"message"`
}

// ServeHTTP implements the FCM v1 send endpoint and GET /fake/stats.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/fake/stats" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{"accepted": s.Accepted(), "refused": s.Refused()})
		return
	}
	project, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/")
	project, ok2 := strings.CutSuffix(project, "/messages:send")
	if r.Method != http.MethodPost || !ok || !ok2 || project == "" || strings.Contains(project, "/") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "", "unknown path "+r.URL.Path, false, 0)
		return
	}
	var req wire
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", string(InvalidArgument), "bad JSON: "+err.Error(), false, 0)
		return
	}
	m := req.Message
	if m.Token == "" && m.Topic == "" && m.Condition == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", string(InvalidArgument), "no target", false, 0)
		return
	}
	s.mu.Lock()
	latency := s.opts.Latency
	fault, retryAfter := s.tokens[m.Token], time.Duration(0)
	if fault == "" && s.opts.UnregisteredPrefix != "" && strings.HasPrefix(m.Token, s.opts.UnregisteredPrefix) {
		fault = Unregistered
	}
	if fault == "" && len(s.next) > 0 {
		fault, retryAfter = s.next[0].fault, s.next[0].retryAfter
		s.next = s.next[1:]
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if fault != "" {
		s.refused.Add(1)
		fh := faultHTTP[fault]
		writeError(w, fh.code, fh.status, fh.fcmCode, "injected "+string(fault), fh.namesToken, retryAfter)
		return
	}
	rec := Received{Project: project, Token: m.Token, Data: m.Data, ValidateOnly: req.ValidateOnly, ReceivedAtUnix: time.Now().UnixNano()}
	if n := m.Notification; n != nil {
		rec.Title, rec.Body, rec.Notification = n.Title, n.Body, true
	}
	if a := m.Android; a != nil {
		rec.CollapseKey, rec.AndroidPrio, rec.AndroidTTL = a.CollapseKey, a.Priority, a.TTL
		if a.Notification != nil {
			rec.Tag, rec.Notification = a.Notification.Tag, true
		}
	}
	if a := m.APNS; a != nil {
		rec.APNsHeaders, rec.APNsPayload = a.Headers, a.Payload
	}
	s.accepted.Add(1)
	s.mu.Lock()
	if s.keep {
		s.received = append(s.received, rec)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name":"projects/%s/messages/fake-%d"}`, project, s.idCounter.Add(1))
}

// writeError answers like FCM: a google.rpc.Status with an FcmError detail
// and, for a bad token, a BadRequest detail naming message.token.
func writeError(w http.ResponseWriter, code int, status, fcmCode, msg string, namesToken bool, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}}
	if fcmCode != "" {
		details := []map[string]any{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode}}
		if namesToken {
			details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.BadRequest",
				"fieldViolations": []map[string]string{{"field": "message.token", "description": "The registration token is not a valid FCM registration token"}}})
		}
		body["error"].(map[string]any)["details"] = details
	}
	json.NewEncoder(w).Encode(body)
}
