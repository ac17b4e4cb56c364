package audit

import (
	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

func eventFor(p auth.Principal, patientID, procedure, object string, outcome store.AuditOutcome, code, requestID, clientAddr string) store.AuditEvent {
	return store.AuditEvent{
		ActorID:   p.Subject,
		ActorRole: p.Role,
		PatientID: patientID,
		Procedure: procedure,
		Object:    object,
		Allowed:   outcome == store.OutcomeAllowed,
		Outcome:   outcome,
		Code:      code,
		RequestID: requestID,

		ClientAddr: clientAddr,
	}
}

// outcomeOf classifies a finished call on patientID's data. A caller who
// passed the access check (granted), or the patient themselves, can only
// have failed; anyone else refused with not_found, permission_denied or
// unauthenticated was denied; other errors (an invalid request, a server
// error) failed. Rate limits are throttled whoever hits them.
func outcomeOf(p auth.Principal, patientID string, granted bool, code connect.Code, callErr error) store.AuditOutcome {
	switch {
	case callErr == nil:
		return store.OutcomeAllowed
	case code == connect.CodeResourceExhausted:
		return store.OutcomeThrottled
	case granted || (p.Role == store.RolePatient && p.Subject == patientID):
		return store.OutcomeFailed
	case code == connect.CodeNotFound || code == connect.CodePermissionDenied || code == connect.CodeUnauthenticated:
		return store.OutcomeDenied
	default:
		return store.OutcomeFailed
	}
}
