package audit

import (
	"context"
	"errors"
	"sync"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/telemetry"
)

// note is what a handler tells the interceptor about the call: whose data
// it touched. It is filled in during the call, read after it.
type note struct {
	mu        sync.Mutex
	patientID string
	exists    bool
	granted   bool
	object    string
	// Set by Failed and SignedIn on the public sign-in paths.
	reason string
	actor  *auth.Principal
}

type noteKey struct{}

// Touch records, from inside a handler, that the call concerns patientID's
// existing record (so the event enters that patient's report). object
// names the record inside it, never with a medicine name; it may be "".
func Touch(ctx context.Context, patientID, object string) {
	n, ok := ctx.Value(noteKey{}).(*note)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.patientID, n.exists = patientID, true
	if object != "" {
		n.object = object
	}
}

// Granted records, from inside a handler, that the caller passed the access
// check for the patient the call touches: if the call then fails, the
// report shows a failed call, not a denied one.
func Granted(ctx context.Context) {
	n, ok := ctx.Value(noteKey{}).(*note)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.granted = true
}

// Failed records, from inside a handler, why a sign-in, activation or
// invite redemption failed (a short fixed word such as "wrong_password",
// never what the caller typed). The call's event then goes to the archive
// even when it names no patient; actorID (the account tried, when known)
// and patientID (the patient an activation code belongs to) identify it
// there, and neither puts the event in a patient's report.
func Failed(ctx context.Context, reason, actorID, patientID string) {
	n, ok := ctx.Value(noteKey{}).(*note)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reason = reason
	if actorID != "" {
		n.actor = &auth.Principal{Subject: actorID}
	}
	if patientID != "" && n.patientID == "" {
		n.patientID = patientID
	}
}

// SignedIn records, from inside a public handler, who the call signed in:
// its events and its log line name p as the actor.
func SignedIn(ctx context.Context, p auth.Principal) {
	telemetry.SetActor(ctx, p.Subject)
	n, ok := ctx.Value(noteKey{}).(*note)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.actor = &p
}

// patientNamer is any request naming a patient.
type patientNamer interface{ GetPatientId() string }

// NewInterceptor returns the interceptor that writes one event for every
// call that names a patient (in the request, or through Touch). Install it
// inside the auth interceptor (it reads the principal) and outside the
// handlers' error mapping (it reads the final code). If the event cannot be
// written the call fails with unavailable: nothing is answered without its
// audit trail. With Recorder.LimitRefusals, a caller past the refusal
// budget gets resource_exhausted before any handler runs.
func NewInterceptor(r *Recorder) connect.Interceptor { return &interceptor{rec: r} }

type interceptor struct{ rec *Recorder }

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		n := &note{}
		ctx = context.WithValue(ctx, noteKey{}, n)
		var res connect.AnyResponse
		err := i.rec.refusals.check(principalOf(ctx))
		if err == nil {
			res, err = next(ctx, req)
		}
		named := ""
		if pn, ok := req.Any().(patientNamer); ok {
			named = pn.GetPatientId()
		}
		if aerr := i.record(ctx, req.Spec().Procedure, n, named, err); aerr != nil {
			return nil, aerr
		}
		return res, err
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		n := &note{}
		ctx = context.WithValue(ctx, noteKey{}, n)
		err := i.rec.refusals.check(principalOf(ctx))
		if err == nil {
			err = next(ctx, conn)
		}
		if aerr := i.record(ctx, conn.Spec().Procedure, n, "", err); aerr != nil {
			return aerr
		}
		return err
	}
}

// auditFailed is the answer when the event of a call could not be written.
// It names the part that failed: the store (the same answer the handlers
// give when the store fails, e.g. Redis down or the disk full) or the
// archive. When the call itself already failed as unavailable, that first
// failure is the answer.
func auditFailed(callErr, err error) error {
	if connect.CodeOf(callErr) == connect.CodeUnavailable {
		return callErr
	}
	if errors.Is(err, ErrArchive) {
		return connect.NewError(connect.CodeUnavailable, errors.New("audit archive unavailable, retry later"))
	}
	return connect.NewError(connect.CodeUnavailable, errors.New("storage unavailable (audit trail), retry later"))
}

func (i *interceptor) record(ctx context.Context, procedure string, n *note, named string, callErr error) error {
	n.mu.Lock()
	patientID, exists, granted, object, reason, actor := n.patientID, n.exists, n.granted, n.object, n.reason, n.actor
	n.mu.Unlock()
	if patientID == "" {
		patientID = named
	}
	p := principalOf(ctx)
	if actor != nil {
		p = *actor
	}
	code, codeName := connect.Code(0), "ok"
	if callErr != nil {
		code = connect.CodeOf(callErr)
		codeName = code.String()
	}
	if patientID == "" && reason == "" {
		return nil // the call touched no patient's data and failed no sign-in
	}
	outcome := outcomeOf(p, patientID, granted, code, callErr)
	if outcome == store.OutcomeDenied && reason == "" {
		// Counted whether or not the record exists: probing ids spends the
		// same budget. (Failed sign-ins have budgets of their own.)
		i.rec.refusals.denied(context.WithoutCancel(ctx), p)
	}
	ev := eventFor(p, patientID, procedure, object, outcome, codeName, telemetry.RequestID(ctx), clientaddr.String(ctx))
	ev.Reason = reason
	// A denied call on an existing record enters the patient's report (its
	// refusal window); probes of ids that do not exist, failed sign-ins,
	// and calls throttled before any handler ran, go to the archive only.
	if err := i.rec.Record(context.WithoutCancel(ctx), ev, exists); err != nil {
		i.rec.log.ErrorContext(ctx, "audit write failed", "procedure", procedure, "error", err.Error())
		return auditFailed(callErr, err)
	}
	return nil
}

func principalOf(ctx context.Context) auth.Principal {
	p, _ := auth.PrincipalFrom(ctx)
	return p
}
