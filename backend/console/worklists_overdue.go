package console

import (
	"net/http"
	"sort"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// overdueScanLimit bounds the patients whose reviews the overdue list
// reads while the contract has no pharmacy-wide call for it.
const overdueScanLimit = 200

// overdueFollowUps lists what is overdue. The contract on this branch has
// no call listing follow-ups (ScheduleFollowUp returns only an id), so
// this derives the one overdue follow-up the API shows: a CMR's written
// summary not delivered by its summary_due_by (14 days, as CMS expects),
// read per patient with ListReviews for the first overdueScanLimit
// patients of the pharmacy.
func (pg *pages) overdueFollowUps(r *http.Request) (out []overdueFollowUp, truncated bool, note string, err error) {
	ctx := r.Context()
	note = "Written summaries of CMRs not delivered within 14 days. Scheduled follow-ups are not listed: the API has no call that lists them yet."
	res, err := pg.care.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{PageSize: overdueScanLimit}))
	if err != nil {
		return nil, false, note, err
	}
	truncated = res.Msg.GetNextPageToken() != ""
	today := pg.now().Format("2006-01-02")
	for _, pt := range res.Msg.GetPatients() {
		list, err := pg.care.ListReviews(ctx, connect.NewRequest(&mtmv1.ListReviewsRequest{PatientId: pt.GetId()}))
		if err != nil {
			continue // gone since the search, or moved: not this list's business
		}
		for _, rv := range list.Msg.GetReviews() {
			if due := rv.GetSummaryDueBy(); due != "" && rv.GetSummaryDeliveredOn() == "" && due < today {
				out = append(out, overdueFollowUp{Name: pt.GetFamilyName() + ", " + pt.GetGivenName(),
					Path: patientPath(pt.GetId()) + "/reviews#review-" + rv.GetId(), What: "Written summary of the CMR of " + usDate(rv.GetReviewedOn()), Due: due})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due < out[j].Due })
	return out, truncated, note, nil
}
