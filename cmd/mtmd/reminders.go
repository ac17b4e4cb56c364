package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/telemetry/tracing"
	"github.com/mtmapp/mtm/notifications/dispatch"
	"github.com/mtmapp/mtm/notifications/push"
	"github.com/mtmapp/mtm/notifications/pushtext"
	"github.com/mtmapp/mtm/notifications/refresh"
	"github.com/mtmapp/mtm/notifications/replies"
)

// reminderFlags configure reminders and push delivery.
type reminderFlags struct {
	Push             string        // log or fcm
	FCMProject       string        // Firebase project id
	FCMEndpoint      string        // FCM base URL (the local fake); "" is real FCM
	FCMCredentials   string        // service-account key; "" is Application Default Credentials
	RefillLead       time.Duration // refill reminder this long before the supply runs out
	MissedDoseWindow time.Duration // caregivers alerted when a dose is unconfirmed this long
	Batch            int           // reminders claimed per batch
	Lease            time.Duration // how long a claimed batch stays with this instance
	Renew            time.Duration // how often the leases of a batch in progress are extended
	Workers          int           // shards worked at once (0: the default)
}

func bindReminderFlags(fs *flag.FlagSet, r *reminderFlags) {
	fs.StringVar(&r.Push, "push", "log", "push sender: log (a log line per push, no setup) or fcm (Firebase Cloud Messaging)")
	fs.StringVar(&r.FCMProject, "fcm-project", "", "Firebase project `id` (required with --push fcm)")
	fs.StringVar(&r.FCMEndpoint, "fcm-endpoint", "", "FCM base `URL` instead of https://fcm.googleapis.com, e.g. http://127.0.0.1:9099 for cmd/fcmfake (sent unauthenticated)")
	fs.StringVar(&r.FCMCredentials, "fcm-credentials", "", "service-account JSON key `file` for FCM (default: Application Default Credentials, e.g. GOOGLE_APPLICATION_CREDENTIALS)")
	fs.DurationVar(&r.RefillLead, "refill-lead", dispatch.DefaultRefillLead, "refill reminders fire this long before the supply runs out (whole days count on the calendar)")
	fs.DurationVar(&r.MissedDoseWindow, "missed-dose-window", dispatch.DefaultMissedDoseWindow, "caregivers with missed-dose alerts hear of a dose not confirmed within this window")
	fs.IntVar(&r.Batch, "dispatch-batch", dispatch.DefaultBatch, "reminders the dispatcher claims per batch")
	fs.DurationVar(&r.Lease, "dispatch-lease", dispatch.DefaultLease, "how long a claimed batch stays with this instance before another may send it: the longest a crashed instance's reminders wait")
	fs.DurationVar(&r.Renew, "dispatch-renew", dispatch.DefaultRenew, "how often the leases of a batch being sent are extended (at most half of --dispatch-lease)")
	fs.IntVar(&r.Workers, "dispatch-workers", 0, "reminder shards worked at once (0: the default, 4)")
}

// problems lists what is wrong with the reminder flags.
func (r reminderFlags) problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch r.Push {
	case "log":
	case "fcm":
		if r.FCMProject == "" {
			add("--fcm-project/MTM_FCM_PROJECT: required with --push fcm")
		}
	default:
		add("--push/MTM_PUSH %q: must be log or fcm", r.Push)
	}
	if r.FCMEndpoint != "" {
		if u, err := url.Parse(r.FCMEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("--fcm-endpoint/MTM_FCM_ENDPOINT %q: must be an http(s) URL", r.FCMEndpoint)
		}
	}
	if r.RefillLead < 0 || r.RefillLead > 60*24*time.Hour {
		add("--refill-lead/MTM_REFILL_LEAD %s: must be between 0 and 1440h (60 days)", r.RefillLead)
	}
	if r.MissedDoseWindow < 5*time.Minute || r.MissedDoseWindow > 24*time.Hour {
		add("--missed-dose-window/MTM_MISSED_DOSE_WINDOW %s: must be between 5m and 24h", r.MissedDoseWindow)
	}
	if r.Batch < 1 || r.Batch > 5000 {
		add("--dispatch-batch/MTM_DISPATCH_BATCH %d: must be between 1 and 5000", r.Batch)
	}
	if r.Lease < 10*time.Second || r.Lease > time.Hour {
		add("--dispatch-lease/MTM_DISPATCH_LEASE %s: must be between 10s and 1h", r.Lease)
	}
	if r.Renew < time.Second || r.Renew*2 > r.Lease {
		add("--dispatch-renew/MTM_DISPATCH_RENEW %s: must be at least 1s and at most half of --dispatch-lease (%s)", r.Renew, r.Lease)
	}
	if r.Workers < 0 {
		add("--dispatch-workers/MTM_DISPATCH_WORKERS %d: must not be negative", r.Workers)
	}
	return out
}

// reminders is the push sender, the dispatcher and the reply notifier of
// one mtmd.
type reminders struct {
	dispatcher *dispatch.Dispatcher
	replies    *replies.Notifier
	refresh    *refresh.Notifier // silent pushes when the pharmacy changes a record
	logger     *slog.Logger
}

// newReminders builds the sender the flags name and the dispatcher.
func newReminders(ctx context.Context, r reminderFlags, st store.Store, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer,
	tr *tracing.Tracing) (*reminders, error) {
	if err := pushtext.Check(); err != nil {
		return nil, err // a bad push-text catalog stops the server at start
	}
	var sender push.Sender = push.Log{Logger: logger}
	if r.Push == "fcm" {
		fcm, err := push.NewFCM(ctx, push.FCMConfig{ProjectID: r.FCMProject, Endpoint: r.FCMEndpoint, CredentialsFile: r.FCMCredentials, Logger: logger, Now: now,
			Registerer: reg, Tracer: tr.Tracer("github.com/mtmapp/mtm/notifications/push")})
		if err != nil {
			return nil, err
		}
		sender = fcm
	}
	d, err := dispatch.New(dispatch.Config{Store: st, Sender: sender, Logger: logger, Now: now, Batch: r.Batch, Lease: r.Lease, Renew: r.Renew, Workers: r.Workers,
		Registerer: reg, Tracer: tr.Tracer("github.com/mtmapp/mtm/notifications/dispatch"),
		Planner: dispatch.PlannerConfig{RefillLead: r.RefillLead, MissedDoseWindow: r.MissedDoseWindow}})
	if err != nil {
		return nil, err
	}
	rn, err := replies.New(st, sender, logger, now)
	if err != nil {
		return nil, err
	}
	fn, err := refresh.New(st, sender, logger, refresh.Options{Now: now})
	if err != nil {
		return nil, err
	}
	return &reminders{dispatcher: d, replies: rn, refresh: fn, logger: logger}, nil
}

// start runs the dispatcher until ctx ends; the returned function waits
// for it to drain the batches in flight.
func (r *reminders) start(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.dispatcher.Run(ctx); err != nil {
			r.logger.Error("reminder dispatcher stopped", "error", err.Error())
		}
	}()
	return func() {
		<-done
		r.replies.Wait()
		r.refresh.Wait()
		r.logger.Info("reminder dispatcher and reply pushes drained")
	}
}
