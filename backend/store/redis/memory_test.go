package redisstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// TestMemoryPerPatient stores n 20-medication patients in each record
// format and reports the Redis memory they take: the encoded record, MEMORY
// USAGE of one record key and the growth of INFO used_memory per patient
// (record plus its pharmacy-index entry). "sample" is
// storetest.SamplePatient, whose 20 medicines repeat 10 drug rows;
// "distinct" gives medicines 11-20 rows of their own, which compresses less
// and is closer to a real list.
func TestMemoryPerPatient(t *testing.T) {
	const n = 2000
	records := []struct {
		name    string
		patient func(id string) store.Patient
	}{
		{"sample", func(id string) store.Patient { return storetest.SamplePatient(id, "ph-1", 20) }},
		{"distinct", func(id string) store.Patient { return distinctMedicines(storetest.SamplePatient(id, "ph-1", 20)) }},
	}
	for _, rec := range records {
		for _, format := range redisstore.PatientFormats() {
			t.Run(rec.name+"/"+format, func(t *testing.T) {
				raw, one, perPatient := memoryPerPatient(t, format, n, rec.patient)
				t.Logf("%-8s %-4s: encoded record %5d bytes, MEMORY USAGE %5d bytes, used_memory growth %5.0f bytes/patient over %d patients",
					rec.name, format, raw, one, perPatient, n)
				if budget := memoryBudget[format]; perPatient > budget {
					t.Errorf("%.0f bytes per patient, want at most %.0f (the README's budget for %s records)", perPatient, budget, format)
				}
			})
		}
	}
}

// memoryBudget is the Redis memory per 20-medicine patient the README
// states for each record format: about 6 KB (6,144 bytes) for the zstd
// records written today; v1 records, written by releases before zstd, are
// kept within 13 KB.
var memoryBudget = map[string]float64{"zstd": 6144, "v1": 13 << 10}

// memoryPerPatient creates n patients in format on a fresh server and
// returns the length and MEMORY USAGE of one record and the used_memory
// growth per patient.
func memoryPerPatient(t *testing.T, format string, n int, patient func(id string) store.Patient) (raw, one int64, perPatient float64) {
	t.Helper()
	addr, _ := redistest.StartServer(t)
	s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	redisstore.WritePatientsAs(s, format)
	ctx := t.Context()
	before := usedMemory(t, s)
	for i := range n {
		if err := s.CreatePatient(ctx, patient(fmt.Sprintf("pat-%06d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The creates' operation replies expire within seconds; count what stays.
	keys, _ := s.Client().Keys(ctx, "mtm:*:op:*").Result()
	if len(keys) > 0 {
		if err := s.Client().Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after := usedMemory(t, s)
	one, err = s.Client().MemoryUsage(ctx, "mtm:{p:pat-000001}").Result()
	if err != nil {
		t.Fatal(err)
	}
	raw, err = s.Client().StrLen(ctx, "mtm:{p:pat-000001}").Result()
	if err != nil {
		t.Fatal(err)
	}
	return raw, one, float64(after-before) / float64(n)
}

// moreDrugs are ten Personal Medication List rows that storetest's sample
// list does not have.
var moreDrugs = [...]struct{ name, strength, rxcui, how, why string }{
	{"Amlodipine besylate", "5 mg tablet", "197361", "Take 1 tablet by mouth once daily", "High blood pressure"},
	{"Furosemide", "40 mg tablet", "313988", "Take 1 tablet every morning; weigh myself daily", "Fluid build-up from heart failure"},
	{"Gabapentin", "300 mg capsule", "310431", "Take 1 capsule three times daily for nerve pain", "Burning pain in my feet (neuropathy)"},
	{"Carvedilol", "12.5 mg tablet", "200033", "Take 1 tablet twice daily with food", "Heart failure and heart rate control"},
	{"Tamsulosin hydrochloride", "0.4 mg capsule", "863669", "Take 1 capsule 30 minutes after the same meal each day", "Enlarged prostate: easier urination"},
	{"Donepezil", "10 mg tablet", "997223", "Take 1 tablet at bedtime", "Memory problems"},
	{"Alendronate sodium", "70 mg tablet", "904421", "Once a week on Sunday with a full glass of water; stay upright 30 minutes", "Thin bones (osteoporosis)"},
	{"Albuterol sulfate HFA", "90 mcg/actuation inhaler", "745679", "Inhale 2 puffs every 4 to 6 hours as needed for wheezing", "Rescue inhaler for shortness of breath"},
	{"Potassium chloride ER", "20 mEq tablet", "628958", "Take 1 tablet daily with food and a full glass of water", "Low potassium from the water pill"},
	{"Vitamin D3 (cholecalciferol)", "2000 IU softgel", "", "Take 1 softgel daily with lunch", "Low vitamin D level"},
}

// distinctMedicines gives medicines 11-20 of a sample patient drug rows
// and a prescriber of their own, so the record does not repeat itself.
func distinctMedicines(p store.Patient) store.Patient {
	meds := append([]store.Medication(nil), p.Medications...)
	for i := 10; i < len(meds); i++ {
		d := moreDrugs[(i-10)%len(moreDrugs)]
		meds[i].Name, meds[i].Strength, meds[i].RxCUI, meds[i].HowIUseIt, meds[i].WhyIUseIt = d.name, d.strength, d.rxcui, d.how, d.why
		meds[i].Prescriber = "Dr. Samuel Okafor, DO (Cardiology)"
	}
	p.Medications = meds
	return p
}

func usedMemory(t *testing.T, s *redisstore.Store) int64 {
	t.Helper()
	info, err := s.Client().Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}
