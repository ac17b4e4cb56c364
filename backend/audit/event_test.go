package audit

import (
	"errors"
	"testing"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

// TestOutcomeOf: what the patient's report calls each finished call. The
// patient's own failures, and failures of anyone who passed the access
// check, are failed, never denied.
func TestOutcomeOf(t *testing.T) {
	self := auth.Principal{Subject: "pt_1", Role: store.RolePatient}
	other := auth.Principal{Subject: "pt_2", Role: store.RolePatient}
	carer := auth.Principal{Subject: "ac_9", Role: store.RoleCaregiver}
	fail := func(c connect.Code) error { return connect.NewError(c, errors.New("x")) }
	tests := []struct {
		name    string
		p       auth.Principal
		granted bool
		err     error
		want    store.AuditOutcome
	}{
		{"a read", carer, true, nil, store.OutcomeAllowed},
		{"the patient's stale write", self, true, fail(connect.CodeAborted), store.OutcomeFailed},
		{"the patient's bad field, before any access check", self, false, fail(connect.CodeInvalidArgument), store.OutcomeFailed},
		{"the patient asks for an item that does not exist", self, false, fail(connect.CodeNotFound), store.OutcomeFailed},
		{"a granted caregiver's bad field", carer, true, fail(connect.CodeInvalidArgument), store.OutcomeFailed},
		{"a granted caregiver's store failure", carer, true, fail(connect.CodeUnavailable), store.OutcomeFailed},
		{"another patient refused", other, false, fail(connect.CodeNotFound), store.OutcomeDenied},
		{"a caregiver without the scope", carer, false, fail(connect.CodePermissionDenied), store.OutcomeDenied},
		{"an outsider's invalid request", other, false, fail(connect.CodeInvalidArgument), store.OutcomeFailed},
		{"over a rate limit", other, false, fail(connect.CodeResourceExhausted), store.OutcomeThrottled},
		{"the patient over a rate limit", self, true, fail(connect.CodeResourceExhausted), store.OutcomeThrottled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := connect.Code(0)
			if tc.err != nil {
				code = connect.CodeOf(tc.err)
			}
			if got := outcomeOf(tc.p, "pt_1", tc.granted, code, tc.err); got != tc.want {
				t.Fatalf("outcome = %s, want %s", got, tc.want)
			}
		})
	}
}
