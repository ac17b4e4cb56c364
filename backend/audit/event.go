package audit

import (
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

func eventFor(p auth.Principal, patientID, procedure, object string, allowed bool, code, requestID string) store.AuditEvent {
	return store.AuditEvent{
		ActorID:   p.Subject,
		ActorRole: p.Role,
		PatientID: patientID,
		Procedure: procedure,
		Object:    object,
		Allowed:   allowed,
		Code:      code,
		RequestID: requestID,
	}
}
