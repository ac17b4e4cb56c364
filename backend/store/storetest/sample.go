package storetest

import (
	"fmt"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// sampleBase is the instant sample records are built around. It has
// microsecond precision and a non-UTC offset so that round trips that drop
// either show up.
var sampleBase = time.Date(2026, time.March, 14, 9, 26, 53, 123456000, time.FixedZone("EST", -5*60*60))

// sampleDrugs are realistic Personal Medication List rows; SamplePatient
// cycles through them.
var sampleDrugs = []struct {
	name, strength, rxcui, how, why string
}{
	{"Metformin hydrochloride extended-release", "500 mg tablet", "860975", "Take 2 tablets by mouth once daily with the evening meal", "Type 2 diabetes: keeps blood sugar in range"},
	{"Lisinopril", "20 mg tablet", "314077", "Take 1 tablet by mouth every morning", "High blood pressure and to protect my kidneys"},
	{"Atorvastatin calcium", "40 mg tablet", "617311", "Take 1 tablet by mouth at bedtime", "High cholesterol; lowers risk of heart attack and stroke"},
	{"Apixaban", "5 mg tablet", "1364445", "Take 1 tablet by mouth twice daily, 12 hours apart", "Atrial fibrillation: prevents blood clots"},
	{"Fluticasone propionate / salmeterol", "250 mcg/50 mcg inhalation powder", "896188", "Inhale 1 puff twice daily; rinse mouth after use", "COPD maintenance"},
	{"Levothyroxine sodium", "75 mcg tablet", "966247", "Take 1 tablet on an empty stomach 30 minutes before breakfast", "Underactive thyroid"},
	{"Sertraline", "50 mg tablet", "312940", "Take 1 tablet by mouth once daily in the morning", "Depression and anxiety"},
	{"Omeprazole", "20 mg delayed-release capsule", "198053", "Take 1 capsule 30 minutes before breakfast", "Acid reflux"},
	{"Insulin glargine", "100 units/mL pen injector", "847230", "Inject 22 units under the skin at bedtime", "Type 2 diabetes: long-acting insulin"},
	{"St. John's wort (self-started herbal)", "300 mg capsule", "", "1 capsule three times daily, bought over the counter", "Low mood; started on my own"},
}

// SamplePatient returns a fully populated patient record with meds
// medications and realistic field lengths: every field of Patient and of
// its nested records is set, stopped medicines included, and times carry
// microsecond precision in a non-UTC zone. The same arguments always give
// the same record. Version is 0, as a caller passes it to CreatePatient.
func SamplePatient(id, pharmacyID string, meds int) store.Patient {
	at := func(minutes int) time.Time { return sampleBase.Add(time.Duration(minutes) * time.Minute) }
	start := store.Date{Year: 2024, Month: time.January, Day: 15}
	p := store.Patient{
		ID:                id,
		PharmacyID:        pharmacyID,
		GivenName:         "Margaret",
		FamilyName:        "O'Connor-Villanueva",
		DateOfBirth:       store.Date{Year: 1948, Month: time.November, Day: 3},
		TimeZone:          "America/New_York",
		QuietHours:        store.QuietHours{StartMinute: 22 * 60, EndMinute: 7*60 + 30},
		PushNamesMedicine: true,
		PreferredLanguage: "es-US",
		Address:           "1200 W Maple Ave, Apt 4B\nSpringfield, IL 62704",
		Phone:             "+1 217 555 0143",
		EmergencyContact:  store.Contact{Name: "Siobhan O'Connor", Relationship: "daughter", Phone: "+1 217 555 0199"},
		PrimaryCare:       store.Contact{Name: "Dr. Priya Raghunathan, MD", Relationship: "primary care physician", Phone: "+1 217 555 0110"},
		OtherInformation:  "Lives alone; daughter (caregiver) visits on weekends. Uses a weekly pill organizer. Hard of hearing: prefers written instructions.",
		FollowUpPlan:      "Telephone follow-up in 4 weeks to review blood sugar log and blood pressure readings; next comprehensive review in 12 months.",
		Questions:         "Can I take ibuprofen for my knee pain? Is it safe to keep taking St. John's wort with sertraline?",
		ActivatedAt:       at(90),
		CreatedAt:         at(0),
		UpdatedAt:         at(120),
	}
	for i := range meds {
		d := sampleDrugs[i%len(sampleDrugs)]
		m := store.Medication{
			ID:              fmt.Sprintf("med-%03d", i+1),
			Name:            d.name,
			Strength:        d.strength,
			RxCUI:           d.rxcui,
			HowIUseIt:       d.how,
			WhyIUseIt:       d.why,
			Prescriber:      "Dr. Priya Raghunathan, MD (Internal Medicine)",
			PrescriberPhone: "+1 217 555 0110",
			StartedOn:       start.AddDays(7 * i),
			UpdatedAt:       at(i),
			UpdatedBy:       "acct-pharmacist-0001",
			Version:         int64(i%3 + 1),
		}
		m.History = []store.MedicationChange{
			{At: at(i + 1), By: "acct-pharmacist-0001", Reason: "Dose adjusted per prescriber after lab results (eGFR 52)"},
		}
		if i%4 == 3 {
			m.StoppedOn = start.AddDays(7*i + 90)
			m.WhyStopped = "Stopped by prescriber after dizziness; replaced with a lower dose"
			m.History = append(m.History, store.MedicationChange{At: at(i + 2), By: "acct-pharmacist-0002", Reason: "Stopped: dizziness reported at follow-up call"})
		}
		p.Medications = append(p.Medications, m)
		p.Fills = append(p.Fills, store.Fill{
			ID:           fmt.Sprintf("fill-%03d", i+1),
			MedicationID: m.ID,
			FilledOn:     start.AddDays(7*i + 30),
			DaysSupply:   []int{30, 90}[i%2],
			RecordedAt:   at(i + 30),
		})
	}
	p.Allergies = []store.Allergy{
		{ID: "alg-1", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives and swelling of the lips", RecordedAt: at(5)},
		{ID: "alg-2", Kind: store.KindSideEffect, Substance: "Metformin immediate-release", Reaction: "Upset stomach and diarrhea", RecordedAt: at(6)},
	}
	p.ActionItems = []store.ActionItem{
		{
			ID:                "ai-1",
			WhatWeTalkedAbout: "Blood sugar readings have been above 180 after dinner.",
			WhatINeedToDo:     "Check my blood sugar 2 hours after dinner and write it in my log.",
			Progress: []store.Progress{
				{WhatIDid: "Checked after dinner: 172", DoneOn: store.Date{Year: 2026, Month: time.March, Day: 15}, RecordedBy: id, RecordedAt: at(60 * 24)},
				{WhatIDid: "Checked after dinner: 158", DoneOn: store.Date{Year: 2026, Month: time.March, Day: 16}, RecordedBy: "acct-caregiver-0042", RecordedAt: at(60 * 48)},
			},
			CreatedAt: at(10),
			UpdatedAt: at(60 * 48),
			Version:   3,
		},
		{
			ID:                "ai-2",
			WhatWeTalkedAbout: "Taking St. John's wort together with sertraline can cause serotonin syndrome.",
			WhatINeedToDo:     "Stop St. John's wort and tell my doctor how my mood is at the next visit.",
			CreatedAt:         at(11),
			UpdatedAt:         at(11),
			Version:           1,
		},
	}
	p.Grants = []store.Grant{
		{
			ID: "grant-1", CaregiverID: "acct-caregiver-0042", CaregiverName: "Fiona O'Connor",
			Scopes:    []store.Scope{store.ScopeViewMedicines, store.ScopeViewPlan, store.ScopeMessage, store.ScopeMissedDoseAlerts},
			EndsOn:    store.Date{Year: 2027, Month: time.March, Day: 31},
			CreatedAt: at(100),
			RevokedAt: at(200),
		},
		{ID: "grant-2", CaregiverID: "acct-caregiver-0077", CaregiverName: "Home Instead (agency)", Scopes: []store.Scope{store.ScopeManageReminders}, CreatedAt: at(210)},
	}
	p.Devices = []store.Device{{
		ID:           "dev-1",
		FCMToken:     "fcm:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FXKmhX94kIxQ",
		Platform:     "android",
		AppVersion:   "2.4.1 (20417)",
		Locale:       "en-US",
		RegisteredAt: at(90),
	}}
	for i, m := range p.Medications {
		if !m.Active() || i >= 3 {
			continue
		}
		p.DoseSchedules = append(p.DoseSchedules, store.DoseSchedule{
			ID:           fmt.Sprintf("sched-%d", i+1),
			MedicationID: m.ID,
			TimesOfDay:   []int{8 * 60, 20 * 60},
			DaysOfWeek:   []time.Weekday{time.Monday, time.Wednesday, time.Friday},
			StartOn:      m.StartedOn,
			EndOn:        m.StartedOn.AddDays(365),
		})
	}
	p.FollowUps = []store.FollowUp{{
		ID: "fu-1", DueAt: at(60 * 24 * 28), ActionItemID: "ai-1", ReviewID: "rev-1",
		CreatedBy: "acct-pharmacist-0001", CreatedAt: at(15),
	}}
	p.Reviews = []store.Review{{
		ID: "rev-1", Kind: "cmr", DeliveryMethod: "telephone",
		ReviewedOn:   store.Date{Year: 2026, Month: time.March, Day: 14},
		PharmacistID: "acct-pharmacist-0001",
		Problems:     []string{"Post-dinner glucose above goal", "Possible interaction: St. John's wort with sertraline"},
		Interventions: []store.Intervention{
			{Kind: "intervention", Description: "Counselled on glucose monitoring", Action: "counselled_patient"},
			{Kind: "referral", Description: "Advised stopping St. John's wort", ReferredTo: "Dr. Rivera (prescriber)", Outcome: "Prescriber agreed; patient stopped it",
				OutcomeCode: "accepted_implemented"},
		},
		CodedProblems: []store.CodedProblem{
			{Category: store.DTPOther, Description: "Interaction: St. John's wort with sertraline (serotonin syndrome risk)"},
			{Category: store.DTPIneffectiveDrug, Description: "Post-dinner glucose above goal on metformin"},
		},
		CognitiveImpairment: true,
		CreatedAt:           at(14),
		SummaryDeliveredOn:  store.Date{Year: 2026, Month: time.March, Day: 20},
		SummaryMethod:       "mail",
		SummaryRecipient:    "patient",
	}}
	p.SelfReports = []store.SelfReport{{
		ID: "self-1", Kind: "herbal", Name: "St. John's wort 300 mg", HowIUseIt: "1 capsule three times daily",
		StartedOn:  store.Date{Year: 2026, Month: time.January, Day: 5},
		ReportedBy: id, ReportedAt: at(3), Status: "declined", ResolvedBy: "acct-pharmacist-0001",
		ResolvedAt: at(13), DeclineReason: "Interacts with sertraline; patient agreed to stop", MedicationID: "med-010",
	}}
	p.Conditions = []store.Condition{{
		ID: "cond-1", Kind: store.ConditionInpatient, From: store.Date{Year: 2026, Month: time.February, Day: 2},
		Through: store.Date{Year: 2026, Month: time.February, Day: 9}, Note: "Admitted for pneumonia",
		RecordedBy: "acct-pharmacist-0001", RecordedAt: at(12),
	}}
	p.Worklist = store.WorklistDates{
		CMRDue:   store.Date{Year: 2027, Month: time.March, Day: 6},
		BelowPDC: store.Date{Year: 2026, Month: time.June, Day: 30},
		FollowUp: store.Date{Year: 2026, Month: time.April, Day: 1},
	}
	return p
}
