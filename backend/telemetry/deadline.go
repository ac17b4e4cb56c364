package telemetry

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
)

// DeadlineClamp bounds how long a handled RPC may run: a call that arrives
// without a deadline, or with one further away than the maximum, runs under
// the maximum instead. A nearer deadline set by the caller is kept. When the
// clamp fires the handler's context ends and the caller gets
// deadline_exceeded.
type DeadlineClamp struct {
	unary  time.Duration
	stream time.Duration
}

var _ connect.Interceptor = (*DeadlineClamp)(nil)

// NewDeadlineClamp returns a clamp with maximum unaryMax for unary RPCs and
// streamMax for streaming RPCs. unaryMax must be positive. streamMax zero
// leaves streams unbounded: long-lived watch streams end when the client
// goes away or the server drains them, not after a request timeout.
func NewDeadlineClamp(unaryMax, streamMax time.Duration) (*DeadlineClamp, error) {
	if unaryMax <= 0 {
		return nil, fmt.Errorf("telemetry.NewDeadlineClamp: unary maximum must be positive, got %s", unaryMax)
	}
	if streamMax < 0 {
		return nil, fmt.Errorf("telemetry.NewDeadlineClamp: stream maximum must not be negative, got %s", streamMax)
	}
	return &DeadlineClamp{unary: unaryMax, stream: streamMax}, nil
}

// WrapUnary implements connect.Interceptor.
func (d *DeadlineClamp) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		// A caller's nearer deadline is kept as it is (Connect put it into
		// ctx from the request's timeout header): no context, no timer.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d.unary {
			return next(ctx, req)
		}
		ctx, cancel := context.WithTimeout(ctx, d.unary)
		defer cancel()
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor; client streams pass
// through.
func (d *DeadlineClamp) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (d *DeadlineClamp) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	if d.stream == 0 {
		return next
	}
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, cancel := context.WithTimeout(ctx, d.stream)
		defer cancel()
		return next(ctx, conn)
	}
}
