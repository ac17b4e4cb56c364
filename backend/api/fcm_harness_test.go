package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

// fakeFCM starts the local FCM-compatible server and returns it with a
// sender that reaches it through the real Firebase SDK, as mtmd's pushes
// do. Both stop with the test.
func fakeFCM(t *testing.T) (*fcmfake.Server, *push.FCM) {
	t.Helper()
	fake := fcmfake.New(fcmfake.Options{})
	fsrv := httptest.NewServer(fake)
	t.Cleanup(fsrv.Close)
	sender, err := push.NewFCM(context.Background(), push.FCMConfig{ProjectID: "mtm-test", Endpoint: fsrv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return fake, sender
}
