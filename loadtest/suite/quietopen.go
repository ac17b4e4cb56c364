package suite

import (
	"context"
	"errors"
	"fmt"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// Figures of the quiet app open (issue 15): an app open after which
// nothing changed, full reads versus conditional reads and the changes
// feed, per app open, as ratios measured in the same run.
const (
	FigureQuietBytesRatio = "quiet app open: bytes per open, conditional+feed / full"
	FigureQuietCPURatio   = "quiet app open: server CPU per open, conditional+feed / full"
	FigureFeedBytesRatio  = "quiet app open: bytes per open, feed only / full"
	FigureFeedCPURatio    = "quiet app open: server CPU per open, feed only / full"
)

// quietOpenPatients bounds how many patients the quiet-open phases prime.
const quietOpenPatients = 400

// runQuietOpen interleaves the three ways of a quiet app open for c.Rounds
// rounds and adds their per-open bytes and CPU, and the ratios, to run.
func runQuietOpen(ctx context.Context, c Config, env *scenario.Env, r *loadtest.Runner, load loadtest.Load, set []int, run *loadtest.StoreRun) error {
	// RequireServed ran before: messaging is served, and a server without
	// GetChanges fails the run here rather than leaving the phase out.
	set = set[:min(len(set), quietOpenPatients)]
	q, err := env.NewQuietOpen(ctx, load, set, true)
	if err != nil {
		return fmt.Errorf("quiet app open: %w", err)
	}
	for range c.Rounds {
		if err := r.Run(ctx, q.Full); err != nil {
			return err
		}
		if err := r.Run(ctx, q.Sync); err != nil {
			return err
		}
		if err := r.Run(ctx, q.Feed); err != nil {
			return err
		}
	}
	var full, sync, feed loadtest.PhaseResult
	for _, p := range r.Results() {
		switch p.Name {
		case scenario.PhaseQuietOpenFull:
			full = p
		case scenario.PhaseQuietOpenSync:
			sync = p
		case scenario.PhaseQuietOpenFeed:
			feed = p
		}
	}
	fullOpens, syncOpens, feedOpens := float64(full.Iterations-full.FailedIterations), float64(sync.Iterations-sync.FailedIterations),
		float64(feed.Iterations-feed.FailedIterations)
	if fullOpens == 0 || syncOpens == 0 || feedOpens == 0 {
		return errors.New("quiet app open: no successful open")
	}
	fb, sb := float64(q.FullBytes.Load())/fullOpens, float64(q.SyncBytes.Load())/syncOpens
	run.Figures["quiet app open: response bytes per open, full"] = fb
	run.Figures["quiet app open: response bytes per open, conditional+feed"] = sb
	run.Figures[FigureQuietBytesRatio] = sb / fb
	run.Figures["quiet app open: response bytes per open, feed only"] = float64(q.FeedBytes.Load()) / feedOpens
	run.Figures[FigureFeedBytesRatio] = float64(q.FeedBytes.Load()) / feedOpens / fb
	if full.ServerCPUSeconds > 0 && sync.ServerCPUSeconds > 0 {
		fc, sc := full.ServerCPUSeconds*1e6/fullOpens, sync.ServerCPUSeconds*1e6/syncOpens
		run.Figures["quiet app open: server CPU µs per open, full"] = fc
		run.Figures["quiet app open: server CPU µs per open, conditional+feed"] = sc
		run.Figures[FigureQuietCPURatio] = sc / fc
		run.Figures["quiet app open: server CPU µs per open, feed only"] = feed.ServerCPUSeconds * 1e6 / feedOpens
		run.Figures[FigureFeedCPURatio] = feed.ServerCPUSeconds * 1e6 / feedOpens / fc
	}
	return nil
}
