package plot

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A minimal TrueType reader: just enough of the format (cmap, hmtx and
// quadratic glyf outlines) to draw text with the Go fonts that ship as TTF
// bytes in golang.org/x/image/font/gofont. The full parser in
// golang.org/x/image/font/sfnt would drag golang.org/x/text (and newer
// x/tools and x/sync) into the module; this keeps the dependency to x/image.
// Hinting and kerning are not applied.

type ttFont struct {
	data       []byte
	unitsPerEm float64
	// Font-wide extremes and hhea metrics, in font units (y up).
	yMin, yMax       float64
	ascent, descent  float64 // descent is positive (below the baseline)
	locaLong         bool
	numGlyphs        int
	numHMetrics      int
	loca, glyf, hmtx []byte
	cmap             cmapLookup
}

type cmapLookup func(r rune) uint16

// glyphPoint is an outline point in font units.
type glyphPoint struct {
	X, Y float64
	On   bool
}

var errBadFont = errors.New("plot: malformed TrueType font")

func u16(b []byte, i int) uint16 {
	if i < 0 || i+2 > len(b) {
		return 0
	}
	return binary.BigEndian.Uint16(b[i:])
}

func i16(b []byte, i int) int16 { return int16(u16(b, i)) }

func u32(b []byte, i int) uint32 {
	if i < 0 || i+4 > len(b) {
		return 0
	}
	return binary.BigEndian.Uint32(b[i:])
}

func parseTTF(data []byte) (*ttFont, error) {
	tables := map[string][]byte{}
	n := int(u16(data, 4))
	for i := 0; i < n; i++ {
		rec := 12 + 16*i
		if rec+16 > len(data) {
			return nil, errBadFont
		}
		off, length := int(u32(data, rec+8)), int(u32(data, rec+12))
		if off < 0 || length < 0 || off+length > len(data) {
			return nil, errBadFont
		}
		tables[string(data[rec:rec+4])] = data[off : off+length]
	}
	for _, t := range []string{"head", "hhea", "hmtx", "maxp", "loca", "glyf", "cmap"} {
		if tables[t] == nil {
			return nil, fmt.Errorf("plot: TrueType font lacks the %s table", t)
		}
	}
	head, hhea := tables["head"], tables["hhea"]
	f := &ttFont{
		data:        data,
		unitsPerEm:  float64(u16(head, 18)),
		yMin:        float64(i16(head, 38)),
		yMax:        float64(i16(head, 42)),
		locaLong:    i16(head, 50) != 0,
		ascent:      float64(i16(hhea, 4)),
		descent:     -float64(i16(hhea, 6)),
		numHMetrics: int(u16(hhea, 34)),
		numGlyphs:   int(u16(tables["maxp"], 4)),
		loca:        tables["loca"],
		glyf:        tables["glyf"],
		hmtx:        tables["hmtx"],
	}
	if f.unitsPerEm == 0 || f.numHMetrics == 0 || f.numGlyphs == 0 {
		return nil, errBadFont
	}
	var err error
	if f.cmap, err = parseCmap(tables["cmap"]); err != nil {
		return nil, err
	}
	return f, nil
}

// parseCmap picks a Unicode subtable in format 12 (full Unicode) or 4 (BMP).
func parseCmap(b []byte) (cmapLookup, error) {
	n := int(u16(b, 2))
	best, bestFormat := -1, 0
	for i := 0; i < n; i++ {
		rec := 4 + 8*i
		pid, eid := u16(b, rec), u16(b, rec+2)
		off := int(u32(b, rec+4))
		unicode := pid == 0 || (pid == 3 && (eid == 1 || eid == 10))
		if !unicode || off >= len(b) {
			continue
		}
		format := int(u16(b, off))
		if (format == 12 && bestFormat != 12) || (format == 4 && bestFormat == 0) {
			best, bestFormat = off, format
		}
	}
	switch bestFormat {
	case 12:
		sub := b[best:]
		groups := int(u32(sub, 12))
		return func(r rune) uint16 {
			for i := 0; i < groups; i++ {
				g := 16 + 12*i
				start, end := rune(u32(sub, g)), rune(u32(sub, g+4))
				if r >= start && r <= end {
					return uint16(u32(sub, g+8) + uint32(r-start))
				}
			}
			return 0
		}, nil
	case 4:
		sub := b[best:]
		segX2 := int(u16(sub, 6))
		ends, starts, deltas, ranges := 14, 16+segX2, 16+2*segX2, 16+3*segX2
		return func(r rune) uint16 {
			if r < 0 || r > 0xFFFF {
				return 0
			}
			c := uint16(r)
			for s := 0; s < segX2; s += 2 {
				if c > u16(sub, ends+s) {
					continue
				}
				start := u16(sub, starts+s)
				if c < start {
					return 0
				}
				delta := u16(sub, deltas+s)
				ro := int(u16(sub, ranges+s))
				if ro == 0 {
					return c + delta
				}
				g := u16(sub, ranges+s+ro+2*int(c-start))
				if g == 0 {
					return 0
				}
				return g + delta
			}
			return 0
		}, nil
	}
	return nil, errors.New("plot: TrueType font has no Unicode cmap")
}

// advance is the advance width of glyph g in font units.
func (f *ttFont) advance(g uint16) float64 {
	i := int(g)
	if i >= f.numHMetrics {
		i = f.numHMetrics - 1
	}
	return float64(u16(f.hmtx, 4*i))
}

func (f *ttFont) glyphData(g uint16) []byte {
	i := int(g)
	if i >= f.numGlyphs {
		return nil
	}
	var start, end int
	if f.locaLong {
		start, end = int(u32(f.loca, 4*i)), int(u32(f.loca, 4*i+4))
	} else {
		start, end = 2*int(u16(f.loca, 2*i)), 2*int(u16(f.loca, 2*i+2))
	}
	if start >= end || end > len(f.glyf) {
		return nil
	}
	return f.glyf[start:end]
}

// contours returns the outline of glyph g as closed contours of on- and
// off-curve points. Malformed data gives an empty (or partial) outline.
func (f *ttFont) contours(g uint16, depth int) [][]glyphPoint {
	b := f.glyphData(g)
	if len(b) < 10 || depth > 8 {
		return nil
	}
	nc := int(i16(b, 0))
	if nc < 0 {
		return f.compositeContours(b, depth)
	}
	endPts := make([]int, nc)
	for i := range endPts {
		endPts[i] = int(u16(b, 10+2*i))
	}
	if nc == 0 {
		return nil
	}
	np := endPts[nc-1] + 1
	p := 10 + 2*nc
	p += 2 + int(u16(b, p)) // instructions
	flags := make([]byte, 0, np)
	for len(flags) < np && p < len(b) {
		fl := b[p]
		p++
		flags = append(flags, fl)
		if fl&8 != 0 && p < len(b) {
			rep := int(b[p])
			p++
			for k := 0; k < rep && len(flags) < np; k++ {
				flags = append(flags, fl)
			}
		}
	}
	if len(flags) < np {
		return nil
	}
	pts := make([]glyphPoint, np)
	readCoords := func(short, same byte, set func(i int, v float64)) bool {
		v := 0
		for i, fl := range flags {
			switch {
			case fl&short != 0:
				if p >= len(b) {
					return false
				}
				d := int(b[p])
				p++
				if fl&same == 0 {
					d = -d
				}
				v += d
			case fl&same == 0:
				if p+2 > len(b) {
					return false
				}
				v += int(i16(b, p))
				p += 2
			}
			set(i, float64(v))
		}
		return true
	}
	if !readCoords(2, 16, func(i int, v float64) { pts[i].X = v }) ||
		!readCoords(4, 32, func(i int, v float64) { pts[i].Y = v }) {
		return nil
	}
	for i, fl := range flags {
		pts[i].On = fl&1 != 0
	}
	var out [][]glyphPoint
	start := 0
	for _, e := range endPts {
		if e < start || e >= np {
			return out
		}
		out = append(out, pts[start:e+1])
		start = e + 1
	}
	return out
}

func (f *ttFont) compositeContours(b []byte, depth int) [][]glyphPoint {
	var out [][]glyphPoint
	p := 10
	for {
		if p+4 > len(b) {
			return out
		}
		flags, idx := u16(b, p), u16(b, p+2)
		p += 4
		var dx, dy float64
		if flags&1 != 0 { // args are words
			dx, dy = float64(i16(b, p)), float64(i16(b, p+2))
			p += 4
		} else {
			if p+2 > len(b) {
				return out
			}
			dx, dy = float64(int8(b[p])), float64(int8(b[p+1]))
			p += 2
		}
		if flags&2 == 0 { // point matching, not used by the Go fonts
			dx, dy = 0, 0
		}
		f2 := func(i int) float64 { return float64(i16(b, i)) / 16384 }
		a, bb, c, d := 1.0, 0.0, 0.0, 1.0
		switch {
		case flags&8 != 0:
			a, d = f2(p), f2(p)
			p += 2
		case flags&0x40 != 0:
			a, d = f2(p), f2(p+2)
			p += 4
		case flags&0x80 != 0:
			a, bb, c, d = f2(p), f2(p+2), f2(p+4), f2(p+6)
			p += 8
		}
		for _, contour := range f.contours(idx, depth+1) {
			t := make([]glyphPoint, len(contour))
			for i, q := range contour {
				t[i] = glyphPoint{a*q.X + c*q.Y + dx, bb*q.X + d*q.Y + dy, q.On}
			}
			out = append(out, t)
		}
		if flags&0x20 == 0 { // no more components
			return out
		}
	}
}

// pathOp is one step of a glyph path: a move, a line or a quadratic curve
// (through C to P).
type pathOp struct {
	Kind int // 0 move, 1 line, 2 quad
	C, P pt
}

// contourPath turns a TrueType contour into path operations, inserting the
// implied on-curve points between consecutive off-curve points.
func contourPath(c []glyphPoint) []pathOp {
	n := len(c)
	if n < 2 {
		return nil
	}
	mid := func(a, b glyphPoint) pt { return pt{(a.X + b.X) / 2, (a.Y + b.Y) / 2} }
	at := func(q glyphPoint) pt { return pt{q.X, q.Y} }
	first := -1
	for i, q := range c {
		if q.On {
			first = i
			break
		}
	}
	var start pt
	if first < 0 { // all off-curve: start between the last and the first
		start, first = mid(c[n-1], c[0]), 0
		ops := []pathOp{{Kind: 0, P: start}}
		for i := 0; i < n; i++ {
			ops = append(ops, pathOp{Kind: 2, C: at(c[i]), P: mid(c[i], c[(i+1)%n])})
		}
		return ops
	}
	start = at(c[first])
	ops := []pathOp{{Kind: 0, P: start}}
	var ctrl *glyphPoint
	for k := 1; k <= n; k++ {
		q := c[(first+k)%n]
		if q.On {
			if ctrl != nil {
				ops = append(ops, pathOp{Kind: 2, C: at(*ctrl), P: at(q)})
				ctrl = nil
			} else {
				ops = append(ops, pathOp{Kind: 1, P: at(q)})
			}
			continue
		}
		if ctrl != nil {
			ops = append(ops, pathOp{Kind: 2, C: at(*ctrl), P: mid(*ctrl, q)})
		}
		qq := q
		ctrl = &qq
	}
	if ctrl != nil {
		ops = append(ops, pathOp{Kind: 2, C: at(*ctrl), P: start})
	}
	return ops
}
