package seed

// drug is one row of the catalogue medication lists are drawn from: names,
// strengths, RxNorm ids and directions as they appear on real Personal
// Medication Lists of older adults with chronic conditions.
type drug struct {
	name, strength, rxcui, how, why string
	// dosesPerDay is how many dose reminders a day the medicine gets
	// (0: taken as needed, no schedule).
	dosesPerDay int
}

var catalogue = []drug{
	{"Metformin hydrochloride extended-release", "500 mg tablet", "860975", "Take 2 tablets by mouth once daily with the evening meal", "Type 2 diabetes: keeps blood sugar in range", 1},
	{"Lisinopril", "20 mg tablet", "314077", "Take 1 tablet by mouth every morning", "High blood pressure and to protect my kidneys", 1},
	{"Atorvastatin calcium", "40 mg tablet", "617311", "Take 1 tablet by mouth at bedtime", "High cholesterol; lowers risk of heart attack and stroke", 1},
	{"Apixaban", "5 mg tablet", "1364445", "Take 1 tablet by mouth twice daily, 12 hours apart", "Atrial fibrillation: prevents blood clots", 2},
	{"Fluticasone propionate / salmeterol", "250 mcg/50 mcg inhalation powder", "896188", "Inhale 1 puff twice daily; rinse mouth after use", "COPD maintenance", 2},
	{"Levothyroxine sodium", "75 mcg tablet", "966247", "Take 1 tablet on an empty stomach 30 minutes before breakfast", "Underactive thyroid", 1},
	{"Sertraline", "50 mg tablet", "312940", "Take 1 tablet by mouth once daily in the morning", "Depression and anxiety", 1},
	{"Omeprazole", "20 mg delayed-release capsule", "198053", "Take 1 capsule 30 minutes before breakfast", "Acid reflux", 1},
	{"Insulin glargine", "100 units/mL pen injector", "847230", "Inject 22 units under the skin at bedtime", "Type 2 diabetes: long-acting insulin", 1},
	{"Amlodipine besylate", "5 mg tablet", "197361", "Take 1 tablet by mouth once daily", "High blood pressure", 1},
	{"Metoprolol succinate extended-release", "50 mg tablet", "866427", "Take 1 tablet by mouth once daily; do not crush", "Heart rate control and blood pressure", 1},
	{"Furosemide", "40 mg tablet", "313988", "Take 1 tablet by mouth every morning; not after 4 pm", "Fluid build-up from heart failure", 1},
	{"Potassium chloride extended-release", "20 mEq tablet", "628958", "Take 1 tablet by mouth daily with food and a full glass of water", "Keeps potassium up while on a water pill", 1},
	{"Gabapentin", "300 mg capsule", "310431", "Take 1 capsule by mouth three times daily", "Nerve pain in my feet", 3},
	{"Tamsulosin", "0.4 mg capsule", "863669", "Take 1 capsule by mouth 30 minutes after the same meal each day", "Enlarged prostate: easier urination", 1},
	{"Donepezil", "10 mg tablet", "997223", "Take 1 tablet by mouth at bedtime", "Memory", 1},
	{"Alendronate sodium", "70 mg tablet", "904419", "Take 1 tablet weekly on Sunday with a full glass of water; stay upright 30 minutes", "Osteoporosis: strengthens bones", 0},
	{"Calcium carbonate / vitamin D3", "600 mg/400 IU tablet", "308949", "Take 1 tablet by mouth twice daily with meals", "Bone health", 2},
	{"Clopidogrel", "75 mg tablet", "309362", "Take 1 tablet by mouth once daily", "After my heart stent: prevents clots", 1},
	{"Empagliflozin", "10 mg tablet", "1545658", "Take 1 tablet by mouth every morning", "Type 2 diabetes and heart failure", 1},
	{"Albuterol sulfate HFA", "90 mcg/actuation inhaler", "745679", "Inhale 2 puffs every 4 to 6 hours as needed for wheezing", "Shortness of breath (rescue inhaler)", 0},
	{"Acetaminophen", "500 mg tablet", "198440", "Take 2 tablets by mouth every 6 hours as needed; no more than 6 a day", "Knee and back pain", 0},
	{"Latanoprost", "0.005% eye drops", "312464", "Instill 1 drop in each eye at bedtime", "Glaucoma: lowers eye pressure", 1},
	{"Montelukast", "10 mg tablet", "200224", "Take 1 tablet by mouth in the evening", "Asthma and allergies", 1},
	{"Spironolactone", "25 mg tablet", "313096", "Take 1 tablet by mouth once daily", "Heart failure", 1},
	{"Warfarin sodium", "5 mg tablet", "855332", "Take as directed by the anticoagulation clinic; same time each evening", "Blood clot prevention; INR checked monthly", 1},
	{"Trazodone", "50 mg tablet", "856377", "Take 1 tablet by mouth at bedtime as needed for sleep", "Trouble sleeping", 0},
	{"Vitamin B12 (cyanocobalamin)", "1000 mcg tablet", "1244014", "Take 1 tablet by mouth once daily", "Low B12 from long-term metformin", 1},
	{"Docusate sodium", "100 mg capsule", "1247401", "Take 1 capsule by mouth twice daily as needed", "Constipation", 0},
	{"Fish oil (omega-3, self-started)", "1000 mg capsule", "", "1 capsule daily, bought over the counter", "Heart health; started on my own", 0},
}

var prescribers = []string{
	"Dr. Priya Raghunathan, MD (Internal Medicine)", "Dr. Miguel Alvarez (Cardiology)", "Dr. Susan Patel (Family Medicine)",
	"Dr. Hannah Nguyen (Endocrinology)", "Dr. Tomasz Kowalski (Pulmonology)", "Dr. Grace Okafor (Geriatrics)",
}

var givenNames = []string{"Margaret", "Robert", "Dolores", "James", "Evelyn", "Harold", "Lucia", "Walter", "Mei", "Samuel", "Rosa", "Arthur"}
var familyNames = []string{"Chen", "O'Connor-Villanueva", "Okafor", "Schmidt", "Nakamura", "Johnson", "Haddad", "Kowalski", "Garcia", "Patel"}
var zones = []string{"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix", "Pacific/Honolulu"}

var actionItems = []struct{ talked, todo string }{
	{"Blood sugar readings have been above 180 after dinner.", "Check my blood sugar 2 hours after dinner and write it in my log."},
	{"Ibuprofen and naproxen raise the risk of bleeding with my blood thinner.", "Use acetaminophen for pain instead; call the pharmacy before starting any new pain reliever."},
	{"Levothyroxine works best on an empty stomach, apart from calcium.", "Take levothyroxine when I wake up and calcium at lunch."},
	{"Missed evening doses when away from home.", "Keep a spare weekly organizer in my bag and set a phone alarm for 8 pm."},
	{"Dizziness when standing up since the blood pressure dose went up.", "Stand up slowly, check my blood pressure mornings for 2 weeks, bring the log to my visit."},
}
