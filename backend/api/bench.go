package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// BenchService implements mtm.v1.BenchService, the load test's baseline: an
// RPC behind the same interceptors as the real services that does no work of
// its own. It is not part of Register; RegisterBench mounts it.
type BenchService struct {
	mtmv1connect.UnimplementedBenchServiceHandler
}

var _ mtmv1connect.BenchServiceHandler = (*BenchService)(nil)

// Empty implements mtm.v1.BenchService.Empty: it answers at once for any
// signed-in principal and unauthenticated otherwise. It names no patient, so
// it reads no record and the audit interceptor records nothing.
func (BenchService) Empty(ctx context.Context, _ *connect.Request[mtmv1.EmptyRequest]) (*connect.Response[mtmv1.EmptyResponse], error) {
	if _, ok := auth.PrincipalFrom(ctx); !ok {
		// The auth interceptor already refuses anonymous calls; this holds
		// even when the service is mounted without it.
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("sign in first"))
	}
	return connect.NewResponse(&mtmv1.EmptyResponse{}), nil
}

// RegisterBench mounts BenchService on mux with the same options as
// Register (interceptors, read limits) and the same innermost error
// mapping, so that its cost is the cost of the stack alone. Servers mount it
// only when asked to (mtmd --bench-endpoints); Register never does.
func RegisterBench(mux *http.ServeMux, logger *slog.Logger, opts ...connect.HandlerOption) error {
	if logger == nil {
		return fmt.Errorf("api.RegisterBench: %w", errors.New("missing logger"))
	}
	opts = append(append(opts[:len(opts):len(opts)], Codecs()...), connect.WithInterceptors(NewErrorInterceptor(logger)))
	mux.Handle(mtmv1connect.NewBenchServiceHandler(BenchService{}, opts...))
	return nil
}
