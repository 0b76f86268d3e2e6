package plot

import (
	"math"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
)

// The Go Regular and Go Bold fonts are parsed once and then only read, so
// they are safe to share between concurrent renders.
var (
	fontsOnce   sync.Once
	fontRegular *ttFont
	fontBold    *ttFont
	fontErr     error
)

func loadFonts() error {
	fontsOnce.Do(func() {
		if fontRegular, fontErr = parseTTF(goregular.TTF); fontErr != nil {
			return
		}
		fontBold, fontErr = parseTTF(gobold.TTF)
	})
	return fontErr
}

// typesetter measures and lays out text with the shared fonts. If the fonts
// cannot be loaded, err is set and widths fall back to an estimate, so the
// SVG still works and PNG reports the error.
type typesetter struct {
	err error
}

func newTypesetter() *typesetter { return &typesetter{err: loadFonts()} }

func (fc *typesetter) font(bold bool) *ttFont {
	if fc.err != nil {
		return nil
	}
	if bold {
		return fontBold
	}
	return fontRegular
}

// glyph is one positioned glyph of a shaped string, in pixels from the
// start of the string's baseline.
type glyph struct {
	id sfnt.GlyphIndex
	x  float64
}

// shape lays s out on a baseline and returns its glyphs and total width.
func (fc *typesetter) shape(s string, size float64, bold bool) ([]glyph, float64) {
	f := fc.font(bold)
	if f == nil {
		return nil, 0.55 * size * float64(len([]rune(s)))
	}
	scale := size / f.unitsPerEm
	var out []glyph
	x := 0.0
	for _, r := range s {
		g := f.cmap(r)
		out = append(out, glyph{g, x})
		x += f.advance(g) * scale
	}
	return out, x
}

// width is the advance width of s in pixels.
func (fc *typesetter) width(s string, size float64, bold bool) float64 {
	_, w := fc.shape(s, size, bold)
	return w
}

// ascent and descent are the line's extent above and below the baseline,
// rounded up to whole pixels.
func (fc *typesetter) ascent(size float64) float64 {
	f := fc.font(false)
	if f == nil {
		return math.Ceil(0.93 * size)
	}
	return math.Ceil(f.ascent * size / f.unitsPerEm)
}

func (fc *typesetter) descent(size float64) float64 {
	f := fc.font(false)
	if f == nil {
		return math.Ceil(0.22 * size)
	}
	return math.Ceil(f.descent * size / f.unitsPerEm)
}

// cleanText makes a label safe to draw: invalid UTF-8 becomes U+FFFD and
// control characters (including newlines) become spaces.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
