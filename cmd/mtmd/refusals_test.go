package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mtmapp/mtm/backend/audit"
)

// TestRefusalBudgetIsWiredAndMeasured: the server counts refused calls on
// /metrics (the refusal budget of backend/audit is on), from zero.
func TestRefusalBudgetIsWiredAndMeasured(t *testing.T) {
	srv := startServer(t, t.TempDir())
	res, err := http.Get(srv.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{audit.MetricRefusals + `{outcome="denied"} 0`, audit.MetricRefusals + `{outcome="throttled"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
