package cmspdf

import (
	"strings"
	"unicode"

	"github.com/go-pdf/fpdf"
	"golang.org/x/text/unicode/norm"
)

// The page layer: text set in the embedded fonts, a face per character,
// wrapped to a width, and drawn line by line with page breaks. fpdf's own
// MultiCell sets a whole string in one font; a patient's record mixes
// scripts (a Chinese allergy in an English list), so lines are built here
// from runs that each carry their face.

// style is how a piece of text is set.
type style struct {
	bold bool
	size float64 // points
}

func (s style) fpdfStyle() string {
	if s.bold {
		return "B"
	}
	return ""
}

// run is a stretch of a line set in one face.
type run struct {
	face *face
	text string
	w    float64 // width in mm
}

// line is one line of wrapped text.
type line struct {
	runs []run
	w    float64
}

// glyph is one character with its face and width, the unit of wrapping.
type glyph struct {
	r       rune
	face    *face
	w       float64
	space   bool
	breakOK bool // a line may break before this character (ideographic text has no spaces)
}

// page is the renderer's handle on the PDF with the state text setting
// needs. The first error stops all drawing; Render returns it.
type page struct {
	pdf    *fpdf.Fpdf
	faces  faceFinder
	added  map[*face]bool
	widths map[widthKey]float64 // width of a character at 1 pt, in mm
	err    error
}

type widthKey struct {
	face *face
	r    rune
}

func newPage(pdf *fpdf.Fpdf) *page {
	return &page{pdf: pdf, added: map[*face]bool{}, widths: map[widthKey]float64{}}
}

// use makes f the current font, adding it to the document on first use, so
// that a document without CJK text does not carry the CJK font.
func (p *page) use(f *face, size float64) {
	if !p.added[f] {
		p.pdf.AddUTF8FontFromBytes(f.family, f.style, f.data)
		p.added[f] = true
	}
	p.pdf.SetFont(f.family, f.style, size)
}

func (p *page) width(f *face, r rune, size float64) float64 {
	k := widthKey{f, r}
	w, ok := p.widths[k]
	if !ok {
		p.use(f, 1)
		w = p.pdf.GetStringWidth(string(r))
		p.widths[k] = w
	}
	return w * size
}

// wrap breaks text into lines no wider than width (mm). field names the
// record's field the text comes from, for the error when a character
// cannot be printed; it is empty for the document's own wording.
func (p *page) wrap(field, text string, st style, width float64) []line {
	if p.err != nil {
		return nil
	}
	text = norm.NFC.String(strings.ReplaceAll(text, "\t", " "))
	var lines []line
	for _, para := range strings.Split(text, "\n") {
		glyphs, ok := p.shape(field, para, st)
		if !ok {
			return nil
		}
		lines = append(lines, fill(glyphs, width)...)
	}
	return lines
}

// shape gives each character of one paragraph its face and width.
func (p *page) shape(field, para string, st style) ([]glyph, bool) {
	glyphs := make([]glyph, 0, len(para))
	prevWide := false
	for _, r := range para {
		f, why := p.faces.find(st.fpdfStyle(), r)
		if f == nil {
			if field == "" {
				field = "document text"
			}
			p.err = &UnprintableError{Field: field, Char: r, Reason: why}
			return nil, false
		}
		wide := isIdeographic(r)
		glyphs = append(glyphs, glyph{r: r, face: f, w: p.width(f, r, st.size), space: r == ' ',
			breakOK: wide || prevWide})
		prevWide = wide
	}
	return glyphs, true
}

// isIdeographic reports characters between which a line may break without
// a space (CJK ideographs, kana, Hangul syllables and CJK punctuation).
func isIdeographic(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF)
}

// fill packs glyphs into lines greedily: break at the last space or
// ideographic boundary that fits, or mid-word when a word is wider than
// the line. It always returns at least one (possibly empty) line.
func fill(glyphs []glyph, width float64) []line {
	var lines []line
	start := 0
	for start < len(glyphs) || len(lines) == 0 {
		w, end, lastBreak := 0.0, start, -1
		for end < len(glyphs) {
			g := glyphs[end]
			if end > start && (g.space || g.breakOK) {
				lastBreak = end
			}
			if w+g.w > width && end > start && !g.space {
				break
			}
			w += g.w
			end++
		}
		if end < len(glyphs) && lastBreak > start {
			end = lastBreak
		}
		lines = append(lines, makeLine(glyphs[start:end]))
		start = end
		for start < len(glyphs) && glyphs[start].space { // a wrapped line starts at its next word
			start++
		}
	}
	return lines
}

// makeLine joins a line's glyphs into runs of one face each, without the
// trailing spaces.
func makeLine(glyphs []glyph) line {
	for len(glyphs) > 0 && glyphs[len(glyphs)-1].space {
		glyphs = glyphs[:len(glyphs)-1]
	}
	var ln line
	var sb strings.Builder
	runW := 0.0
	for i, g := range glyphs {
		sb.WriteRune(g.r)
		runW += g.w
		if i == len(glyphs)-1 || glyphs[i+1].face != g.face {
			ln.runs = append(ln.runs, run{face: g.face, text: sb.String(), w: runW})
			ln.w += runW
			sb.Reset()
			runW = 0
		}
	}
	return ln
}

// cellPad is the space between a box's border and its text, in mm.
const cellPad = 1.0

// drawLine sets one line with its left edge at x and its top at y, lineH
// high; centered lines are centered in width w.
func (p *page) drawLine(ln line, st style, x, y, w, lineH float64, centered bool) {
	cx := x + cellPad
	if centered {
		cx = x + (w-ln.w)/2
	}
	for _, r := range ln.runs {
		p.use(r.face, st.size)
		_, sizeMM := p.pdf.GetFontSize()
		p.pdf.Text(cx, y+0.5*lineH+0.3*sizeMM, r.text)
		cx += r.w
	}
}

// block draws text from the current position across the page's width,
// with a border around it when boxed. A block longer than the rest of the
// page continues on the next one (the border closed on each page). blank
// is the number of empty lines a box gets when the text is empty, so the
// patient can write in it.
func (p *page) block(field, text string, st style, lineH float64, boxed bool, blank int) {
	if text == "" && blank == 0 {
		return
	}
	left, _, right, _ := p.pdf.GetMargins()
	pageW, _ := p.pdf.GetPageSize()
	w := pageW - left - right
	var lines []line
	if text == "" && blank > 1 {
		lines = make([]line, blank)
	} else {
		lines = p.wrap(field, text, st, w-2*cellPad)
	}
	if p.err != nil {
		return
	}
	x, top := left, p.pdf.GetY()
	y := top
	for _, ln := range lines {
		if y+lineH > p.bottom() {
			if boxed && y > top {
				p.pdf.Rect(x, top, w, y-top, "D")
			}
			p.pdf.AddPage()
			top = p.pdf.GetY()
			y = top
		}
		p.drawLine(ln, st, x, y, w, lineH, false)
		y += lineH
	}
	if boxed {
		p.pdf.Rect(x, top, w, y-top, "D")
	}
	p.pdf.SetXY(x, y)
}

// bottom is the lowest y a line may reach before the page breaks.
func (p *page) bottom() float64 {
	_, pageH := p.pdf.GetPageSize()
	_, _, _, b := p.pdf.GetMargins()
	return pageH - b
}
