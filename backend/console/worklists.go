package console

import (
	"net/http"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Work lists: the pharmacy's patients due for a CMR within the next 30
// days, those with a current medicine below 80% PDC, and what is overdue,
// each read from CareService when the page opens.

// worklistsData is what worklists.html shows.
type worklistsData struct {
	DueBy            string
	CmrDue           []*mtmv1.CmrDue
	CmrTruncated     bool
	BelowPDC         []belowPDC
	PDCTruncated     bool
	Overdue          []overdueItem
	OverdueTruncated bool
	OverdueNote      string
}

// belowPDC is a patient with current medicines below the threshold.
type belowPDC struct {
	Patient *mtmv1.Patient
	Count   int     // current medicines below the threshold
	Lowest  float64 // the lowest PDC among them, 0-1
}

// overdueItem is one line of the overdue list.
type overdueItem struct {
	Name, Path, What, Due string
}

// cmrHorizon is how far ahead the CMR list looks.
const cmrHorizon = 30 * 24 * time.Hour

func serveWorklists(rq *Request) error {
	ctx, care := rq.Context(), rq.API.Care
	d := worklistsData{DueBy: rq.now().Add(cmrHorizon).Format("2006-01-02")}
	cmr, err := care.ListPatientsDueForCmr(ctx, connect.NewRequest(&mtmv1.ListPatientsDueForCmrRequest{DueBy: d.DueBy, PageSize: 200}))
	if err != nil {
		return err
	}
	d.CmrDue, d.CmrTruncated = cmr.Msg.GetPatients(), cmr.Msg.GetTruncated()
	low, err := care.ListPatientsBelowAdherenceThreshold(ctx, connect.NewRequest(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 200}))
	if err != nil {
		return err
	}
	d.PDCTruncated = low.Msg.GetTruncated()
	for _, pa := range low.Msg.GetPatients() {
		b := belowPDC{Patient: pa.GetPatient(), Count: len(pa.GetMedications()), Lowest: 1}
		for _, m := range pa.GetMedications() {
			b.Lowest = min(b.Lowest, m.GetProportionOfDaysCovered())
		}
		d.BelowPDC = append(d.BelowPDC, b)
	}
	if d.Overdue, d.OverdueTruncated, d.OverdueNote, err = overdue(rq); err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "worklists.html", View{Title: "Work lists", Nav: "worklists", Data: d})
}
