package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// connectJSONError is a Connect error as an app's HTTP client reads it.
type connectJSONError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"details"`
}

// postJSON sends body to procedure as a Connect unary JSON call, the way
// an app without generated code (or with a typo) does.
func postJSON(t *testing.T, e *env, token, procedure, body string) (int, connectJSONError) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ce connectJSONError
	if res.StatusCode != http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(&ce); err != nil {
			t.Fatalf("%s: error body: %v", procedure, err)
		}
	}
	return res.StatusCode, ce
}

// badRequestOf returns the google.rpc.BadRequest detail of an error.
func badRequestOf(t *testing.T, ce connectJSONError) *errdetails.BadRequest {
	t.Helper()
	for _, d := range ce.Details {
		if d.Type != "google.rpc.BadRequest" {
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			t.Fatalf("detail value: %v", err)
		}
		br := &errdetails.BadRequest{}
		if err := proto.Unmarshal(raw, br); err != nil {
			t.Fatal(err)
		}
		return br
	}
	t.Fatalf("no google.rpc.BadRequest detail in %+v", ce)
	return nil
}

// TestRefusalsNameTheFieldAndNothingOfTheServer: each refusal an app
// developer met while writing a client by hand now names the field and
// what it expects (the enum's names, the timestamp's form), in words of
// the contract, not the server's Go or protobuf types.
func TestRefusalsNameTheFieldAndNothingOfTheServer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rph := e.pharmacy("ph_a", "rph@a.test")
	pt := e.enroll(rph, "Ann")
	care := e.careClient(rph)
	med, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pt.id,
		Medication: &mtmv1.MedicationFields{Name: "Lisinopril", HowIUseIt: "1 tablet daily"}}))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := e.patientClient(pt.token).SetDoseSchedule(ctx, connect.NewRequest(&mtmv1.SetDoseScheduleRequest{
		PatientId: pt.id, MedicationId: med.Msg.GetMedication().GetId(), TimesOfDay: []int32{8 * 60}}))
	if err != nil {
		t.Fatal(err)
	}
	oldDose := store.Reminder{Kind: store.ReminderDose, RefID: sched.Msg.GetSchedule().GetId(), Occurrence: e.clock.Now().Add(-30 * 24 * time.Hour)}.OccurrenceID()
	tests := []struct {
		name, token, procedure, body string
		code                         string
		field                        string // "" for the body as a whole
		says                         []string
	}{
		{"wrong JSON type", pt.token, "/mtm.v1.PatientService/GetProfile", `{"patientId": 123}`,
			"invalid_argument", "patient_id", []string{"must be a string, not a number"}},
		{"date where a timestamp is expected", rph, "/mtm.v1.CareService/ScheduleFollowUp", fmt.Sprintf(`{"patientId": %q, "dueAt": "2026-04-01"}`, pt.id),
			"invalid_argument", "due_at", []string{`"2026-04-01" is not a timestamp`, "RFC 3339", "2026-11-30T17:05:00Z"}},
		{"unknown enum name", pt.token, "/mtm.v1.PatientService/ExportRecord", fmt.Sprintf(`{"patientId": %q, "format": "PDF"}`, pt.id),
			"invalid_argument", "format", []string{`unknown value "PDF"`, "must be one of EXPORT_FORMAT_FHIR_R4_JSON, EXPORT_FORMAT_CMS_PDF"}},
		{"enum left unset", pt.token, "/mtm.v1.PatientService/ExportRecord", fmt.Sprintf(`{"patientId": %q}`, pt.id),
			"invalid_argument", "format", []string{"must be one of EXPORT_FORMAT_FHIR_R4_JSON, EXPORT_FORMAT_CMS_PDF"}},
		{"enum number not in the contract", pt.token, "/mtm.v1.PatientService/ExportRecord", fmt.Sprintf(`{"patientId": %q, "format": 7}`, pt.id),
			"invalid_argument", "format", []string{"must be one of EXPORT_FORMAT_FHIR_R4_JSON, EXPORT_FORMAT_CMS_PDF"}},
		{"nested field of the wrong type", pt.token, "/mtm.v1.PatientService/UpdatePreferences", fmt.Sprintf(`{"patientId": %q, "quietHours": {"startMinute": "ten"}}`, pt.id),
			"invalid_argument", "quiet_hours.start_minute", []string{"must be a whole number"}},
		{"list of the wrong type", pt.token, "/mtm.v1.PatientService/SetDoseSchedule", fmt.Sprintf(`{"patientId": %q, "medicationId": "x", "timesOfDay": [480, "noon"]}`, pt.id),
			"invalid_argument", "times_of_day[1]", []string{"must be a whole number"}},
		{"not JSON", pt.token, "/mtm.v1.PatientService/GetProfile", `{"patientId": `,
			"invalid_argument", "", []string{"not valid JSON"}},
		{"a dose of no schedule", pt.token, "/mtm.v1.PatientService/RecordDose", fmt.Sprintf(`{"patientId": %q, "occurrenceId": "d.nosuch.t0", "outcome": "DOSE_OUTCOME_TAKEN"}`, pt.id),
			"not_found", "", []string{"dose occurrence"}},
		{"a dose outside the window", pt.token, "/mtm.v1.PatientService/RecordDose", fmt.Sprintf(`{"patientId": %q, "occurrenceId": %q, "outcome": "DOSE_OUTCOME_TAKEN"}`, pt.id, oldDose),
			"invalid_argument", "occurrence_id", []string{"names the dose due at 2026-01-31T15:00:00Z", "from 7 days before now until 24 hours ahead"}},
		{"not a dose id", pt.token, "/mtm.v1.PatientService/RecordDose", fmt.Sprintf(`{"patientId": %q, "occurrenceId": "tomorrow", "outcome": "DOSE_OUTCOME_TAKEN"}`, pt.id),
			"invalid_argument", "occurrence_id", []string{"is not the id of a dose"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, ce := postJSON(t, e, tc.token, tc.procedure, tc.body)
			if status == http.StatusOK || ce.Code != tc.code {
				t.Fatalf("HTTP %d, code %q (%s), want %s", status, ce.Code, ce.Message, tc.code)
			}
			for _, leak := range []string{"mtmv1", "proto:", "google.protobuf", "*", "unmarshal"} {
				if strings.Contains(ce.Message, leak) {
					t.Errorf("message %q shows %q", ce.Message, leak)
				}
			}
			for _, want := range tc.says {
				if !strings.Contains(ce.Message, want) {
					t.Errorf("message %q does not say %q", ce.Message, want)
				}
			}
			if tc.code != "invalid_argument" {
				return
			}
			if tc.field != "" && !strings.HasPrefix(ce.Message, tc.field+": ") {
				t.Errorf("message %q does not start with the field %q", ce.Message, tc.field)
			}
			br := badRequestOf(t, ce)
			if len(br.GetFieldViolations()) != 1 || br.GetFieldViolations()[0].GetField() != tc.field {
				t.Fatalf("BadRequest = %v, want one violation of %q", br, tc.field)
			}
			if d := br.GetFieldViolations()[0].GetDescription(); !strings.Contains(ce.Message, d) {
				t.Errorf("BadRequest description %q is not the message's %q", d, ce.Message)
			}
		})
	}
}

// TestUnknownFieldsStillIgnored: a newer app sending a field this server
// does not know yet is served, as protojson's lenient decoding did.
func TestUnknownFieldsStillIgnored(t *testing.T) {
	e := newEnv(t)
	rph := e.pharmacy("ph_a", "rph@a.test")
	pt := e.enroll(rph, "Ann")
	status, ce := postJSON(t, e, pt.token, "/mtm.v1.PatientService/GetProfile", fmt.Sprintf(`{"patientId": %q, "fieldFromTheFuture": {"x": [1]}}`, pt.id))
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %+v", status, ce)
	}
	// Binary protobuf that does not parse is refused without Go types too.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mtm.v1.PatientService/GetProfile", bytes.NewReader([]byte{0x0a, 0xff}))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Authorization", "Bearer "+pt.token)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var bad connectJSONError
	if err := json.NewDecoder(res.Body).Decode(&bad); err != nil {
		t.Fatal(err)
	}
	if bad.Code != "invalid_argument" || strings.Contains(bad.Message, "mtmv1") || strings.Contains(bad.Message, "proto:") {
		t.Fatalf("binary garbage: %+v", bad)
	}
}

// TestStreamRefusalsNameTheField: a watch stream opened with a body of
// the wrong JSON type ends with the same clean refusal as a unary call.
func TestStreamRefusalsNameTheField(t *testing.T) {
	e := newEnv(t)
	rph := e.pharmacy("ph_a", "rph@a.test")
	pt := e.enroll(rph, "Ann")
	body := []byte(`{"threadId": ["th_1"]}`)
	frame := append([]byte{0, 0, 0, 0, byte(len(body))}, body...)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mtm.v1.MessagingService/WatchThread", bytes.NewReader(frame))
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Authorization", "Bearer "+pt.token)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw := new(bytes.Buffer)
	if _, err := raw.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	b := raw.Bytes()
	for len(b) >= 5 {
		flags, n := b[0], int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4])
		if len(b) < 5+n {
			break
		}
		msg := b[5 : 5+n]
		b = b[5+n:]
		if flags&2 == 0 {
			continue
		}
		var end struct {
			Error connectJSONError `json:"error"`
		}
		if err := json.Unmarshal(msg, &end); err != nil {
			t.Fatal(err)
		}
		if end.Error.Code != "invalid_argument" || end.Error.Message != "thread_id: must be a string, not a list" {
			t.Fatalf("stream ended with %+v", end.Error)
		}
		if br := badRequestOf(t, end.Error); br.GetFieldViolations()[0].GetField() != "thread_id" {
			t.Fatalf("BadRequest = %v", br)
		}
		return
	}
	t.Fatalf("no end-of-stream message in %q", raw.String())
}
