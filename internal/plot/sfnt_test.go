package plot

import (
	"bytes"
	"testing"

	"golang.org/x/image/font/gofont/goregular"
)

func TestFontGlyphs(t *testing.T) {
	if err := loadFonts(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*ttFont{fontRegular, fontBold} {
		for r := rune(33); r < 127; r++ {
			g := f.cmap(r)
			if g == 0 {
				t.Errorf("%q has no glyph", r)
				continue
			}
			if f.advance(g) <= 0 {
				t.Errorf("%q has no advance", r)
			}
			if len(f.outline(g)) == 0 {
				t.Errorf("%q has no outline", r)
			}
		}
		// Accented letters are composite glyphs: base letter plus accent.
		if n := moves(f.outline(f.cmap('é'))); n < 2 {
			t.Errorf("é has %d contours, want at least 2", n)
		}
		if g := f.cmap(0x1F600); g != 0 {
			t.Errorf("emoji maps to glyph %d, want .notdef", g)
		}
	}
	ts := newTypesetter()
	if w1, w2 := ts.width("iiii", 12, false), ts.width("MMMM", 12, false); !(w1 > 0 && w2 > 2*w1) {
		t.Errorf("widths of iiii, MMMM = %v, %v; the font is not proportional", w1, w2)
	}
	if w1, w2 := ts.width("Title", 12, false), ts.width("Title", 24, false); w2 < 1.99*w1 || w2 > 2.01*w1 {
		t.Errorf("width does not scale with size: %v, %v", w1, w2)
	}
}

func TestTruncatedFontDoesNotPanic(t *testing.T) {
	for _, n := range []int{0, 3, 12, 100, 1000, len(goregular.TTF) / 3, len(goregular.TTF) / 2, len(goregular.TTF) - 1} {
		f, err := parseTTF(goregular.TTF[:n])
		if err != nil {
			continue
		}
		for _, r := range "Hello é%∑" {
			g := f.cmap(r)
			f.advance(g)
			f.outline(g)
		}
	}
	if _, err := parseTTF(bytes.Repeat([]byte{0xff}, 64)); err == nil {
		t.Error("garbage parsed as a font")
	}
}

func TestTextIsDrawn(t *testing.T) {
	data, err := (&Chart{Title: "Title", YLabel: "rotated label"}).PNG()
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, data, DefaultWidth, DefaultHeight)
	dark := func(x0, y0, x1, y1 int) int {
		n := 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
					n++
				}
			}
		}
		return n
	}
	if n := dark(300, 10, 500, 40); n < 40 {
		t.Errorf("title area has %d dark pixels", n)
	}
	if n := dark(0, 150, 30, 350); n < 60 {
		t.Errorf("y label area has %d dark pixels", n)
	}
}

// moves counts the contours of an outline.
func moves(ops []pathOp) int {
	n := 0
	for _, op := range ops {
		if op.Kind == 0 {
			n++
		}
	}
	return n
}
