package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestOverdueFollowUpOnTheWorkList: a follow-up the pharmacist scheduled
// appears on the console's work list once its day has passed, and not
// before.
func TestOverdueFollowUpOnTheWorkList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	care := func() mtmv1connect.CareServiceClient {
		login, err := mtmv1connect.NewAuthServiceClient(http.DefaultClient, e.url).Login(ctx,
			connect.NewRequest(&mtmv1.LoginRequest{Email: "rph@a.test", Password: password}))
		if err != nil {
			t.Fatal(err)
		}
		tok := login.Msg.GetTokens().GetAccessToken()
		return mtmv1connect.NewCareServiceClient(http.DefaultClient, e.url, connect.WithInterceptors(connect.UnaryInterceptorFunc(
			func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, r connect.AnyRequest) (connect.AnyResponse, error) {
					r.Header().Set("Authorization", "Bearer "+tok)
					return next(ctx, r)
				}
			})))
	}
	c := care()
	enr, err := c.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{
		GivenName: "Rosa", FamilyName: "Quintero", DateOfBirth: "1948-05-17", TimeZone: "America/Chicago"}))
	if err != nil {
		t.Fatal(err)
	}
	pid := enr.Msg.GetPatient().GetId()
	if _, err := c.ScheduleFollowUp(ctx, connect.NewRequest(&mtmv1.ScheduleFollowUpRequest{
		PatientId: pid, DueAt: timestamppb.New(e.clock.Now().Add(48 * time.Hour))})); err != nil {
		t.Fatal(err)
	}

	b := e.browser()
	b.signIn("rph@a.test", password)
	if _, page := b.do("GET", "/console/worklists", nil); !strings.Contains(page, `id="fu-h"`) || strings.Contains(page[strings.Index(page, `id="fu-h"`):], "Quintero") {
		t.Fatal("a follow-up due in two days is listed as overdue (or the list is missing)")
	}
	e.clock.Advance(72 * time.Hour)
	b = e.browser()
	b.signIn("rph@a.test", password)
	res, page := b.do("GET", "/console/worklists", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("work lists: %d", res.StatusCode)
	}
	section := page[strings.Index(page, `id="fu-h"`):]
	if !strings.Contains(section, "Quintero, Rosa") || strings.Contains(section, "Nothing is overdue") {
		t.Fatalf("the overdue follow-up is not on the work list:\n%s", section)
	}
	if !strings.Contains(section, e.clock.Now().Add(-24*time.Hour).Format("01/02/2006")) {
		t.Fatalf("the follow-up's due day (US date) is not shown:\n%s", section)
	}
}
