package redisstore

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// TestWireTypesCoverEveryField fails when a field is added to a store
// record without a wire field to carry it: Redis would silently drop it.
func TestWireTypesCoverEveryField(t *testing.T) {
	cases := []struct {
		record, wire any
		inHeader     int // fields carried outside the CBOR (Version)
		split        int // fields carried as several wire fields (QuietHours)
	}{
		{store.Patient{}, patientWire{}, 1, 1},
		{store.Medication{}, medicationWire{}, 0, 0},
		{store.MedicationChange{}, changeWire{}, 0, 0},
		{store.Allergy{}, allergyWire{}, 0, 0},
		{store.Fill{}, fillWire{}, 0, 0},
		{store.ActionItem{}, actionItemWire{}, 0, 0},
		{store.Progress{}, progressWire{}, 0, 0},
		{store.Grant{}, grantWire{}, 0, 0},
		{store.Device{}, deviceWire{}, 0, 0},
		{store.DoseSchedule{}, scheduleWire{}, 0, 0},
		{store.FollowUp{}, followUpWire{}, 0, 0},
		{store.Review{}, reviewWire{}, 0, 0},
		{store.Intervention{}, interventionWire{}, 0, 0},
		{store.SelfReport{}, selfReportWire{}, 0, 0},
		{store.Pharmacy{}, pharmacyWire{}, 0, 0},
		{store.Account{}, accountWire{}, 1, 0},
		{store.ActivationCode{}, codeWire{}, 0, 0},
		{store.RefreshToken{}, tokenWire{}, 0, 0},
		{store.Invite{}, inviteWire{}, 0, 0},
		{store.AuditEvent{}, auditWire{}, 0, 0},
		{store.Condition{}, conditionWire{}, 0, 0},
		{store.WorklistDates{}, worklistWire{}, 0, 0},
	}
	for _, c := range cases {
		rt, wt := reflect.TypeOf(c.record), reflect.TypeOf(c.wire)
		t.Run(rt.Name(), func(t *testing.T) {
			if got, want := wt.NumField(), rt.NumField()-c.inHeader+c.split; got != want {
				t.Fatalf("%s has %d fields, %s carries %d: add the new field to the wire type with a new key", rt, rt.NumField(), wt, got)
			}
		})
	}
}

// TestPatientFormatsReadAndMigrate writes a patient in every format an
// earlier release may have written, then reads and updates it with the
// current code: the record reads back whole, and the update rewrites it in
// the current format, sealed, without a spurious conflict.
func TestPatientFormatsReadAndMigrate(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	ctx := t.Context()
	for _, old := range []byte{formatV1, formatZstd} {
		t.Run(fmt.Sprintf("format=%d", old), func(t *testing.T) {
			writer, err := New(ctx, client, Options{KEK: redistest.KEK(), Prefix: fmt.Sprintf("f%d", old)})
			if err != nil {
				t.Fatal(err)
			}
			writer.patientFormat = old
			writer.opts.NoSeal = true // as a release before sealing wrote it
			want := storetest.SamplePatient("pat-1", "ph-1", 20)
			if err := writer.CreatePatient(ctx, want); err != nil {
				t.Fatal(err)
			}
			want.ProfileVersion = 1 // CreatePatient starts the profile at version 1
			current, err := New(ctx, client, Options{KEK: redistest.KEK(), Prefix: fmt.Sprintf("f%d", old)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := current.GetPatient(ctx, "pat-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != 1 || !reflect.DeepEqual(patientToWire(got), patientToWire(want)) {
				t.Fatalf("read back version %d, %+v\nwant version 1, %+v", got.Version, got, want)
			}
			next, err := current.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
				p.Questions = "Can I split the metformin tablet?"
				return p, nil
			})
			if err != nil || next.Version != 2 {
				t.Fatalf("UpdatePatient of a format-%d record: version %d, %v; want version 2", old, next.Version, err)
			}
			raw, err := client.Get(ctx, current.k.patient("pat-1")).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			// The update seals the record (a record written before sealing
			// is sealed on its next write), compressed as the current
			// format says.
			if raw[0] != formatSealed {
				t.Fatalf("updated record has format %d, want sealed (%d)", raw[0], formatSealed)
			}
			_, wrapped, err := current.getPatient(ctx, "pat-1")
			if err != nil {
				t.Fatal(err)
			}
			dk, err := current.dataKey("pat-1", wrapped)
			if err != nil {
				t.Fatal(err)
			}
			inner, err := openVersioned(dk, kindPatient, "pat-1", versionedHeaderLen, raw)
			if err != nil || inner[0] != current.patientFormat {
				t.Errorf("updated record's sealed format: %v, %v; want the current %d", inner[:1], err, current.patientFormat)
			}
			if got, err := writer.GetPatient(ctx, "pat-1"); err != nil || got.Questions != next.Questions {
				t.Errorf("re-read after the update: %q, %v", got.Questions, err)
			}
		})
	}
}

// TestDamagedPatientRecord checks that unknown formats and damaged
// compressed bodies are reported as damaged records, not decoded as
// something else.
func TestDamagedPatientRecord(t *testing.T) {
	s := newCodecOnly(t)
	good, err := s.encodePatient(storetest.SamplePatient("pat-1", "ph-1", 20))
	if err != nil {
		t.Fatal(err)
	}
	damage := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		rec  []byte
	}{
		{"unknown format", damage(func(b []byte) []byte { b[0] = 99; return b })},
		{"truncated body", damage(func(b []byte) []byte { return b[:len(b)/2] })},
		{"flipped byte", damage(func(b []byte) []byte { b[len(b)-10] ^= 0xff; return b })},
		{"header only", damage(func(b []byte) []byte { return b[:versionedHeaderLen] })},
		{"short", damage(func(b []byte) []byte { return b[:3] })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.decodePatient(c.rec); !errors.Is(err, errFormat) {
				t.Fatalf("decodePatient: %v, want errFormat", err)
			}
		})
	}
}

// newCodecOnly returns a Store that can encode and decode but has no
// Redis behind it.
func newCodecOnly(tb testing.TB) *Store {
	tb.Helper()
	enc, err := cbor.EncOptions{}.EncMode()
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := cbor.DecOptions{}.DecMode()
	if err != nil {
		tb.Fatal(err)
	}
	zenc, zdec, err := newCompressors()
	if err != nil {
		tb.Fatal(err)
	}
	return &Store{enc: enc, dec: dec, zenc: zenc, zdec: zdec, patientFormat: currentPatientFormat}
}

// BenchmarkPatientCodec measures the client-side CPU of encoding and
// decoding a 20-medication record per format, without Redis.
func BenchmarkPatientCodec(b *testing.B) {
	p := storetest.SamplePatient("pat-1", "ph-1", 20)
	for _, format := range []struct {
		name string
		b    byte
	}{{"v1", formatV1}, {"zstd", formatZstd}} {
		s := newCodecOnly(b)
		s.patientFormat = format.b
		rec, err := s.encodePatient(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/format="+format.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.encodePatient(p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/format="+format.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(rec)), "bytes")
			for b.Loop() {
				if _, err := s.decodePatient(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
