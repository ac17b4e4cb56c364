// Package push delivers reminder notifications to phones. A Sender takes a
// batch of Messages, one per device, and reports per message whether it was
// delivered, must be retried later, or went to a token that is no longer
// valid (the caller deletes that device).
//
// Two senders: FCM (Firebase Cloud Messaging through the Firebase Admin
// SDK, firebase.google.com/go/v4/messaging) and Log (zero configuration:
// logs that a push would have been sent).
//
// Messages carry no health details unless the caller put them there: the
// dispatcher writes "You have a medication reminder" unless the patient
// opted in to medicine names, and the data part carries ids only.
package push

import (
	"context"
	"log/slog"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// Message is one push to one device.
type Message struct {
	Token    string // FCM registration token; never logged
	DeviceID string
	// OwnerID is whose device it is: the patient, or a caregiver account
	// (missed-dose alerts).
	OwnerID string
	Kind    store.ReminderKind
	Title   string
	Body    string
	// Data is the data part the app reads: ids only.
	Data map[string]string
	// CollapseKey identifies the occurrence: a second push with the same
	// key replaces the first on the device instead of showing twice.
	CollapseKey string
	// Silent makes it a data-only push that wakes the app in the
	// background and shows nothing (Title and Body are ignored): no
	// notification part, APNs content-available with push type
	// background.
	Silent bool
}

// Outcome is what became of one message.
type Outcome int

// Outcomes.
const (
	// Sent: FCM accepted the message.
	Sent Outcome = iota
	// Retry: not sent this time (quota, unavailable, out of attempts or
	// time); sending it again later may work.
	Retry
	// InvalidToken: FCM says the token is dead (UNREGISTERED,
	// SENDER_ID_MISMATCH, or INVALID_ARGUMENT naming the token); the
	// device should be deleted and the message not sent again.
	InvalidToken
	// Failed: FCM refused the message for a reason retrying will not fix
	// and that says nothing against the device (for example
	// INVALID_ARGUMENT about the payload): the device is kept.
	Failed
)

func (o Outcome) String() string {
	return [...]string{"sent", "retry", "invalid_token", "failed"}[o]
}

// Result is the outcome of one message; Err says why when it was not Sent.
type Result struct {
	Outcome Outcome
	Err     error
	// Code is FCM's error code (one of the Code constants; CodeOK when
	// sent). Senders that do not talk to FCM leave it empty.
	Code string
}

// Sender sends pushes. Send returns one Result per message, in order; it
// returns when every message has an outcome or ctx ends (the rest are
// Retry). Implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, msgs []Message) []Result
}

// Log is the zero-configuration sender: it logs one line per message (kind
// and device id, never the token or the text) and reports it Sent.
type Log struct{ Logger *slog.Logger }

// Send implements Sender.
func (l Log) Send(ctx context.Context, msgs []Message) []Result {
	out := make([]Result, len(msgs))
	for _, m := range msgs {
		l.Logger.InfoContext(ctx, "push (log sender)", slog.String("kind", string(m.Kind)), slog.String("device", m.DeviceID),
			slog.String("collapse_key", m.CollapseKey))
	}
	return out
}

// Style is how a reminder kind is delivered: Android priority and TTL,
// APNs priority; the collapse key is the occurrence.
type Style struct {
	HighPriority bool
	TTL          time.Duration
}

// StyleOf returns the delivery style of a kind: doses and missed-dose
// alerts are time-critical (high priority, short TTL: a dose reminder hours
// late is worse than none); refills and follow-ups can wait a day.
func StyleOf(k store.ReminderKind) Style {
	switch k {
	case store.ReminderDose:
		return Style{HighPriority: true, TTL: time.Hour}
	case store.ReminderMissedDose:
		return Style{HighPriority: true, TTL: 2 * time.Hour}
	default:
		return Style{HighPriority: false, TTL: 24 * time.Hour}
	}
}
