// Command mtmd is the MTM backend server: the mtm.v1 Connect API (Connect,
// gRPC and gRPC-Web over HTTP/1.1 and h2c) on one port, Prometheus metrics
// and health on an admin port, and the embedded bbolt store unless a Redis
// URL is set.
//
// Run `mtmd --help` for the flags; each has an MTM_* environment variable.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runWith(ctx, os.Args[1:], os.Getenv, os.Stdout, hooks{logger: installProcessLogger}); err != nil {
		startupLogger(os.Args[1:], os.Getenv, os.Stderr).Error("mtmd stopped", "error", err.Error())
		stop()
		os.Exit(1)
	}
}
