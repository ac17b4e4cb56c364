// Command mtmload is the MTM load test: it seeds a population, starts mtmd
// (and a private redis-server) on loopback, drives the public API through
// the generated Connect clients and reports requests/s, latency
// percentiles, errors and server CPU per call, each also as a ratio to an
// empty RPC measured in the same run.
//
//	go run ./cmd/mtmload --smoke     # under a minute
//	go run ./cmd/mtmload             # full run, both stores
//
// Run it from the module root (it builds ./cmd/mtmd unless --mtmd-bin is
// given). `mtmload --help` lists the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mtmapp/mtm/loadtest/procs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The run re-executes this binary as the bare connect-go server, the
	// floor every phase is compared with (and the answers it replays).
	if (len(os.Args) == 3 || len(os.Args) == 4) && os.Args[1] == procs.BareFlag {
		var answers procs.Answers
		if len(os.Args) == 4 {
			a, err := procs.ReadAnswers(os.Args[3])
			if err != nil {
				os.Stderr.WriteString("mtmload: " + err.Error() + "\n")
				os.Exit(1)
			}
			answers = a
		}
		if err := procs.ServeBare(ctx, os.Args[2], answers); err != nil {
			os.Stderr.WriteString("mtmload: " + err.Error() + "\n")
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		os.Stderr.WriteString("mtmload: " + err.Error() + "\n")
		stop()
		os.Exit(1)
	}
}
