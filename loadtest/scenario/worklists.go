package scenario

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/mtmapp/mtm/loadtest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// PhaseWorklists names the work-list phase of one pharmacy size.
func PhaseWorklists(patients int) string {
	return fmt.Sprintf("work lists (%d-patient pharmacy)", patients)
}

// WorklistPage is the page size the work-list phase asks for: a console
// screen.
const WorklistPage = 25

// WorklistCounts are the entries the work-list phase's calls returned.
type WorklistCounts struct {
	Calls, Entries atomic.Int64
}

// Worklists has the pharmacists of one pharmacy open its work lists, one
// list per call in turn (patients due for a CMR, below the adherence
// threshold, overdue follow-ups), the first page of WorklistPage each, on
// every instance in turn. counts receives what came back, so a run can
// show that the pages it compares were full.
func (e *Env) Worklists(load loadtest.Load, pharmacyID string, patients int, counts *WorklistCounts) (loadtest.Phase, error) {
	var pharms []int
	for k, a := range e.Pop.Pharmacists {
		if a.PharmacyID == pharmacyID {
			pharms = append(pharms, k)
		}
	}
	if len(pharms) == 0 {
		return loadtest.Phase{}, fmt.Errorf("scenario.Worklists: no pharmacist of %s", pharmacyID)
	}
	p := &picker{set: pharms}
	var n atomic.Uint64
	return loadtest.Phase{Name: PhaseWorklists(patients), Baseline: PhaseBaseline, Load: load, Iterate: func(ctx context.Context, _ int) error {
		k := p.next()
		i := n.Add(1)
		_, access := e.pharmacists[k].get()
		c := e.device(int(i/3), k)
		ctx, cancel := loadtest.WithDeadline(ctx)
		defer cancel()
		var got int
		switch i % 3 {
		case 0:
			res, err := c.Care.ListPatientsDueForCmr(ctx, loadtest.Authed(&mtmv1.ListPatientsDueForCmrRequest{PageSize: WorklistPage}, access))
			if err != nil {
				return err
			}
			got = len(res.Msg.GetPatients())
		case 1:
			res, err := c.Care.ListPatientsBelowAdherenceThreshold(ctx, loadtest.Authed(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: WorklistPage}, access))
			if err != nil {
				return err
			}
			got = len(res.Msg.GetPatients())
		default:
			res, err := c.Care.ListOverdueFollowUps(ctx, loadtest.Authed(&mtmv1.ListOverdueFollowUpsRequest{PageSize: WorklistPage}, access))
			if err != nil {
				return err
			}
			got = len(res.Msg.GetFollowUps())
		}
		counts.Calls.Add(1)
		counts.Entries.Add(int64(got))
		return nil
	}}, nil
}
