package audit

import (
	"context"
	"errors"
	"sync"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/telemetry"
)

// note is what a handler tells the interceptor about the call: whose data
// it touched. It is filled in during the call, read after it.
type note struct {
	mu        sync.Mutex
	patientID string
	exists    bool
	object    string
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

// patientNamer is any request naming a patient.
type patientNamer interface{ GetPatientId() string }

// NewInterceptor returns the interceptor that writes one event for every
// call that names a patient (in the request, or through Touch). Install it
// inside the auth interceptor (it reads the principal) and outside the
// handlers' error mapping (it reads the final code). If the event cannot be
// written the call fails with unavailable: nothing is answered without its
// audit trail.
func NewInterceptor(r *Recorder) connect.Interceptor { return &interceptor{rec: r} }

type interceptor struct{ rec *Recorder }

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		n := &note{}
		ctx = context.WithValue(ctx, noteKey{}, n)
		res, err := next(ctx, req)
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
		err := next(ctx, conn)
		if aerr := i.record(ctx, conn.Spec().Procedure, n, "", err); aerr != nil {
			return aerr
		}
		return err
	}
}

var errAuditUnavailable = connect.NewError(connect.CodeUnavailable, errors.New("audit trail unavailable, retry later"))

func (i *interceptor) record(ctx context.Context, procedure string, n *note, named string, callErr error) error {
	n.mu.Lock()
	patientID, exists, object := n.patientID, n.exists, n.object
	n.mu.Unlock()
	if patientID == "" {
		patientID = named
	}
	if patientID == "" {
		return nil // the call touched no patient's data
	}
	p, _ := auth.PrincipalFrom(ctx)
	code := "ok"
	if callErr != nil {
		code = connect.CodeOf(callErr).String()
	}
	ev := eventFor(p, patientID, procedure, object, callErr == nil, code, telemetry.RequestID(ctx))
	// A denied call on an existing record enters the patient's report;
	// probes of ids that do not exist go to the archive only.
	if err := i.rec.Record(context.WithoutCancel(ctx), ev, exists); err != nil {
		i.rec.log.ErrorContext(ctx, "audit write failed", "procedure", procedure, "error", err.Error())
		return errAuditUnavailable
	}
	return nil
}
