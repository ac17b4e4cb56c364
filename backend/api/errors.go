package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/backend/export/cmspdf"
	"github.com/mtmapp/mtm/backend/store"
)

// Errors the handlers return as they are. Messages are deliberately the
// same for "does not exist" and "not yours" so that callers cannot probe
// for other patients' records.
var (
	errPatientNotFound = connect.NewError(connect.CodeNotFound, errors.New("patient not found"))
	errUnauthenticated = connect.NewError(connect.CodeUnauthenticated, errors.New("not signed in"))
	errBadCredentials  = withReason(connect.CodeUnauthenticated, "invalid credentials", ReasonInvalidCredentials)
	errSessionRevoked  = withReason(connect.CodeUnauthenticated, "session revoked, sign in again", ReasonSessionRevoked)
	errStaffOnly       = connect.NewError(connect.CodePermissionDenied, errors.New("only pharmacy staff may do this"))
	errPatientSideOnly = connect.NewError(connect.CodePermissionDenied, errors.New("only a patient or their caregiver may do this"))
	errCaregiverOnly   = connect.NewError(connect.CodePermissionDenied, errors.New("sign in with a caregiver account to accept an invite"))
)

// errDeviceNotFound is the answer for a push device that is not the caller's.
var errDeviceNotFound = notFound("device")

// ErrorDomain and the reasons are the google.rpc.ErrorInfo details that
// refusals carry, for apps to switch on.
const (
	ErrorDomain = "mtm.app"
	// ReasonInvalidCredentials: wrong or unknown code, password, e-mail,
	// invite or refresh token (or an expired one).
	ReasonInvalidCredentials = "INVALID_CREDENTIALS"
	// ReasonSessionRevoked: the sign-in was revoked (signed out, or a
	// spent refresh token was reused); sign in again.
	ReasonSessionRevoked = "SESSION_REVOKED"
	// ReasonTokenExpired: a watch stream ended because the access token
	// that opened it expired; refresh and watch again from the cursor.
	ReasonTokenExpired = "TOKEN_EXPIRED"
	// ReasonStaleVersion: aborted because the part of the record the
	// change was based on (expected_version) changed since it was read;
	// metadata "current_version" holds its version now. Read it again.
	ReasonStaleVersion = "STALE_VERSION"
)

// staleVersion is the refusal of a change based on a version of a part of
// the record (the profile, a PML row, a MAP item) that is no longer
// current.
func staleVersion(what string, current int64) *connect.Error {
	err := connect.NewError(connect.CodeAborted, fmt.Errorf("the %s changed since you read it (now version %d); read it again", what, current))
	info := &errdetails.ErrorInfo{Reason: ReasonStaleVersion, Domain: ErrorDomain, Metadata: map[string]string{"current_version": strconv.FormatInt(current, 10)}}
	if d, derr := connect.NewErrorDetail(info); derr == nil {
		err.AddDetail(d)
	}
	return err
}

// withReason is an error with a google.rpc.ErrorInfo detail.
func withReason(code connect.Code, message, reason string) *connect.Error {
	err := connect.NewError(code, errors.New(message))
	if d, derr := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}); derr == nil {
		err.AddDetail(d)
	}
	return err
}

// notFound is the answer for a record inside a patient that does not exist.
func notFound(what string) error {
	return connect.NewError(connect.CodeNotFound, errors.New(what+" not found"))
}

// invalidField reports one bad field the same way the validation
// interceptor does (see badRequest).
func invalidField(field, message string) error {
	return badRequest(fieldProblem{field: field, message: message})
}

// badRequest is the one shape of every invalid_argument: the message
// names each field and what it should hold ("time_zone: must be an IANA
// time zone"), a google.rpc.BadRequest detail lists the same field
// violations (a client needs no other types to read them), and a
// buf.validate.Violations detail carries them for clients that read
// protovalidate's shape.
func badRequest(problems ...fieldProblem) *connect.Error {
	vs := &validate.Violations{}
	for _, p := range problems {
		v := &validate.Violation{RuleId: proto.String("mtm.field"), Message: proto.String(p.message)}
		if p.field != "" {
			v.Field = &validate.FieldPath{Elements: []*validate.FieldPathElement{{FieldName: proto.String(p.field)}}}
		}
		vs.Violations = append(vs.Violations, v)
	}
	return badRequestWith(problems, vs)
}

// badRequestWith is badRequest with the buf.validate.Violations given.
func badRequestWith(problems []fieldProblem, vs *validate.Violations) *connect.Error {
	texts := make([]string, 0, len(problems))
	br := &errdetails.BadRequest{}
	for _, p := range problems {
		texts = append(texts, p.text())
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: p.field, Description: p.message})
	}
	err := connect.NewError(connect.CodeInvalidArgument, errors.New(strings.Join(texts, "; ")))
	for _, detail := range []proto.Message{br, vs} {
		if d, derr := connect.NewErrorDetail(detail); derr == nil {
			err.AddDetail(d)
		}
	}
	return err
}

// toConnect maps a domain or store error to the Connect error the caller
// sees. It is the one table from domain errors to codes; anything unknown
// becomes internal with a generic message and is logged (without PHI).
//
// canceled and deadline_exceeded are reserved for the call's own context:
// a timeout inside the server while the caller still has time (the store's
// per-call timeout during a Redis stall) is unavailable, which clients
// retry, and is logged with what failed.
func toConnect(ctx context.Context, log *slog.Logger, op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	var unprintable *cmspdf.UnprintableError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &unprintable):
		// The record, not the request, holds what the PDF cannot print:
		// say which field, so the pharmacy can correct it or send FHIR.
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("the PDF cannot print character %U of %s: %s",
			unprintable.Char, unprintable.Field, unprintable.Reason))
	case errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, store.ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, errors.New("already exists"))
	case errors.Is(err, store.ErrConflict):
		// Stale versions are refused by the handlers (staleVersion); this is
		// the store giving up on a record many writers changed at once.
		return connect.NewError(connect.CodeAborted, errors.New("the record is busy with other changes; retry"))
	case errors.Is(err, store.ErrNotReplicated):
		return connect.NewError(connect.CodeUnavailable, errors.New("storage did not confirm the write on its replicas in time, retry later"))
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		log.WarnContext(ctx, "storage unavailable", slog.String("op", op), slog.String("error", err.Error()))
		return storageUnavailable()
	}
	log.ErrorContext(ctx, "rpc failed", slog.String("op", op), slog.String("error", err.Error()))
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// storageUnavailable is the answer when the store could not serve the call
// in time or at all (Redis down or stalled, the disk full). The audit
// interceptor answers the same when the store refuses the audit event.
func storageUnavailable() error {
	return connect.NewError(connect.CodeUnavailable, errors.New("storage unavailable, retry later"))
}

// NewErrorInterceptor returns the interceptor that turns every error a
// handler returns into a Connect error through toConnect. Install it
// innermost, so that the telemetry interceptor sees the final code.
func NewErrorInterceptor(log *slog.Logger) connect.Interceptor {
	return errorInterceptor{log: log}
}

type errorInterceptor struct{ log *slog.Logger }

func (e errorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	next = refuseUndecodable(next)
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, toConnect(ctx, e.log, req.Spec().Procedure, err)
		}
		return res, nil
	}
}

func (e errorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (e errorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return toConnect(ctx, e.log, conn.Spec().Procedure, next(ctx, decodedConn{conn}))
	}
}
