// Command mtmctl is the operator's and pharmacist's command line for MTM:
// it bootstraps a pharmacy directly on a stopped server's data, and signs in
// to a running server to enroll patients, create pharmacist accounts, search
// patients and print a patient's medication list and action plan, all over
// the same Connect API the apps use.
//
// Run `mtmctl help` for the commands.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sys := system{
		getenv:        os.Getenv,
		stdin:         os.Stdin,
		stdout:        os.Stdout,
		stderr:        os.Stderr,
		userConfigDir: os.UserConfigDir,
		now:           time.Now,
		http:          &http.Client{},
	}
	if err := run(ctx, os.Args[1:], sys); err != nil {
		fmt.Fprintln(os.Stderr, "mtmctl:", err)
		stop()
		os.Exit(1)
	}
}
