package main

import (
	"strings"
	"testing"
	"time"
)

func TestReminderFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string // substrings of the validation error; none means valid
		check   func(t *testing.T, r reminderFlags)
	}{
		{"zero config logs pushes", nil, nil, nil, func(t *testing.T, r reminderFlags) {
			if r.Push != "log" || r.RefillLead != 7*24*time.Hour || r.MissedDoseWindow != time.Hour || r.Lease != 15*time.Second || r.Renew != 5*time.Second {
				t.Fatalf("defaults %+v", r)
			}
		}},
		{"fcm against the local fake from the environment", nil, map[string]string{
			"MTM_PUSH": "fcm", "MTM_FCM_PROJECT": "demo", "MTM_FCM_ENDPOINT": "http://127.0.0.1:9099", "MTM_REFILL_LEAD": "72h"}, nil,
			func(t *testing.T, r reminderFlags) {
				if r.Push != "fcm" || r.FCMProject != "demo" || r.FCMEndpoint != "http://127.0.0.1:9099" || r.RefillLead != 72*time.Hour {
					t.Fatalf("parsed %+v", r)
				}
			}},
		{"every problem listed together", []string{"--push", "fcm", "--fcm-endpoint", "ftp://x", "--missed-dose-window", "1m", "--dispatch-batch", "0", "--dispatch-lease", "1s"}, nil,
			[]string{"--fcm-project/MTM_FCM_PROJECT", "--fcm-endpoint/MTM_FCM_ENDPOINT", "--missed-dose-window", "--dispatch-batch", "--dispatch-lease", "--dispatch-renew"}, nil},
		{"renewals must come well within the lease", []string{"--dispatch-lease", "20s", "--dispatch-renew", "11s"}, nil, []string{"--dispatch-renew/MTM_DISPATCH_RENEW 11s"}, nil},
		{"unknown sender", []string{"--push", "apns"}, nil, []string{"--push/MTM_PUSH \"apns\""}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("Validate: %v; want it to mention %s", err, w)
				}
			}
			if tc.check != nil {
				tc.check(t, c.Reminders)
			}
		})
	}
}
