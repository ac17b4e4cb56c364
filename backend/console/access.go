package console

import (
	"net/http"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Caregivers and access: who holds (or held) a grant to the patient's
// record, and the access report, through the two PatientService calls
// that pharmacists of the patient's pharmacy may make (ListCaregivers,
// ListAccessEvents; no new RPC was needed). Older pages of the report are
// asked for by POST, so the page token stays out of the URL.

// accessData is what access.html shows.
type accessData struct {
	Head     patientHead
	Grants   []*mtmv1.CaregiverGrant
	Events   []*mtmv1.AccessEvent
	NextPage string
}

// accessPageSize is how many events one page of the report shows.
const accessPageSize = 100

func serveAccess(rq *Request) error {
	ctx, id := rq.Context(), rq.R.PathValue("patient")
	rec, err := rq.API.Care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: id}))
	if err != nil {
		return err
	}
	grants, err := rq.API.Patient.ListCaregivers(ctx, connect.NewRequest(&mtmv1.ListCaregiversRequest{PatientId: id}))
	if err != nil {
		return err
	}
	token := ""
	if rq.R.Method == http.MethodPost {
		token = rq.form("page")
	}
	events, err := rq.API.Patient.ListAccessEvents(ctx, connect.NewRequest(&mtmv1.ListAccessEventsRequest{PatientId: id, PageSize: accessPageSize, PageToken: token}))
	if err != nil {
		return err
	}
	pt := rec.Msg.GetPatient()
	return rq.Render(http.StatusOK, "access.html", View{Title: "Access: " + pt.GetGivenName() + " " + pt.GetFamilyName(), Nav: "patients",
		Data: accessData{Head: patientHead{Patient: pt, Path: patientPath(id), Current: "access"},
			Grants: grants.Msg.GetGrants(), Events: events.Msg.GetEvents(), NextPage: events.Msg.GetNextPageToken()}})
}
