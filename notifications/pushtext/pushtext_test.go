package pushtext_test

import (
	"testing"

	"github.com/mtmapp/mtm/notifications/pushtext"
)

func TestCatalogsLoad(t *testing.T) {
	if err := pushtext.Check(); err != nil {
		t.Fatal(err)
	}
	tags, _ := pushtext.Languages()
	if len(tags) < 2 {
		t.Fatalf("languages %v, want English and Spanish at least", tags)
	}
}

func TestPicksTheClosestLanguage(t *testing.T) {
	for _, tc := range []struct{ lang, want string }{
		{"", "You have a medication reminder."},
		{"en-US", "You have a medication reminder."},
		{"es", "Tiene un recordatorio de medicamento."},
		{"es-US", "Tiene un recordatorio de medicamento."},
		{"es-419", "Tiene un recordatorio de medicamento."},
		{"fr-FR", "You have a medication reminder."}, // not shipped: English
		{"not a tag!", "You have a medication reminder."},
	} {
		if got := pushtext.Text(tc.lang, pushtext.DoseBody, nil); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.lang, got, tc.want)
		}
	}
	if got := pushtext.Text("es-MX", pushtext.DoseBodyNamed, map[string]string{"medicine": "Metformina 500 mg"}); got != "Es hora de tomar Metformina 500 mg." {
		t.Errorf("named Spanish body = %q", got)
	}
}
