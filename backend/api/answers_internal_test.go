package api

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

var timeType = reflect.TypeFor[time.Time]()

// fillValue sets every field reachable from v to a non-zero value, with
// two elements in every slice.
func fillValue(v reflect.Value, n *int) {
	*n++
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(*n) * time.Minute)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n%20 + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%20 + 1))
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillValue(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(k, n)
		fillValue(e, n)
		v.SetMapIndex(k, e)
	}
}

// mutation is one change to a record: where, and how.
type mutation struct {
	path  string
	apply func(*store.Patient)
}

// mutations lists, for every field reachable from the record (through the
// first element of slices), setting it to zero and changing it a little.
func mutations() []mutation {
	var out []mutation
	var walk func(path string, get func(*store.Patient) reflect.Value, t reflect.Type)
	walk = func(path string, get func(*store.Patient) reflect.Value, t reflect.Type) {
		out = append(out, mutation{path + " zeroed", func(p *store.Patient) { v := get(p); v.Set(reflect.Zero(v.Type())) }})
		switch {
		case t == timeType:
			out = append(out, mutation{path + " +1ns", func(p *store.Patient) { v := get(p); v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(1))) }})
			return
		}
		switch t.Kind() {
		case reflect.String:
			out = append(out, mutation{path + " +x", func(p *store.Patient) { v := get(p); v.SetString(v.String() + "x") }})
		case reflect.Bool:
			out = append(out, mutation{path + " flipped", func(p *store.Patient) { v := get(p); v.SetBool(!v.Bool()) }})
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out = append(out, mutation{path + " +1", func(p *store.Patient) { v := get(p); v.SetInt(v.Int() + 1) }})
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				walk(path+"."+f.Name, func(p *store.Patient) reflect.Value { return get(p).Field(i) }, f.Type)
			}
		case reflect.Slice:
			out = append(out, mutation{path + " one shorter", func(p *store.Patient) { v := get(p); v.Set(v.Slice(0, v.Len()-1)) }})
			out = append(out, mutation{path + " swapped", func(p *store.Patient) {
				v := get(p)
				a, b := reflect.New(t.Elem()).Elem(), reflect.New(t.Elem()).Elem()
				a.Set(v.Index(0))
				b.Set(v.Index(1))
				v.Index(0).Set(b)
				v.Index(1).Set(a)
			}})
			walk(path+"[0]", func(p *store.Patient) reflect.Value { return get(p).Index(0) }, t.Elem())
		}
	}
	walk("Patient", func(p *store.Patient) reflect.Value { return reflect.ValueOf(p).Elem() }, reflect.TypeFor[store.Patient]())
	return out
}

// filledPatient is a record with every field set, one medicine current and
// one stopped, allergy kinds the PML names.
func filledPatient() store.Patient {
	var p store.Patient
	n := 0
	fillValue(reflect.ValueOf(&p).Elem(), &n)
	p.Medications[0].StoppedOn = store.Date{}
	p.Allergies[0].Kind, p.Allergies[1].Kind = store.KindAllergy, store.KindSideEffect
	return p
}

// TestSameFieldsSeesEveryChange: whatever field of the record changes,
// when the PML (or plan) answer built from it changes, the answer cache
// sees a different record (it would otherwise give out the old answer).
// It fails when medicationListToProto or actionPlanToProto starts reading
// a field samePMLFields or samePlanFields does not compare.
func TestSameFieldsSeesEveryChange(t *testing.T) {
	for kind, name := range map[answerKind]string{answerPML: "PML", answerPlan: "plan"} {
		t.Run(name, func(t *testing.T) {
			k := answerKinds[kind]
			base := filledPatient()
			want := k.build(base)
			if !k.same(base, base.Clone()) {
				t.Fatal("a record differs from its copy (the cache would never hit)")
			}
			changing := 0
			for _, m := range mutations() {
				p := base.Clone()
				m.apply(&p)
				if proto.Equal(k.build(p), want) {
					continue
				}
				changing++
				if k.same(base, p) || k.same(k.fields(base), p) {
					t.Errorf("%s changes the %s answer, but the cache's check does not see it", m.path, name)
				}
			}
			if changing < 15 {
				t.Errorf("only %d changes change the %s answer: the record is not filled as the test expects", changing, name)
			}
		})
	}
}

// TestAnswerCacheGivesOutTheSameAnswerOnlyForTheSameFields: the same PML
// fields read again (another copy of the record) give the answer built
// before; a change gives a new one, and erasing the patient drops it.
func TestAnswerCacheGivesOutTheSameAnswerOnlyForTheSameFields(t *testing.T) {
	c := newAnswerCache(0)
	base := filledPatient()
	first := c.medicationList(base.Clone())
	if again := c.medicationList(base.Clone()); again != first {
		t.Error("the same record read again built a new answer (no hit)")
	}
	changed := base.Clone()
	changed.Medications[1].Name = "Amlodipine"
	got := c.medicationList(changed)
	if got == first || got.GetMedications()[1].GetName() != "Amlodipine" {
		t.Errorf("a changed record got the old answer: %v", got.GetMedications()[1].GetName())
	}
	c.forget(base.ID)
	if again := c.medicationList(changed.Clone()); again == got {
		t.Error("an erased patient's answer was kept")
	}
	// Bounded: the least recently used goes first.
	small := newAnswerCache(2)
	for _, id := range []string{"a", "b", "c"} {
		p := base.Clone()
		p.ID = id
		small.medicationList(p)
	}
	if small.lru.Len() != 2 || small.byID[answerKey{"a", answerPML}] != nil {
		t.Errorf("a cache of 2 holds %d answers, first one kept: %v", small.lru.Len(), small.byID[answerKey{"a", answerPML}] != nil)
	}
}

// TestCodecWritesKeptEncodingAsProtoMarshal: a GetMedicationList (or
// GetActionPlan) answer whose PML (plan) is the cache's is written from the kept encoding, byte for
// byte what proto.Marshal writes (so every client decodes the same
// answer), and an answer whose PML the cache no longer holds (a newer
// record was read meanwhile) is encoded in full, with its own rows.
func TestCodecWritesKeptEncodingAsProtoMarshal(t *testing.T) {
	c := newAnswerCache(0)
	codec := protoCodec{answers: c}
	base := filledPatient()
	pml := c.medicationList(base.Clone())
	for _, res := range []*mtmv1.GetMedicationListResponse{
		{MedicationList: pml, SyncVersion: 42},
		{MedicationList: pml},
	} {
		want, err := proto.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the encoding is made, then reused
			got, err := codec.MarshalAppend([]byte("prefix"), res)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("codec wrote %d bytes, proto.Marshal %d: not the same encoding", len(got), len(want)+6)
			}
		}
	}
	plan := c.actionPlan(base.Clone())
	for _, res := range []*mtmv1.GetActionPlanResponse{{ActionPlan: plan, SyncVersion: 7}, {ActionPlan: plan}} {
		want, _ := proto.Marshal(res)
		for range 2 {
			got, err := codec.MarshalAppend(nil, res)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("plan: codec wrote %d bytes (%v), proto.Marshal %d: not the same encoding", len(got), err, len(want))
			}
		}
	}
	if c.encoded(base.ID, answerPlan, plan) == nil {
		t.Fatal("the cache's plan has no kept encoding: the codec encoded it in full")
	}
	if c.encoded(base.ID, answerPML, pml) == nil {
		t.Fatal("the cache's PML has no kept encoding: the codec encoded it in full")
	}
	changed := base.Clone()
	changed.Medications[0].Name = "Amlodipine"
	newer := c.medicationList(changed)
	if c.encoded(base.ID, answerPML, pml) != nil {
		t.Fatal("a PML the cache no longer holds still has a kept encoding")
	}
	old := &mtmv1.GetMedicationListResponse{MedicationList: pml, SyncVersion: 1}
	got, err := codec.MarshalAppend(nil, old)
	if err != nil {
		t.Fatal(err)
	}
	var back mtmv1.GetMedicationListResponse
	if err := proto.Unmarshal(got, &back); err != nil || !proto.Equal(&back, old) {
		t.Fatalf("the older answer decoded as %v, %v", back.GetMedicationList().GetMedications()[0].GetName(), err)
	}
	got, _ = codec.MarshalAppend(nil, &mtmv1.GetMedicationListResponse{MedicationList: newer})
	if err := proto.Unmarshal(got, &back); err != nil || back.GetMedicationList().GetMedications()[0].GetName() != newer.GetMedications()[0].GetName() {
		t.Fatalf("the newer answer decoded as %v, %v", back.GetMedicationList().GetMedications()[0].GetName(), err)
	}
}

// BenchmarkPMLAnswer is what GetMedicationList does with a record once it
// is read and checked, for a 20-medicine PML: convert and encode it
// (uncached), or find the kept answer and write its kept encoding
// (cached; each read brings its own copy of the record, as the store's).
// Compare the two in one run.
func BenchmarkPMLAnswer(b *testing.B) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	p := store.Patient{ID: "pt_1", UpdatedAt: at,
		Allergies: []store.Allergy{{ID: "al_1", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives", RecordedAt: at}}}
	for i := range 20 {
		p.Medications = append(p.Medications, store.Medication{ID: fmt.Sprint("md_", i), Name: "metformin", Strength: "500 mg",
			HowIUseIt: "1 tablet twice a day", WhyIUseIt: "diabetes", Prescriber: "Dr. Rivera", StartedOn: store.Date{Year: 2025, Month: 1, Day: 2}, UpdatedAt: at, Version: 1})
		p.Fills = append(p.Fills, store.Fill{ID: fmt.Sprint("fl_", i), MedicationID: fmt.Sprint("md_", i), FilledOn: store.Date{Year: 2026, Month: 11, Day: 1}, DaysSupply: 30, RecordedAt: at})
	}
	copies := make([]store.Patient, 64)
	for i := range copies {
		copies[i] = p.Clone()
	}
	for _, bc := range []struct {
		name    string
		answers *answerCache
	}{{"uncached", nil}, {"cached", newAnswerCache(0)}} {
		b.Run(bc.name, func(b *testing.B) {
			codec := protoCodec{answers: bc.answers}
			buf := make([]byte, 0, 16<<10)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				res := &mtmv1.GetMedicationListResponse{MedicationList: bc.answers.medicationList(copies[i%len(copies)]), SyncVersion: 7}
				i++
				var err error
				if buf, err = codec.MarshalAppend(buf[:0], res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPMLReadOnRedisGivesOutTheKeptAnswer: on Redis (records sealed, read
// through the record cache) a second read of an unchanged record gets the
// answer the first built, and a record changed by another store over the
// same Redis gets a new one.
func TestPMLReadOnRedisGivesOutTheKeptAnswer(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	open := func() *redisstore.Store {
		s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	svc := &PatientService{cfg: Config{Store: a, Now: time.Now, answers: newAnswerCache(0)}}
	if err := a.CreatePatient(t.Context(), storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithPrincipal(t.Context(), auth.Principal{Subject: "pat-1", Role: store.RolePatient})
	read := func() *mtmv1.PersonalMedicationList {
		t.Helper()
		res, err := svc.GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: "pat-1"}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetMedicationList()
	}
	first := read()
	if second := read(); second != first {
		t.Fatal("the second read of an unchanged record built a new answer (no hit on Redis)")
	}
	if _, err := b.UpdatePatient(t.Context(), "pat-1", func(p store.Patient) (store.Patient, error) {
		p.Medications[0].Name = "changed on b"
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	third := read()
	if third == first || !slices.ContainsFunc(third.GetMedications(), func(m *mtmv1.Medication) bool { return m.GetName() == "changed on b" }) {
		t.Fatal("a record changed through another store got the old answer")
	}
}
