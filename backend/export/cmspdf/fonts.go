package cmspdf

import (
	_ "embed"
	"fmt"
	"sync"
	"unicode"

	"golang.org/x/image/font/sfnt"
)

// The embedded fonts (see fonts/README.md for their coverage and licenses).
// A document embeds only the glyphs it uses (fpdf subsets UTF-8 fonts).
var (
	//go:embed fonts/NotoSans-Regular.ttf
	notoSansRegular []byte
	//go:embed fonts/NotoSans-Bold.ttf
	notoSansBold []byte
	//go:embed fonts/DroidSansFallbackFull.ttf
	droidSansFallback []byte
	//go:embed fonts/NanumGothic.ttf
	nanumGothic []byte
)

// face is one font file a run of text can be set in.
type face struct {
	family string // fpdf family name
	style  string // fpdf style: "" or "B"
	data   []byte
	parsed func() (*sfnt.Font, error) // parsed once, read-only afterwards
}

func newFace(family, style string, data []byte) *face {
	return &face{family: family, style: style, data: data,
		parsed: sync.OnceValues(func() (*sfnt.Font, error) { return sfnt.Parse(data) })}
}

var (
	faceRegular = newFace("NotoSans", "", notoSansRegular)
	faceBold    = newFace("NotoSans", "B", notoSansBold)
	faceCJK     = newFace("DroidSansFallback", "", droidSansFallback)
	faceHangul  = newFace("NanumGothic", "", nanumGothic)
)

// chain lists the faces tried in order for a character in a text style:
// the first that has a glyph sets it. Droid Sans Fallback has only part of
// the Hangul syllables, so Korean is set in Nanum Gothic (a word never
// mixes the two); Chinese stays in Droid, whose coverage of Hanzi is the
// wider. CJK has no bold face: bold CJK text is set in the regular one.
func chain(style string, r rune) []*face {
	latin := faceRegular
	if style == "B" {
		latin = faceBold
	}
	if unicode.Is(unicode.Hangul, r) {
		return []*face{latin, faceHangul, faceCJK}
	}
	return []*face{latin, faceCJK, faceHangul}
}

// UnprintableError reports a character of the record that the PDF cannot
// print. The export fails with it rather than print the text with the
// character missing: a medicine or an allergy with a character dropped can
// read as another one.
type UnprintableError struct {
	// Field names the record's field that holds the character, e.g.
	// `allergies["al_1"].substance`.
	Field string
	// Char is the character.
	Char rune
	// Reason says why it cannot be printed.
	Reason string
}

func (e *UnprintableError) Error() string {
	return fmt.Sprintf("cmspdf: %s: character %U cannot be printed: %s", e.Field, e.Char, e.Reason)
}

// rightToLeft are the scripts written right to left. fpdf neither shapes
// nor reorders them, so printing them would put the letters in the wrong
// order and form: they are refused.
var rightToLeft = []*unicode.RangeTable{unicode.Arabic, unicode.Hebrew, unicode.Syriac, unicode.Thaana, unicode.Nko,
	unicode.Samaritan, unicode.Mandaic, unicode.Adlam}

// faceFinder picks the face for each character, remembering its answers.
type faceFinder struct {
	buf  sfnt.Buffer
	memo map[faceKey]*face
}

type faceKey struct {
	style string
	r     rune
}

// find returns the face that prints r in the given style, or why none can.
func (ff *faceFinder) find(style string, r rune) (*face, string) {
	if f, ok := ff.memo[faceKey{style, r}]; ok {
		return f, ""
	}
	switch {
	case r > 0xFFFF:
		// fpdf's UTF-8 fonts address glyphs with 16-bit codes.
		return nil, "characters outside the Basic Multilingual Plane (such as emoji) are not supported in the PDF"
	case unicode.In(r, rightToLeft...):
		return nil, "right-to-left scripts (such as Arabic or Hebrew) are not supported in the PDF"
	case unicode.IsControl(r):
		return nil, "control characters cannot be printed"
	}
	for _, f := range chain(style, r) {
		font, err := f.parsed()
		if err != nil {
			return nil, "embedded font unreadable: " + err.Error()
		}
		if gi, err := font.GlyphIndex(&ff.buf, r); err == nil && gi != 0 {
			if ff.memo == nil {
				ff.memo = map[faceKey]*face{}
			}
			ff.memo[faceKey{style, r}] = f
			return f, ""
		}
	}
	return nil, "no embedded font has this character"
}
