package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// FuzzRequestDecoding posts arbitrary bodies, as Connect JSON and as
// binary protobuf, to a write RPC of a running handler stack. Whatever the
// bytes, the server must answer with a client error or success — never a
// 5xx or a panic — and a refused request must leave the record unchanged.
func FuzzRequestDecoding(f *testing.F) {
	e := newEnv(f)
	rph := e.pharmacy("ph_fuzz", "rph@fuzz.test")
	pt := e.enroll(rph, "Fuzz")
	handler := e.srv.Config.Handler
	seeds := []string{
		`{"patientId":"` + pt.id + `","medication":{"name":"Aspirin","howIUseIt":"daily"}}`,
		`{"patientId":"` + pt.id + `","medication":{"name":"","howIUseIt":"daily","startedOn":"2025-02-30"}}`,
		`{"patientId":123}`,
		`{"patientId":"` + pt.id + `","medication":{"name":"\u0000","rxcui":"1e9"}}`,
		`{`,
		``,
		"\x0a\x05pt_xx\x12\x00",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		before, err := e.store.GetPatient(ctx, pt.id)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, mtmv1connect.CareServiceAddMedicationProcedure, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if binary {
			r.Header.Set("Content-Type", "application/proto")
		}
		r.Header.Set("Authorization", "Bearer "+rph)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code != http.StatusOK {
			after, err := e.store.GetPatient(ctx, pt.id)
			if err != nil {
				t.Fatal(err)
			}
			if after.Version != before.Version {
				t.Fatalf("refused request (status %d) changed the record", w.Code)
			}
		}
	})
}
