// Command fcmfake runs a local FCM HTTP v1-compatible server (package
// notifications/fcmfake) for trying mtmd's push path without Firebase:
//
//	go run ./cmd/fcmfake --addr 127.0.0.1:9099
//	go run ./cmd/mtmd --push fcm --fcm-project demo --fcm-endpoint http://127.0.0.1:9099
//
// Switches inject FCM's errors: tokens starting with --unregistered-prefix
// are UNREGISTERED; --fail N --fault QUOTA_EXCEEDED --retry-after 5s fails
// the next N sends; --latency adds a delay to every send. GET /fake/stats
// shows the counts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mtmapp/mtm/notifications/fcmfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fcmfake:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fcmfake", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9099", "listen `address`")
	prefix := fs.String("unregistered-prefix", "unregistered-", "tokens starting with this are UNREGISTERED (\"\" disables)")
	latency := fs.Duration("latency", 0, "delay added to every send")
	failN := fs.Int("fail", 0, "fail the next `n` sends with --fault")
	fault := fs.String("fault", "UNAVAILABLE", "fault for --fail: UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT (a bad message), INVALID_TOKEN (INVALID_ARGUMENT naming message.token), QUOTA_EXCEEDED, UNAVAILABLE or INTERNAL")
	retryAfter := fs.Duration("retry-after", 0, "Retry-After sent with --fail faults (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := fcmfake.New(fcmfake.Options{UnregisteredPrefix: *prefix, Latency: *latency})
	s.CountOnly()
	if !fcmfake.Known(fcmfake.Fault(*fault)) {
		return fmt.Errorf("--fault %q: unknown fault", *fault)
	}
	if *failN > 0 {
		s.FailNext(*failN, fcmfake.Fault(*fault), *retryAfter)
	}
	srv := &http.Server{Addr: *addr, Handler: s, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("fcmfake listening", "addr", *addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log.Info("fcmfake stopping", "accepted", s.Accepted(), "refused", s.Refused())
	return srv.Shutdown(shutdown)
}
