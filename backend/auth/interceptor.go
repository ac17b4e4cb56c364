package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/telemetry"
)

// interceptor authenticates Connect handler calls; see NewInterceptor.
type interceptor struct {
	tokens *Tokens
	public map[string]bool
}

// NewInterceptor returns a connect.Interceptor for the handler side of unary
// and streaming calls. It reads "Authorization: Bearer <access token>",
// verifies the token with t and puts the Principal into the context
// (PrincipalFrom). Procedures in public (full names such as
// "/mtm.v1.AuthService/Login") run without a principal; a token sent to
// them is ignored. Every other call without exactly one valid bearer token
// fails with connect.CodeUnauthenticated and a generic message that does
// not say what was wrong. Client-side calls pass through untouched. It
// never logs.
func NewInterceptor(t *Tokens, public []string) connect.Interceptor {
	set := make(map[string]bool, len(public))
	for _, p := range public {
		set[p] = true
	}
	return &interceptor{tokens: t, public: set}
}

// WrapUnary implements connect.Interceptor.
func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authenticate(ctx, req.Spec().Procedure, req.Peer().Protocol, req.Header().Values("Authorization"))
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor; it does nothing.
func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.Spec().Procedure, conn.Peer().Protocol, conn.RequestHeader().Values("Authorization"))
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// authenticate returns ctx with the caller's principal, ctx unchanged for a
// public procedure, or an unauthenticated error.
func (i *interceptor) authenticate(ctx context.Context, procedure, protocol string, authorization []string) (context.Context, error) {
	if i.public[procedure] {
		return ctx, nil
	}
	if len(authorization) != 1 {
		return ctx, unauthenticated(protocol)
	}
	token, ok := bearerToken(authorization[0])
	if !ok {
		return ctx, unauthenticated(protocol)
	}
	p, exp, err := i.tokens.VerifyUntil(token)
	if err != nil {
		return ctx, unauthenticated(protocol)
	}
	telemetry.SetActor(ctx, p.Subject)
	return context.WithValue(ctx, principalKey{}, caller{Principal: p, expires: exp}), nil
}

// bearerToken extracts the token of an RFC 6750 "Bearer" credential. The
// scheme is case-insensitive.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// unauthenticated is the one error every refused call gets, whatever the
// reason. The Connect protocol carries error metadata as HTTP headers, so it
// gets the RFC 6750 WWW-Authenticate challenge; gRPC would carry it as a
// trailer, which HTTP/2 forbids for this field.
func unauthenticated(protocol string) error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New("missing or invalid access token"))
	if protocol == connect.ProtocolConnect {
		err.Meta().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	return err
}

// AccessExpiryFrom returns when the access token that authenticated the
// call expires, and false when no token did (public procedures, calls
// made in process). Streams end then, so that a client refreshes its
// token instead of listening on one that no longer holds.
func AccessExpiryFrom(ctx context.Context) (time.Time, bool) {
	c, ok := ctx.Value(principalKey{}).(caller)
	return c.expires, ok && !c.expires.IsZero()
}
