// Package api implements the mtm.v1 Connect services on top of the store
// contract: it checks who is asking and for which patient, turns requests
// into domain changes and domain errors into Connect codes.
package api

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// Config carries the services' dependencies. Store, Tokens and Logger are
// required; zero durations take the defaults below.
type Config struct {
	Store  store.Store
	Tokens *auth.Tokens
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ActivationCodeTTL is how long an activation code works (default 72h).
	ActivationCodeTTL time.Duration
	// RefreshTokenTTL is how long a sign-in lasts without use (default 30 days).
	RefreshTokenTTL time.Duration
	// RefreshGrace is how long after a refresh token is spent a repeat of
	// it (a retry after a lost answer, a concurrent refresh) still gets the
	// same successor instead of revoking the sign-in (default 30s).
	RefreshGrace time.Duration

	// Messaging (see messaging.go). Wake carries wake-ups to watch streams
	// (nil: in this process only, right for the embedded store; several
	// mtmd on Redis need a wake.Redis). ReplyNotifier, when set, pushes
	// pharmacists' replies to the patient side. Metrics, when set, gets the
	// messaging histograms. StreamHeartbeat (default 15s) is how often a
	// watch stream sends a heartbeat and re-reads; EscalateAfter (default
	// 4h) is how long an unclaimed thread waits before the inbox flags it.
	Wake          Waker
	ReplyNotifier ReplyNotifier
	// RecordNotifier, when set, hears of every write by the pharmacy to a
	// patient's record, to wake the patient side's apps (see sync.go).
	RecordNotifier  RecordNotifier
	Metrics         prometheus.Registerer
	StreamHeartbeat time.Duration
	EscalateAfter   time.Duration
	// MaxStreamsPerPrincipal and MaxStreams cap the watch streams open at
	// once in this process for one principal and in all (see streams.go);
	// zero takes the defaults.
	MaxStreamsPerPrincipal int
	MaxStreams             int

	// Reminders keeps the reminder index in step with records (dose
	// schedules, fills, follow-ups, snoozes); nil means a planner with the
	// defaults (see reminders.go).
	Reminders ReminderPlanner

	// answers are the patient-side reads' converted answers (answers.go),
	// one cache for all the services built from this Config by Register
	// (DeletePatient drops an erased patient's); withDefaults makes one
	// when none was shared.
	answers *answerCache
}

// Defaults for Config's zero values.
const (
	DefaultActivationCodeTTL = 72 * time.Hour
	DefaultRefreshTokenTTL   = 30 * 24 * time.Hour
	DefaultRefreshGrace      = 30 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("missing store"))
	}
	if c.Tokens == nil {
		errs = append(errs, errors.New("missing token issuer"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("missing logger"))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ActivationCodeTTL == 0 {
		c.ActivationCodeTTL = DefaultActivationCodeTTL
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if c.MaxStreamsPerPrincipal <= 0 {
		c.MaxStreamsPerPrincipal = DefaultMaxStreamsPerPrincipal
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.RefreshGrace == 0 {
		c.RefreshGrace = DefaultRefreshGrace
	}
	if c.answers == nil {
		c.answers = newAnswerCache(0)
	}
	if c.RefreshGrace < 0 {
		errs = append(errs, errors.New("negative refresh grace"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, nil
}

// PublicProcedures are the procedures that need no access token.
func PublicProcedures() []string {
	return []string{
		mtmv1connect.AuthServiceActivatePatientProcedure,
		mtmv1connect.AuthServiceLoginProcedure,
		mtmv1connect.AuthServiceRefreshProcedure,
		mtmv1connect.AuthServiceLogoutProcedure,
		mtmv1connect.AuthServiceSignUpCaregiverProcedure,
	}
}
