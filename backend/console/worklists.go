package console

import (
	"net/http"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Work lists: the pharmacy's patients due for a CMR (within the next 30
// days), those with a current medicine below 80% PDC, and overdue
// follow-ups, each read from CareService when the page opens.

// worklistsPage is what worklists.html shows.
type worklistsPage struct {
	pageBase
	DueBy            string
	CmrDue           []*mtmv1.CmrDue
	CmrTruncated     bool
	BelowPDC         []belowPDC
	PDCTruncated     bool
	Overdue          []overdueFollowUp
	OverdueTruncated bool
	OverdueNote      string
}

type belowPDC struct {
	Patient *mtmv1.Patient
	Count   int     // current medicines below the threshold
	Lowest  float64 // the lowest PDC among them, 0-1
}

// overdueFollowUp is one line of the overdue list.
type overdueFollowUp struct {
	Name, Path, What, Due string
}

// cmrHorizon is how far ahead the CMR list looks.
const cmrHorizon = 30 * 24 * time.Hour

func (pg *pages) serveWorklists(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data := worklistsPage{pageBase: pg.base(r, "Work lists"), DueBy: pg.now().Add(cmrHorizon).Format("2006-01-02")}
	cmr, err := pg.care.ListPatientsDueForCmr(ctx, connect.NewRequest(&mtmv1.ListPatientsDueForCmrRequest{DueBy: data.DueBy, PageSize: 200}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	data.CmrDue, data.CmrTruncated = cmr.Msg.GetPatients(), cmr.Msg.GetTruncated()
	low, err := pg.care.ListPatientsBelowAdherenceThreshold(ctx, connect.NewRequest(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 200}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	data.PDCTruncated = low.Msg.GetTruncated()
	for _, pa := range low.Msg.GetPatients() {
		b := belowPDC{Patient: pa.GetPatient(), Count: len(pa.GetMedications()), Lowest: 1}
		for _, m := range pa.GetMedications() {
			b.Lowest = min(b.Lowest, m.GetProportionOfDaysCovered())
		}
		data.BelowPDC = append(data.BelowPDC, b)
	}
	data.Overdue, data.OverdueTruncated, data.OverdueNote, err = pg.overdueFollowUps(r)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.render(w, r, http.StatusOK, "worklists", data)
}
