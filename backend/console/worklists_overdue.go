package console

import (
	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// overduePage is how many overdue follow-ups the work list shows at once.
const overduePage = 100

// overdue lists the pharmacy's follow-ups whose time has come, earliest
// first, from CareService.ListOverdueFollowUps (the pharmacy's index, not
// a scan of its patients).
func overdue(rq *Request) (out []overdueItem, truncated bool, note string, err error) {
	res, err := rq.API.Care.ListOverdueFollowUps(rq.Context(), connect.NewRequest(&mtmv1.ListOverdueFollowUpsRequest{PageSize: overduePage}))
	if err != nil {
		return nil, false, "", err
	}
	for _, f := range res.Msg.GetFollowUps() {
		pt := f.GetPatient()
		what := "Follow-up"
		switch {
		case f.GetReviewId() != "":
			what = "Follow-up of a review"
		case f.GetActionItemId() != "":
			what = "Follow-up of an action-plan item"
		}
		path := patientPath(pt.GetId())
		if f.GetReviewId() != "" {
			path += "/reviews#review-" + f.GetReviewId()
		}
		out = append(out, overdueItem{Name: pt.GetFamilyName() + ", " + pt.GetGivenName(), Path: path, What: what,
			Due: f.GetDueAt().AsTime().UTC().Format("2006-01-02")})
	}
	return out, res.Msg.GetTruncated() || res.Msg.GetNextPageToken() != "", "", nil
}
