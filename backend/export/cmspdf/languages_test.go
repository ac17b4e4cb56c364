package cmspdf_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/mtmapp/mtm/backend/export/cmspdf"
	"github.com/mtmapp/mtm/backend/store"
)

// squeeze drops all white space, so that text wrapped onto several lines
// (Chinese has no spaces to break at) compares equal to the original.
func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, norm.NFC.String(s))
}

// multilingual is a record written in one language: the name, a medicine,
// how it is taken, an allergy and the pharmacist's plan.
type multilingual struct {
	lang                         string
	given, family                string
	medicine, howIUse, whyIUse   string
	substance, reaction          string
	talkedAbout, needToDo, other string
}

// The languages of US Medicare beneficiaries that the PDF must print.
var languages = []multilingual{
	{"English", "Margaret", "O'Brien", "Apixaban", "1 tablet twice a day", "Prevent stroke", "Penicillin", "Hives",
		"Bleeding risk with ibuprofen", "Use acetaminophen for pain", "Lives alone; daughter visits weekly"},
	{"Spanish", "José", "Muñoz Peña", "Metformina", "1 tableta dos veces al día con las comidas", "Diabetes", "Penicilina", "Urticaria y picazón",
		"¿Puedo tomar ibuprofeno?", "Use acetaminofén para el dolor", "Prefiere recibir llamadas por la mañana"},
	{"Chinese (simplified)", "秀英", "王", "阿司匹林", "每天一次，每次一片，饭后服用", "预防心脏病发作", "磺胺类药物", "皮疹，呼吸困难",
		"服用布洛芬有出血风险", "疼痛时改用对乙酰氨基酚", "与女儿同住"},
	{"Chinese (traditional)", "美玲", "陳", "二甲雙胍", "每日兩次，隨餐服用", "糖尿病", "青黴素", "蕁麻疹",
		"飯後血糖偏高", "晚飯後散步二十分鐘", "使用藥盒整理藥物"},
	{"Vietnamese", "Thị Hương", "Nguyễn", "Thuốc hạ huyết áp Amlodipine", "Uống 1 viên mỗi sáng", "Huyết áp cao", "Sulfamid", "Phát ban, khó thở",
		"Chóng mặt khi đứng dậy", "Đứng dậy từ từ", "Sống với con trai"},
	{"Korean", "민준", "김", "아스피린", "하루 한 번 식후 한 알", "심장마비 예방", "페니실린", "두드러기",
		"이부프로펜과 출혈 위험", "통증에는 아세트아미노펜을 사용하세요", "딸이 매주 방문합니다"},
	{"Tagalog", "Maria", "Dela Cruz", "Losartan", "Isang tableta tuwing umaga", "Altapresyon", "Penisilin", "Pangangati ng balat",
		"Pagkahilo kapag tumatayo", "Tumayo nang dahan-dahan", "Nakatira kasama ang anak na babae"},
	{"Russian", "Ольга", "Иванова", "Аторвастатин", "1 таблетка на ночь", "Высокий холестерин", "Пенициллин", "Сыпь и зуд",
		"Боль в мышцах", "Сообщить врачу о боли в мышцах", "Живёт одна, дочь навещает по выходным"},
	{"Haitian Creole", "Jèn", "Pòl", "Metfòmin", "Pran 1 grenn de fwa pa jou ak manje", "Dyabèt", "Penisilin", "Gratèl sou po",
		"Sik nan san wo apre manje", "Mache 20 minit apre dine", "Pitit fi li ede l pran grenn yo"},
}

func (m multilingual) patient() store.Patient {
	return store.Patient{
		ID: "pt_lang", GivenName: m.given, FamilyName: m.family, DateOfBirth: date("1948-03-12"),
		Medications:      []store.Medication{{ID: "md_1", Name: m.medicine, HowIUseIt: m.howIUse, WhyIUseIt: m.whyIUse, StartedOn: date("2024-09-10")}},
		Allergies:        []store.Allergy{{ID: "al_1", Kind: store.KindAllergy, Substance: m.substance, Reaction: m.reaction}},
		ActionItems:      []store.ActionItem{{ID: "ai_1", WhatWeTalkedAbout: m.talkedAbout, WhatINeedToDo: m.needToDo}},
		OtherInformation: m.other,
	}
}

// TestRenderPrintsEveryLanguage renders a record written in each language
// and reads the text back out of the PDF: every field must come back
// whole, character for character.
func TestRenderPrintsEveryLanguage(t *testing.T) {
	for _, m := range languages {
		t.Run(m.lang, func(t *testing.T) {
			doc, err := cmspdf.Render(cmspdf.Input{Patient: m.patient(), Pharmacy: store.Pharmacy{Name: "Main Street Pharmacy"}, Prepared: date("2026-03-15")})
			if err != nil {
				t.Fatal(err)
			}
			text := squeeze(pdfText(t, doc))
			for _, want := range []struct{ field, text string }{
				{"name", m.given + " " + m.family}, {"medicine", m.medicine}, {"how I use it", m.howIUse}, {"why I use it", m.whyIUse},
				{"allergy", m.substance + ": " + m.reaction}, {"what we talked about", m.talkedAbout}, {"what I need to do", m.needToDo},
				{"other information", m.other},
			} {
				if !strings.Contains(text, squeeze(want.text)) {
					t.Errorf("%s %q is not in the PDF's text", want.field, want.text)
				}
			}
			if t.Failed() {
				t.Logf("PDF text: %s", text)
			}
		})
	}
}

// TestRenderRefusesWhatItCannotPrint: a character no embedded font can
// print fails the export with an error naming the field, never a PDF with
// the character missing.
func TestRenderRefusesWhatItCannotPrint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*store.Patient)
		field string
		char  rune
	}{
		{"Arabic allergy (right to left)", func(p *store.Patient) { p.Allergies[0].Reaction = "طفح جلدي" }, `allergies["al_1"].reaction`, 'ط'},
		{"Hebrew medicine", func(p *store.Patient) { p.Medications[0].Name = "אספירין" }, `medications["md_1"].name`, 'א'},
		{"Hindi instructions (no embedded font)", func(p *store.Patient) { p.Medications[0].HowIUseIt = "दिन में दो बार" }, `medications["md_1"].how_i_use_it`, 'द'},
		{"emoji in the plan", func(p *store.Patient) { p.ActionItems[0].WhatINeedToDo = "Walk 🚶 daily" }, `action_items["ai_1"].what_i_need_to_do`, '🚶'},
		{"Thai family name", func(p *store.Patient) { p.FamilyName = "สมชาย" }, "patient.name", 'ส'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := languages[0].patient()
			tc.edit(&p)
			doc, err := cmspdf.Render(cmspdf.Input{Patient: p, Pharmacy: store.Pharmacy{Name: "Main"}, Prepared: date("2026-03-15")})
			var ue *cmspdf.UnprintableError
			if !errors.As(err, &ue) {
				t.Fatalf("Render = %d bytes, %v; want an UnprintableError", len(doc), err)
			}
			if ue.Field != tc.field || ue.Char != tc.char {
				t.Errorf("error names %s %U, want %s %U (%v)", ue.Field, ue.Char, tc.field, tc.char, err)
			}
		})
	}
}
