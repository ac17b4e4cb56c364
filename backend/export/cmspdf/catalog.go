package cmspdf

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"

	"github.com/mtmapp/mtm/backend/store"
)

// The document's own wording lives in catalog/<BCP 47 tag>.json, one file
// per language, each with every key of en.json. A language is added by
// adding its file: no code changes.
//
//go:embed catalog/*.json
var catalogFiles embed.FS

// catalog is one language's wording: keys to texts with {placeholders}.
type catalog struct {
	tag   language.Tag
	texts map[string]string
}

type catalogSet struct {
	byTag   map[language.Tag]catalog
	order   []language.Tag // the matcher's tags, English first
	matcher language.Matcher
}

// catalogs parses the embedded catalogs once; they are read-only after.
var catalogs = sync.OnceValues(func() (catalogSet, error) {
	entries, err := catalogFiles.ReadDir("catalog")
	if err != nil {
		return catalogSet{}, err
	}
	set := catalogSet{byTag: map[language.Tag]catalog{}}
	tags := []language.Tag{language.English} // the fallback comes first
	for _, e := range entries {
		tag, err := language.Parse(strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
		if err != nil {
			return catalogSet{}, fmt.Errorf("catalog %s: %w", e.Name(), err)
		}
		raw, err := catalogFiles.ReadFile("catalog/" + e.Name())
		if err != nil {
			return catalogSet{}, err
		}
		var texts map[string]string
		if err := json.Unmarshal(raw, &texts); err != nil {
			return catalogSet{}, fmt.Errorf("catalog %s: %w", e.Name(), err)
		}
		set.byTag[tag] = catalog{tag: tag, texts: texts}
		if tag != language.English {
			tags = append(tags, tag)
		}
	}
	en, ok := set.byTag[language.English]
	if !ok {
		return catalogSet{}, fmt.Errorf("catalog: en.json missing")
	}
	for tag, c := range set.byTag {
		for key := range en.texts {
			if _, ok := c.texts[key]; !ok {
				return catalogSet{}, fmt.Errorf("catalog %s: no text for %q", tag, key)
			}
		}
		if n := len(strings.Split(c.texts["months"], "|")); n != 12 {
			return catalogSet{}, fmt.Errorf("catalog %s: %d month names, want 12", tag, n)
		}
	}
	set.order, set.matcher = tags, language.NewMatcher(tags)
	return set, nil
})

// Languages lists the BCP 47 tags the document can be written in.
func Languages() []string {
	set, err := catalogs()
	if err != nil {
		return nil
	}
	var out []string
	for tag := range set.byTag {
		out = append(out, tag.String())
	}
	slices.Sort(out)
	return out
}

// catalogFor returns the catalog that best matches a patient's preferred
// language (a BCP 47 tag; English when empty, unknown or unmatched).
func catalogFor(preferred string) (catalog, error) {
	set, err := catalogs()
	if err != nil {
		return catalog{}, fmt.Errorf("cmspdf: %w", err)
	}
	want, _, err := language.ParseAcceptLanguage(preferred)
	if err != nil || len(want) == 0 {
		return set.byTag[language.English], nil
	}
	_, i, conf := set.matcher.Match(want...)
	if conf == language.No {
		return set.byTag[language.English], nil
	}
	return set.byTag[set.order[i]], nil
}

// text returns the wording for key with its placeholders filled from
// pairs of name, value.
func (c catalog) text(key string, args ...string) string {
	s := c.texts[key]
	for i := 0; i+1 < len(args); i += 2 {
		s = strings.ReplaceAll(s, "{"+args[i]+"}", args[i+1])
	}
	return s
}

// date formats a date as the language writes dates on forms (US: MM/DD/YYYY).
func (c catalog) date(d store.Date) string {
	if d.IsZero() {
		return ""
	}
	return d.Time().Format(c.texts["date"])
}

// longDate writes a date in words, for the letter.
func (c catalog) longDate(d store.Date) string {
	months := strings.Split(c.texts["months"], "|")
	return c.text("long_date", "month", months[d.Month-time.January], "day", strconv.Itoa(d.Day), "year", strconv.Itoa(d.Year))
}
