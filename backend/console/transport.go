package console

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// clientAddrHeader carries the browser's address from the console to the
// API over the in-process connection. Only that connection honours it: a
// request from the network never reaches the handler that reads it.
const clientAddrHeader = "Mtm-Console-Client-Addr"

// API is how pages reach the data: the generated Connect clients of the
// mtm.v1 services, connected in process to the API's own handler, so that
// every call passes the same interceptors (authentication, audit,
// validation, throttles) as a call from an app. Calls made with a
// Request's context carry the signed-in pharmacist's access token and the
// browser's address.
type API struct {
	Auth      mtmv1connect.AuthServiceClient
	Care      mtmv1connect.CareServiceClient
	Messaging mtmv1connect.MessagingServiceClient
	Patient   mtmv1connect.PatientServiceClient
}

// inProcess serves the API handler on in-memory pipes.
type inProcess struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	srv   *http.Server
}

func newInProcess(api http.Handler, logger *slog.Logger) *inProcess {
	p := &inProcess{conns: make(chan net.Conn), done: make(chan struct{})}
	p.srv = &http.Server{
		Handler:           trustConsoleAddr(api),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() { _ = p.srv.Serve(p) }()
	return p
}

// Accept, Close and Addr make inProcess the in-process server's listener.
func (p *inProcess) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *inProcess) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *inProcess) Addr() net.Addr { return pipeAddr{} }

func (p *inProcess) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, errors.New("console: API connection closed")
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "console" }

// httpClient is a client whose connections reach the in-process server.
func (p *inProcess) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         p.dial,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// trustConsoleAddr puts the browser's address the console sent into the
// request's context, where the API's throttles and audit read it.
func trustConsoleAddr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if a, err := netip.ParseAddr(r.Header.Get(clientAddrHeader)); err == nil {
			ctx = clientaddr.NewContext(ctx, a)
		}
		r.Header.Del(clientAddrHeader)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// caller is who a call is made for: the access token and the browser's
// address.
type caller struct {
	accessToken string
	clientAddr  string
}

type callerKey struct{}

func withCaller(ctx context.Context, c caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerInterceptor adds the caller of the call's context to its headers.
type callerInterceptor struct{}

func (callerInterceptor) set(ctx context.Context, h http.Header) {
	c, _ := ctx.Value(callerKey{}).(caller)
	if c.accessToken != "" {
		h.Set("Authorization", "Bearer "+c.accessToken)
	}
	if c.clientAddr != "" {
		h.Set(clientAddrHeader, c.clientAddr)
	}
}

func (i callerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		i.set(ctx, req.Header())
		return next(ctx, req)
	}
}

func (i callerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		i.set(ctx, conn.RequestHeader())
		return conn
	}
}

func (callerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// newAPI returns clients that reach the in-process server.
func newAPI(p *inProcess) *API {
	hc := p.httpClient()
	const base = "http://console.internal"
	opts := connect.WithInterceptors(callerInterceptor{})
	return &API{
		Auth:      mtmv1connect.NewAuthServiceClient(hc, base, opts),
		Care:      mtmv1connect.NewCareServiceClient(hc, base, opts),
		Messaging: mtmv1connect.NewMessagingServiceClient(hc, base, opts),
		Patient:   mtmv1connect.NewPatientServiceClient(hc, base, opts),
	}
}
