// Package pushtext holds the wording of the pushes people see (reminders,
// missed-dose alerts, "your pharmacist replied") in every language the
// service ships, and picks the one closest to a BCP 47 tag (the patient's
// preferred_language), English when none is close.
//
// The wording lives in catalog/<BCP 47 tag>.json, one file per language,
// each with every key of en.json (checked when the catalogs load, and by
// the tests). A language is added by adding its file: no code changes.
// Texts name no medicine unless the caller passes one, which it does only
// for a patient who opted in.
package pushtext

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"

	"golang.org/x/text/language"
)

//go:embed catalog/*.json
var files embed.FS

// Keys of the catalogs: each push has a title and a body.
const (
	DoseTitle       = "dose_title"
	DoseBody        = "dose_body"
	DoseBodyNamed   = "dose_body_named" // {medicine}
	RefillTitle     = "refill_title"
	RefillBody      = "refill_body"
	RefillBodyNamed = "refill_body_named" // {medicine}
	FollowUpTitle   = "follow_up_title"
	FollowUpBody    = "follow_up_body"
	MissedDoseTitle = "missed_dose_title"
	MissedDoseBody  = "missed_dose_body"
	ReplyTitle      = "reply_title"
	ReplyBody       = "reply_body"
)

type set struct {
	byTag   map[language.Tag]map[string]string
	tags    []language.Tag // English first: the matcher's fallback
	matcher language.Matcher
}

// load parses the embedded catalogs once; they are read-only after.
var load = sync.OnceValues(func() (set, error) {
	entries, err := files.ReadDir("catalog")
	if err != nil {
		return set{}, err
	}
	s := set{byTag: map[language.Tag]map[string]string{}, tags: []language.Tag{language.English}}
	for _, e := range entries {
		tag, err := language.Parse(strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
		if err != nil {
			return set{}, fmt.Errorf("pushtext: catalog %s: %w", e.Name(), err)
		}
		raw, err := files.ReadFile("catalog/" + e.Name())
		if err != nil {
			return set{}, err
		}
		var texts map[string]string
		if err := json.Unmarshal(raw, &texts); err != nil {
			return set{}, fmt.Errorf("pushtext: catalog %s: %w", e.Name(), err)
		}
		s.byTag[tag] = texts
		if tag != language.English {
			s.tags = append(s.tags, tag)
		}
	}
	en, ok := s.byTag[language.English]
	if !ok {
		return set{}, fmt.Errorf("pushtext: catalog en.json missing")
	}
	for tag, texts := range s.byTag {
		for key := range en {
			if texts[key] == "" {
				return set{}, fmt.Errorf("pushtext: catalog %s: no text for %q", tag, key)
			}
		}
	}
	s.matcher = language.NewMatcher(s.tags)
	return s, nil
})

// Languages lists the tags the catalogs ship, English first.
func Languages() ([]language.Tag, error) {
	s, err := load()
	return s.tags, err
}

// Check loads the catalogs and reports the first problem (a file that is
// not JSON, a missing key); binaries call it at start so a bad catalog
// stops them there.
func Check() error {
	_, err := load()
	return err
}

// Text returns the text under key in the shipped language closest to the
// BCP 47 tag lang (English for "" and for languages not shipped), with
// each {name} replaced by vars[name]. A key no catalog has gives the key
// itself (never a panic).
func Text(lang, key string, vars map[string]string) string {
	s, err := load()
	if err != nil {
		return key
	}
	tag := language.English
	if lang != "" {
		if t, err := language.Parse(lang); err == nil {
			_, i, conf := s.matcher.Match(t)
			if conf != language.No {
				tag = s.tags[i]
			}
		}
	}
	text, ok := s.byTag[tag][key]
	if !ok {
		if text, ok = s.byTag[language.English][key]; !ok {
			return key
		}
	}
	for name, v := range vars {
		text = strings.ReplaceAll(text, "{"+name+"}", v)
	}
	return text
}
