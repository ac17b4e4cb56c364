package api

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// BenchmarkJSONDecode compares the request codec with the lenient
// protojson decoding Connect does by default (the baseline), on a valid
// body, one with a field this server does not know, and a bad one.
func BenchmarkJSONDecode(b *testing.B) {
	bodies := map[string][]byte{
		"valid":         []byte(`{"patientId":"pt_123","timeZone":"America/Denver","quietHours":{"startMinute":1320,"endMinute":420},"pushNamesMedicine":true,"expectedVersion":"3"}`),
		"unknown-field": []byte(`{"patientId":"pt_123","timeZone":"America/Denver","quietHours":{"startMinute":1320,"endMinute":420},"fromTheFuture":{"a":[1,2]}}`),
		"wrong-type":    []byte(`{"patientId":"pt_123","timeZone":"America/Denver","quietHours":{"startMinute":"ten","endMinute":420}}`),
	}
	for _, name := range []string{"valid", "unknown-field", "wrong-type"} {
		body := bodies[name]
		b.Run(name+"/protojson-lenient", func(b *testing.B) {
			for b.Loop() {
				_ = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, &mtmv1.UpdatePreferencesRequest{})
			}
		})
		b.Run(name+"/codec", func(b *testing.B) {
			c := jsonCodec{name: "json"}
			for b.Loop() {
				m := &mtmv1.UpdatePreferencesRequest{}
				_ = c.Unmarshal(body, m)
				_ = undecodable(m)
			}
		})
	}
}
