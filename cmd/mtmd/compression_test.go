package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Responses are gzipped for clients that accept it only from
// compressMinBytes on; smaller ones go out as they are.
func TestSmallResponsesAreNotCompressed(t *testing.T) {
	echo := connect.NewUnaryHandler("/test.Echo/Echo",
		func(_ context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
			return connect.NewResponse(req.Msg), nil
		}, fastGzip())
	srv := httptest.NewServer(echo)
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		size int
		gzip bool
	}{{10, false}, {compressMinBytes - 16, false}, {compressMinBytes + 16, true}, {64 << 10, true}} {
		body, err := proto.Marshal(wrapperspb.String(strings.Repeat("a", c.size)))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := srv.Client().Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%d bytes: %s", c.size, res.Status)
		}
		if got := res.Header.Get("Content-Encoding") == "gzip"; got != c.gzip {
			t.Errorf("%d-byte response: gzip %v, want %v", c.size, got, c.gzip)
		}
	}
}
