package scenario

import (
	"context"
	"fmt"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/loadtest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Phase names of the "app open that changed nothing" comparison.
const (
	PhaseQuietOpenFull = "quiet app open: full reads"
	PhaseQuietOpenSync = "quiet app open: conditional+feed"
	PhaseQuietOpenFeed = "quiet app open: feed only"
)

// QuietOpen is an app open after which nothing in the record changed, done
// the old way (Full: profile, PML, MAP and thread list read in full), the
// cheap way (Sync: the same reads with the versions the app holds,
// answered not_modified, plus GetChanges from its cursor) and the
// cheapest (Feed: GetChanges alone, which is all an app that holds a
// cursor needs: it reads a part again only when the feed names a change).
// The byte counters count response payload bytes (protobuf-encoded size).
type QuietOpen struct {
	Full, Sync, Feed                loadtest.Phase
	FullBytes, SyncBytes, FeedBytes *atomic.Int64
}

// syncState is what an app keeps between opens.
type syncState struct {
	profile, pml, plan int64
	cursor             string
}

// NewQuietOpen primes the patients in set (signed in) as an app does on
// its first open: one full read of each part and a GetChanges for a
// cursor. withThreads adds the thread list to the full open.
func (e *Env) NewQuietOpen(ctx context.Context, load loadtest.Load, set []int, withThreads bool) (*QuietOpen, error) {
	states := make([]syncState, len(set))
	for k, i := range set {
		_, access := e.patients[i].get()
		c, id := e.device(0, i), e.Pop.Patients[i].ID
		cctx, cancel := loadtest.WithDeadline(ctx)
		prof, err := c.Patient.GetProfile(cctx, loadtest.Authed(&mtmv1.GetProfileRequest{PatientId: id}, access))
		if err == nil {
			var pml *mtmv1.GetMedicationListResponse
			var plan *mtmv1.GetActionPlanResponse
			var ch *mtmv1.GetChangesResponse
			if r, err2 := c.Patient.GetMedicationList(cctx, loadtest.Authed(&mtmv1.GetMedicationListRequest{PatientId: id}, access)); err2 == nil {
				pml = r.Msg
			} else {
				err = err2
			}
			if r, err2 := c.Patient.GetActionPlan(cctx, loadtest.Authed(&mtmv1.GetActionPlanRequest{PatientId: id}, access)); err2 == nil {
				plan = r.Msg
			} else {
				err = err2
			}
			if r, err2 := c.Patient.GetChanges(cctx, loadtest.Authed(&mtmv1.GetChangesRequest{PatientId: id}, access)); err2 == nil {
				ch = r.Msg
			} else {
				err = err2
			}
			if err == nil {
				states[k] = syncState{prof.Msg.GetSyncVersion(), pml.GetSyncVersion(), plan.GetSyncVersion(), ch.GetNextCursor()}
			}
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("priming quiet app opens (is GetChanges served?): %w", err)
		}
	}
	q := &QuietOpen{FullBytes: new(atomic.Int64), SyncBytes: new(atomic.Int64), FeedBytes: new(atomic.Int64)}
	pFull, pSync, pFeed := &picker{set: indexes(len(set))}, &picker{set: indexes(len(set))}, &picker{set: indexes(len(set))}
	q.Full = loadtest.Phase{Name: PhaseQuietOpenFull, Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		k := pFull.next()
		i := set[k]
		_, access := e.patients[i].get()
		c, id := e.device(0, i), e.Pop.Patients[i].ID
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		var n int
		prof, err := c.Patient.GetProfile(ctx, loadtest.Authed(&mtmv1.GetProfileRequest{PatientId: id}, access))
		if err != nil {
			return err
		}
		n += proto.Size(prof.Msg)
		pml, err := c.Patient.GetMedicationList(ctx, loadtest.Authed(&mtmv1.GetMedicationListRequest{PatientId: id}, access))
		if err != nil {
			return err
		}
		n += proto.Size(pml.Msg)
		plan, err := c.Patient.GetActionPlan(ctx, loadtest.Authed(&mtmv1.GetActionPlanRequest{PatientId: id}, access))
		if err != nil {
			return err
		}
		n += proto.Size(plan.Msg)
		if withThreads {
			th, err := c.Msg.ListThreads(ctx, loadtest.Authed(&mtmv1.ListThreadsRequest{PatientId: id}, access))
			if err != nil {
				return err
			}
			n += proto.Size(th.Msg)
		}
		q.FullBytes.Add(int64(n))
		return nil
	}}
	q.Sync = loadtest.Phase{Name: PhaseQuietOpenSync, Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		k := pSync.next()
		i, st := set[k], states[k]
		_, access := e.patients[i].get()
		c, id := e.device(0, i), e.Pop.Patients[i].ID
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		var n int
		ch, err := c.Patient.GetChanges(ctx, loadtest.Authed(&mtmv1.GetChangesRequest{PatientId: id, Cursor: st.cursor}, access))
		if err != nil {
			return err
		}
		n += proto.Size(ch.Msg)
		prof, err := c.Patient.GetProfile(ctx, loadtest.Authed(&mtmv1.GetProfileRequest{PatientId: id, KnownVersion: st.profile}, access))
		if err != nil {
			return err
		}
		n += proto.Size(prof.Msg)
		pml, err := c.Patient.GetMedicationList(ctx, loadtest.Authed(&mtmv1.GetMedicationListRequest{PatientId: id, KnownVersion: st.pml}, access))
		if err != nil {
			return err
		}
		n += proto.Size(pml.Msg)
		plan, err := c.Patient.GetActionPlan(ctx, loadtest.Authed(&mtmv1.GetActionPlanRequest{PatientId: id, KnownVersion: st.plan}, access))
		if err != nil {
			return err
		}
		n += proto.Size(plan.Msg)
		if len(ch.Msg.GetChanges()) > 0 || ch.Msg.GetReloadRequired() || !prof.Msg.GetNotModified() || !pml.Msg.GetNotModified() || !plan.Msg.GetNotModified() {
			return fmt.Errorf("patient %s: something changed in a quiet app open", id)
		}
		q.SyncBytes.Add(int64(n))
		return nil
	}}
	q.Feed = loadtest.Phase{Name: PhaseQuietOpenFeed, Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		k := pFeed.next()
		i, st := set[k], states[k]
		_, access := e.patients[i].get()
		c, id := e.device(0, i), e.Pop.Patients[i].ID
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		ch, err := c.Patient.GetChanges(ctx, loadtest.Authed(&mtmv1.GetChangesRequest{PatientId: id, Cursor: st.cursor}, access))
		if err != nil {
			return err
		}
		if len(ch.Msg.GetChanges()) > 0 || ch.Msg.GetReloadRequired() {
			return fmt.Errorf("patient %s: something changed in a quiet app open", id)
		}
		q.FeedBytes.Add(int64(proto.Size(ch.Msg)))
		return nil
	}}
	return q, nil
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
