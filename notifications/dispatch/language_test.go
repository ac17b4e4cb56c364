package dispatch_test

import (
	"strings"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// TestReminderInThePatientsLanguage: through the real Firebase SDK to the
// local fake, a Spanish-speaking patient's reminder is in Spanish and names
// the medicine only after opting in; an English (or unset, or unshipped)
// preference gets English.
func TestReminderInThePatientsLanguage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		h.patient("pt-es", func(p *store.Patient) { p.PreferredLanguage = "es-US" })
		h.patient("pt-es-named", func(p *store.Patient) { p.PreferredLanguage = "es"; p.PushNamesMedicine = true })
		h.patient("pt-fr", func(p *store.Patient) { p.PreferredLanguage = "fr-CA" })
		h.patient("pt-en")
		h.runAll(h.dispatcher(h.sender))
		want := map[string]string{
			"tok-pt-es":       "Recordatorio de medicamento / Tiene un recordatorio de medicamento.",
			"tok-pt-es-named": "Recordatorio de medicamento / Es hora de tomar Lisinopril 10 mg.",
			"tok-pt-fr":       "Medication reminder / You have a medication reminder.",
			"tok-pt-en":       "Medication reminder / You have a medication reminder.",
		}
		got := map[string]string{}
		for _, r := range h.fake.Received() {
			got[r.Token] = r.Title + " / " + r.Body
		}
		for tok, w := range want {
			if got[tok] != w {
				t.Errorf("push to %s = %q, want %q", tok, got[tok], w)
			}
		}
		if strings.Contains(got["tok-pt-es"], "Lisinopril") {
			t.Error("the Spanish push names the medicine without the opt-in")
		}
	})
}
