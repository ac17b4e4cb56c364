package console

import (
	"net/http"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Caregivers and access: who holds (or held) a grant to the patient's
// record, and the access report, through the two PatientService calls
// pharmacists of the patient's pharmacy may make (ListCaregivers,
// ListAccessEvents). Older pages of the report are asked for by POST, so
// the page token (an event id) stays out of the URL.

// accessPage is what access.html shows.
type accessPage struct {
	pageBase
	Patient     *mtmv1.Patient
	PatientPath string
	Grants      []*mtmv1.CaregiverGrant
	Events      []*mtmv1.AccessEvent
	NextPage    string
}

// accessPageSize is how many events one page of the report shows.
const accessPageSize = 100

func (pg *pages) serveAccess(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("patient")
	rec, err := pg.care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: id}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	grants, err := pg.patient.ListCaregivers(ctx, connect.NewRequest(&mtmv1.ListCaregiversRequest{PatientId: id}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	token := ""
	if r.Method == http.MethodPost {
		token = formText(r, "page")
	}
	events, err := pg.patient.ListAccessEvents(ctx, connect.NewRequest(&mtmv1.ListAccessEventsRequest{PatientId: id, PageSize: accessPageSize, PageToken: token}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pt := rec.Msg.GetPatient()
	pg.render(w, r, http.StatusOK, "access", accessPage{
		pageBase: pg.base(r, "Access: "+pt.GetGivenName()+" "+pt.GetFamilyName()), Patient: pt, PatientPath: patientPath(id),
		Grants: grants.Msg.GetGrants(), Events: events.Msg.GetEvents(), NextPage: events.Msg.GetNextPageToken(),
	})
}
