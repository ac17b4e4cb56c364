package fhir

import (
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Message is one message of a conversation about the patient, exported as
// a Communication.
type Message struct {
	ID       string
	ThreadID string
	Subject  string
	// FromPatientSide is true for the patient or a caregiver, false for a
	// pharmacist.
	FromPatientSide bool
	Body            string
	SentAt          time.Time
}

// communication exports a message between the patient's side and the
// pharmacy (no US Core profile exists for Communication).
func (b *builder) communication(m Message) {
	r := rec("Communication", idMessage, m.ID)
	c := fm.Communication{
		Identifier: []fm.Identifier{r.id},
		Status:     fm.EventStatusCompleted,
		Subject:    ptr(b.patientRef()),
		Topic:      textConcept(m.Subject),
		Payload:    []fm.CommunicationPayload{{ContentString: m.Body}},
		Sent:       instant(m.SentAt),
	}
	if m.FromPatientSide {
		c.Sender, c.Recipient = ptr(b.patientRef()), []fm.Reference{*b.pharmacyRef()}
	} else {
		c.Sender, c.Recipient = b.pharmacyRef(), []fm.Reference{b.patientRef()}
	}
	b.add(r, c)
}
