package console

import (
	"sort"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// overdueScanLimit bounds the patients whose reviews the overdue list
// reads while the contract has no pharmacy-wide call for it.
const overdueScanLimit = 200

// overdue lists what is overdue. The contract here has no call that lists
// scheduled follow-ups (ScheduleFollowUp answers only an id), so this
// derives the overdue follow-up the API does show: a CMR's written summary
// not delivered by its summary_due_by (14 days after the review, as CMS
// expects), read with ListReviews for the first overdueScanLimit patients
// of the pharmacy.
func overdue(rq *Request) (out []overdueItem, truncated bool, note string, err error) {
	ctx := rq.Context()
	note = "Written summaries of CMRs not delivered within 14 days. Scheduled follow-up calls are not listed yet: the API has no call that lists them."
	res, err := rq.API.Care.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{PageSize: overdueScanLimit}))
	if err != nil {
		return nil, false, note, err
	}
	truncated = res.Msg.GetNextPageToken() != ""
	today := rq.now().Format("2006-01-02")
	for _, pt := range res.Msg.GetPatients() {
		list, err := rq.API.Care.ListReviews(ctx, connect.NewRequest(&mtmv1.ListReviewsRequest{PatientId: pt.GetId()}))
		if err != nil {
			continue // gone since the search: not this list's business
		}
		for _, rv := range list.Msg.GetReviews() {
			if due := rv.GetSummaryDueBy(); due != "" && rv.GetSummaryDeliveredOn() == "" && due < today {
				out = append(out, overdueItem{Name: pt.GetFamilyName() + ", " + pt.GetGivenName(),
					Path: patientPath(pt.GetId()) + "/reviews#review-" + rv.GetId(), What: "Written summary of the CMR of " + usDate(rv.GetReviewedOn()), Due: due})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due < out[j].Due })
	return out, truncated, note, nil
}
