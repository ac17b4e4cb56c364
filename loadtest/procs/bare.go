package procs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// BareFlag is the flag that makes the load generator's binary serve the
// bare handler instead of running a load test (see ServeBare).
const BareFlag = "--bare-server"

// BareCompressMinBytes is the bare server's compression threshold: mtmd's.
const BareCompressMinBytes = 8 << 10

// bareBench is BenchService with nothing in front of it: no interceptors,
// no authentication, no telemetry.
type bareBench struct {
	mtmv1connect.UnimplementedBenchServiceHandler
}

func (bareBench) Empty(context.Context, *connect.Request[mtmv1.EmptyRequest]) (*connect.Response[mtmv1.EmptyResponse], error) {
	return connect.NewResponse(&mtmv1.EmptyResponse{}), nil
}

// ServeBare serves the bare connect-go BenchService (empty handler, no
// interceptors, default options but the compression threshold) on addr, over h2c and HTTP/1.1 like mtmd,
// until ctx ends. It is the floor every phase of the load test is compared
// with: what Connect itself costs per call on this machine.
func ServeBare(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("procs.ServeBare: %w", err)
	}
	mux := http.NewServeMux()
	// Default options but one: responses under 8 KiB are not compressed, as
	// mtmd does (cmd/mtmd compressMinBytes). With connect-go's default every
	// response, even an empty one, is gzipped for a client that accepts it,
	// and the floor would pay for work mtmd skips.
	mux.Handle(mtmv1connect.NewBenchServiceHandler(bareBench{}, connect.WithCompressMinBytes(BareCompressMinBytes)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("procs.ServeBare: %w", err)
	}
	return nil
}

// Bare is a running bare server.
type Bare struct {
	*Process
	URL string
}

// StartBare runs `bin --bare-server ADDR` (bin is a binary that calls
// ServeBare for that flag: mtmload itself) on a free loopback port in dir
// and returns once it answers.
func StartBare(ctx context.Context, bin, dir string) (*Bare, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("procs.StartBare: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := start("bare", bin, dir, []string{BareFlag, addr}, nil)
	if err != nil {
		return nil, err
	}
	b := &Bare{Process: p, URL: "http://" + addr}
	client := mtmv1connect.NewBenchServiceClient(&http.Client{Timeout: time.Second}, b.URL)
	err = p.waitUntil(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := client.Empty(ctx, connect.NewRequest(&mtmv1.EmptyRequest{}))
		return err
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return b, nil
}
