package clinical

import (
	"slices"
	"strings"
	"unicode"
)

// Measure names an adherence measure.
type Measure string

// The PQA Proportion of Days Covered measures this package computes. The
// three class measures pool every medicine of their class; a medicine
// outside them gets a per-medicine PDC, which is not a PQA measure (PQA
// defines no measure for, say, an anticoagulant in this set) but uses the
// same rules.
const (
	// MeasureDiabetes is PDC-DR: non-insulin diabetes medications
	// (biguanides, sulfonylureas, thiazolidinediones, DPP-4 inhibitors,
	// GLP-1 receptor agonists, meglitinides, SGLT2 inhibitors and their
	// combinations). Patients who use insulin are excluded.
	MeasureDiabetes Measure = "PDC-DR"
	// MeasureRASA is PDC-RASA: renin-angiotensin system antagonists (ACE
	// inhibitors, ARBs, the direct renin inhibitor and their combinations).
	// Patients who use sacubitril/valsartan are excluded.
	MeasureRASA Measure = "PDC-RASA"
	// MeasureStatins is PDC-STA: statins and statin combinations.
	MeasureStatins Measure = "PDC-STA"
	// MeasurePerMedicine is a per-medicine PDC for a medicine outside the
	// three PQA classes.
	MeasurePerMedicine Measure = "per-medicine"
)

// Ingredient is one entry of the value set: an RxNorm ingredient (term type
// IN) and the measure it counts toward.
type Ingredient struct {
	RxCUI   string  // RxNorm ingredient concept id
	Name    string  // RxNorm ingredient name, lower case
	Measure Measure // MeasureDiabetes, MeasureRASA or MeasureStatins; "" for exclusion-only entries
	// Brands are common US brand names of single-ingredient products
	// (lower case), so that a PML row written as "Lipitor 20 mg" is found.
	Brands []string
}

// ValueSetSource names where the value set comes from. It is not PQA's
// licensed Medication List (the NDC-level lists PQA publishes to members
// each year, also used by NCQA and CMS), which this project cannot
// download. It is a small list of the common ingredients of each class as
// those lists define the classes, written from public knowledge (RxNorm
// ingredient names and RxCUIs as RxNav shows them), matched by ingredient
// RxCUI and by ingredient or brand name, so that combination products
// ("amlodipine and atorvastatin") count toward the class of their target
// ingredient. Before relying on it for reporting to a plan, check it
// against the current PQA Medication List.
const ValueSetSource = "hand-built from public knowledge after the PQA Medication List classes for PDC-DR, PDC-RASA and PDC-STA (not the licensed PQA/NCQA list)"

// valueSet is the shipped value set; see ValueSetSource.
var valueSet = []Ingredient{
	// PDC-STA: statins.
	{"83367", "atorvastatin", MeasureStatins, []string{"lipitor"}},
	{"36567", "simvastatin", MeasureStatins, []string{"zocor"}},
	{"301542", "rosuvastatin", MeasureStatins, []string{"crestor"}},
	{"42463", "pravastatin", MeasureStatins, []string{"pravachol"}},
	{"6472", "lovastatin", MeasureStatins, []string{"mevacor", "altoprev"}},
	{"41127", "fluvastatin", MeasureStatins, []string{"lescol"}},
	{"861634", "pitavastatin", MeasureStatins, []string{"livalo", "zypitamag"}},

	// PDC-RASA: ACE inhibitors, ARBs, direct renin inhibitor.
	{"29046", "lisinopril", MeasureRASA, []string{"zestril", "prinivil", "qbrelis"}},
	{"3827", "enalapril", MeasureRASA, []string{"vasotec"}},
	{"35296", "ramipril", MeasureRASA, []string{"altace"}},
	{"18867", "benazepril", MeasureRASA, []string{"lotensin"}},
	{"1998", "captopril", MeasureRASA, nil},
	{"50166", "fosinopril", MeasureRASA, nil},
	{"35208", "quinapril", MeasureRASA, []string{"accupril"}},
	{"54552", "perindopril", MeasureRASA, nil},
	{"38454", "trandolapril", MeasureRASA, nil},
	{"30131", "moexipril", MeasureRASA, nil},
	{"52175", "losartan", MeasureRASA, []string{"cozaar"}},
	{"69749", "valsartan", MeasureRASA, []string{"diovan", "entresto"}},
	{"83818", "irbesartan", MeasureRASA, []string{"avapro"}},
	{"321064", "olmesartan", MeasureRASA, []string{"benicar"}},
	{"73494", "telmisartan", MeasureRASA, []string{"micardis"}},
	{"214354", "candesartan", MeasureRASA, []string{"atacand"}},
	{"1091643", "azilsartan", MeasureRASA, []string{"edarbi"}},
	{"83515", "eprosartan", MeasureRASA, nil},
	{"325646", "aliskiren", MeasureRASA, []string{"tekturna"}},

	// PDC-DR: non-insulin diabetes medications.
	{"6809", "metformin", MeasureDiabetes, []string{"glucophage", "glumetza", "fortamet"}},
	{"4821", "glipizide", MeasureDiabetes, []string{"glucotrol"}},
	{"4815", "glyburide", MeasureDiabetes, []string{"glynase", "diabeta"}},
	{"25789", "glimepiride", MeasureDiabetes, []string{"amaryl"}},
	{"33738", "pioglitazone", MeasureDiabetes, []string{"actos"}},
	{"84108", "rosiglitazone", MeasureDiabetes, []string{"avandia"}},
	{"593411", "sitagliptin", MeasureDiabetes, []string{"januvia"}},
	{"857974", "saxagliptin", MeasureDiabetes, []string{"onglyza"}},
	{"1100699", "linagliptin", MeasureDiabetes, []string{"tradjenta"}},
	{"1368001", "alogliptin", MeasureDiabetes, []string{"nesina"}},
	{"60548", "exenatide", MeasureDiabetes, []string{"byetta", "bydureon"}},
	{"475968", "liraglutide", MeasureDiabetes, []string{"victoza"}},
	{"1551291", "dulaglutide", MeasureDiabetes, []string{"trulicity"}},
	{"1991302", "semaglutide", MeasureDiabetes, []string{"ozempic", "rybelsus"}},
	{"73044", "repaglinide", MeasureDiabetes, nil},
	{"274332", "nateglinide", MeasureDiabetes, []string{"starlix"}},
	{"1373458", "canagliflozin", MeasureDiabetes, []string{"invokana"}},
	{"1488564", "dapagliflozin", MeasureDiabetes, []string{"farxiga"}},
	{"1545653", "empagliflozin", MeasureDiabetes, []string{"jardiance"}},
	{"1992672", "ertugliflozin", MeasureDiabetes, []string{"steglatro"}},

	// Exclusion-only entries: sacubitril/valsartan (Entresto) excludes a
	// patient from PDC-RASA; insulin excludes a patient from PDC-DR.
	{"1656328", "sacubitril", "", []string{"entresto"}},
}

// insulinRxCUIs are RxNorm ingredient concepts of insulins. Any medicine
// whose name contains "insulin" counts too.
var insulinRxCUIs = []string{
	"5856",    // insulin, regular (human)
	"274783",  // insulin glargine
	"86009",   // insulin lispro
	"51428",   // insulin aspart
	"139825",  // insulin detemir
	"1670007", // insulin degludec
	"352385",  // insulin glulisine
	"253182",  // insulin, regular (human) variant concept
}

var insulinBrands = []string{"lantus", "basaglar", "toujeo", "semglee", "humalog", "admelog", "novolog", "fiasp", "levemir", "tresiba", "apidra", "humulin", "novolin", "afrezza"}

// Classification is what the value set says about one PML row.
type Classification struct {
	// Measure is the class measure the medicine counts toward, or
	// MeasurePerMedicine.
	Measure Measure
	// Target is the medicine's target ingredient(s) for its class measure,
	// "+"-joined when a combination has several (empty for per-medicine):
	// fills of the same target shift forward when they overlap; fills of
	// different targets of one class cover the same days once.
	Target string
	// Insulin and Sacubitril mark the medicines that exclude a patient from
	// PDC-DR and PDC-RASA.
	Insulin, Sacubitril bool
}

// Classify looks a PML row up in the value set, by its RxCUI when that is
// an ingredient concept in the set and otherwise by the ingredient and
// brand names its name contains (whole words, any case).
func Classify(name, rxcui string) Classification {
	// The entries the row names, in value-set order (the first class
	// found wins); a handful at most.
	var buf [8]int
	hits := buf[:0]
	add := func(entries []int) {
		for _, i := range entries {
			if !slices.Contains(hits, i) {
				hits = append(hits, i)
			}
		}
	}
	var c Classification
	if rxcui != "" {
		add(valueSetIndex.byRxCUI[rxcui])
		c.Insulin = valueSetIndex.insulinRxCUI[rxcui]
	}
	for _, w := range nameWords(name) {
		add(valueSetIndex.byWord[w])
		c.Insulin = c.Insulin || valueSetIndex.insulinWord[w]
	}
	slices.Sort(hits)
	var targets []string
	for _, i := range hits {
		in := valueSet[i]
		if in.Measure == "" {
			c.Sacubitril = c.Sacubitril || in.Name == "sacubitril"
			continue
		}
		if c.Measure == "" || c.Measure == in.Measure {
			c.Measure = in.Measure
			targets = append(targets, in.Name)
		}
	}
	if c.Measure == "" {
		c.Measure = MeasurePerMedicine
		return c
	}
	if len(targets) == 1 {
		c.Target = targets[0]
		return c
	}
	slices.Sort(targets)
	c.Target = strings.Join(slices.Compact(targets), "+")
	return c
}

// valueSetIndex finds the value set's entries (indexes into valueSet) by
// ingredient RxCUI and by word of an ingredient or brand name, and the
// insulins by RxCUI and word. Built once from the tables above and never
// changed.
var valueSetIndex = func() (x struct {
	byRxCUI, byWord           map[string][]int
	insulinRxCUI, insulinWord map[string]bool
}) {
	x.byRxCUI, x.byWord = map[string][]int{}, map[string][]int{}
	for i, in := range valueSet {
		x.byRxCUI[in.RxCUI] = append(x.byRxCUI[in.RxCUI], i)
		for _, w := range append([]string{in.Name}, in.Brands...) {
			if !slices.Contains(x.byWord[w], i) {
				x.byWord[w] = append(x.byWord[w], i)
			}
		}
	}
	x.insulinRxCUI, x.insulinWord = map[string]bool{}, map[string]bool{"insulin": true}
	for _, r := range insulinRxCUIs {
		x.insulinRxCUI[r] = true
	}
	for _, b := range insulinBrands {
		x.insulinWord[b] = true
	}
	return x
}()

// nameWords splits a medicine name into lower-case words of letters.
func nameWords(name string) []string {
	return strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return !unicode.IsLetter(r) })
}
