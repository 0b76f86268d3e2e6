package plot

import (
	"math"
	"strconv"
	"strings"
)

// The layout step turns a Chart into a scene: a list of simple drawing
// items in pixel coordinates (origin top left, y down). Both back ends draw
// the same scene, so the SVG and the PNG look alike.

type pt struct{ X, Y float64 }

type rgba struct{ R, G, B, A uint8 }

type anchor int

const (
	anchorStart anchor = iota
	anchorMiddle
	anchorEnd
)

// rectItem is a filled rectangle with an optional border (StrokeW > 0)
// centred on its edge.
type rectItem struct {
	X, Y, W, H float64
	Fill       rgba
	Stroke     rgba
	StrokeW    float64
}

// lineItem is an open polyline.
type lineItem struct {
	Pts   []pt
	Color rgba
	Width float64
	Dash  []float64 // on, off lengths in pixels; nil for solid
	Round bool      // round joins and caps; otherwise butt caps, round joins
}

// markerItem is a filled point marker with a thin white halo.
type markerItem struct {
	C     pt
	Shape int
	R     float64
	Color rgba
}

// textItem is one line of text. (X, Y) is the anchor on the baseline. When
// Rotate is set, the text is turned 90 degrees anticlockwise about (X, Y)
// and reads bottom to top.
type textItem struct {
	X, Y   float64
	S      string
	Size   float64
	Bold   bool
	Color  rgba
	Anchor anchor
	Rotate bool
}

type scene struct {
	W, H  int
	Title string // for the SVG <title>
	Items []any
}

func (s *scene) add(it any) { s.Items = append(s.Items, it) }

var (
	white      = rgba{255, 255, 255, 255}
	colText    = rgba{0x22, 0x22, 0x22, 255}
	colTick    = rgba{0x44, 0x44, 0x44, 255}
	colAxis    = rgba{0x55, 0x55, 0x55, 255}
	colGrid    = rgba{0xe3, 0xe3, 0xe3, 255}
	colMark    = rgba{0x66, 0x66, 0x66, 255}
	colMuted   = rgba{0x88, 0x88, 0x88, 255}
	colLegendB = rgba{0xbb, 0xbb, 0xbb, 255}
)

// palette is Okabe-Ito, reordered so that the strongest colours come first
// and yellow, weak on white, comes last.
var palette = []rgba{
	{0x00, 0x72, 0xB2, 255}, // blue
	{0xD5, 0x5E, 0x00, 255}, // vermillion
	{0x00, 0x9E, 0x73, 255}, // bluish green
	{0xCC, 0x79, 0xA7, 255}, // reddish purple
	{0xE6, 0x9F, 0x00, 255}, // orange
	{0x56, 0xB4, 0xE9, 255}, // sky blue
	{0x00, 0x00, 0x00, 255}, // black
	{0xF0, 0xE4, 0x42, 255}, // yellow
}

// seriesColor is the colour of the i-th series.
func seriesColor(i int) rgba { return palette[i%len(palette)] }

const (
	shapeCircle = iota
	shapeSquare
	shapeTriangleUp
	shapeDiamond
	shapeTriangleDown
	numShapes
)

const (
	maxMarkedPoints = 40 // series with at most this many points get markers
	maxAbs          = 1e300
	lineWidth       = 2.25
	markerR         = 3.75

	sizeTitle  = 17.0
	sizeLabel  = 14.0
	sizeTick   = 12.0
	sizeLegend = 13.0
	sizeMark   = 12.0
)

var seriesDash = []float64{8, 4}

func usable(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= maxAbs }

// axisRange is an explicit range if hi > lo and both are usable.
func explicitRange(lo, hi, scale float64) (float64, float64, bool) {
	if lo == 0 && hi == 0 {
		return 0, 0, false
	}
	lo, hi = lo*scale, hi*scale
	if !usable(lo) || !usable(hi) || !(hi > lo) {
		return 0, 0, false
	}
	return lo, hi, true
}

// widen gives an empty or degenerate range some width.
func widen(lo, hi float64) (float64, float64) {
	if lo > hi { // no values at all
		return 0, 1
	}
	if hi-lo > 1e-12*math.Max(math.Abs(lo), math.Abs(hi)) {
		return lo, hi
	}
	if lo == 0 {
		return 0, 1
	}
	d := math.Abs(lo) * 0.1
	return lo - d, hi + d
}

// candidateSteps lists 1-2-5 steps, smallest first, for a range of width span.
func candidateSteps(span float64) []float64 {
	p := int(math.Floor(math.Log10(span))) - 2
	var out []float64
	for j := 0; j < 8; j++ {
		e := math.Pow10(p + j)
		for _, m := range []float64{1, 2, 5} {
			if s := m * e; s > 0 && !math.IsInf(s, 0) {
				out = append(out, s)
			}
		}
	}
	return out
}

// ticks returns the multiples of step in [lo, hi].
func ticks(lo, hi, step float64) []float64 {
	if !(step > 0) {
		return nil
	}
	k0 := math.Ceil(lo/step - 1e-9)
	k1 := math.Floor(hi/step + 1e-9)
	var out []float64
	for k := k0; k <= k1 && len(out) < 100; k++ {
		v := k * step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

// formatTick prints v with just enough decimals for the tick step.
func formatTick(v, step float64, percent bool) string {
	d := 0
	if step > 0 {
		d = int(-math.Floor(math.Log10(step) + 1e-9))
	}
	var s string
	switch {
	case v == 0:
		s = "0"
	case d > 8 || math.Abs(v) >= 1e9:
		s = strconv.FormatFloat(v, 'g', 6, 64)
	default:
		s = strconv.FormatFloat(v, 'f', max(d, 0), 64)
	}
	if percent {
		s += "%"
	}
	return s
}

// chooseStep picks the smallest 1-2-5 step whose ticks are at least minGap
// pixels apart and, when labelW is given, leave room for their labels.
func chooseStep(lo, hi, pixels, minGap float64, labelW func(step float64) float64) float64 {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) || !(pixels > 0) {
		return 0
	}
	steps := candidateSteps(span)
	for _, s := range steps {
		gap := s / span * pixels
		if gap < minGap {
			continue
		}
		if labelW != nil && gap < labelW(s)+14 {
			continue
		}
		return s
	}
	if len(steps) > 0 {
		return steps[len(steps)-1]
	}
	return 0
}

// seriesData is a series reduced to runs of usable points (with Y already
// scaled for Percent).
type seriesData struct {
	runs   [][]pt
	points int
}

func collect(s Series, yScale float64) seriesData {
	n := min(len(s.X), len(s.Y))
	var d seriesData
	var run []pt
	for i := 0; i < n; i++ {
		x, y := s.X[i], s.Y[i]*yScale
		if !usable(x) || !usable(y) {
			if len(run) > 0 {
				d.runs = append(d.runs, run)
				run = nil
			}
			continue
		}
		run = append(run, pt{x, y})
		d.points++
	}
	if len(run) > 0 {
		d.runs = append(d.runs, run)
	}
	return d
}

type box struct{ x0, y0, x1, y1 float64 }

func (b box) contains(p pt) bool { return p.X >= b.x0 && p.X <= b.x1 && p.Y >= b.y0 && p.Y <= b.y1 }

func (b box) overlaps(o box) bool {
	return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1
}

// clipSegment clips a-b to the box (Liang-Barsky).
func clipSegment(a, b pt, r box) (pt, pt, bool) {
	t0, t1 := 0.0, 1.0
	dx, dy := b.X-a.X, b.Y-a.Y
	edges := [4][2]float64{
		{-dx, a.X - r.x0},
		{dx, r.x1 - a.X},
		{-dy, a.Y - r.y0},
		{dy, r.y1 - a.Y},
	}
	for _, e := range edges {
		p, q := e[0], e[1]
		if p == 0 {
			if q < 0 {
				return a, b, false
			}
			continue
		}
		t := q / p
		if p < 0 {
			if t > t1 {
				return a, b, false
			}
			t0 = math.Max(t0, t)
		} else {
			if t < t0 {
				return a, b, false
			}
			t1 = math.Min(t1, t)
		}
	}
	na := pt{a.X + t0*dx, a.Y + t0*dy}
	nb := pt{a.X + t1*dx, a.Y + t1*dy}
	if t0 == 0 {
		na = a
	}
	if t1 == 1 {
		nb = b
	}
	return na, nb, true
}

// clipPolyline clips a pixel polyline to r, splitting it where it leaves.
func clipPolyline(p []pt, r box) [][]pt {
	var out [][]pt
	var cur []pt
	for i := 0; i+1 < len(p); i++ {
		a, b, ok := clipSegment(p[i], p[i+1], r)
		if !ok {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		if len(cur) > 0 && cur[len(cur)-1] != a {
			out = append(out, cur)
			cur = nil
		}
		if len(cur) == 0 {
			cur = append(cur, a)
		}
		cur = append(cur, b)
		if b != p[i+1] { // left the box
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// samplePolyline returns points every few pixels along p, for legend
// placement.
func samplePolyline(p []pt, every float64) []pt {
	out := []pt{}
	for i := 0; i+1 < len(p); i++ {
		a, b := p[i], p[i+1]
		l := math.Hypot(b.X-a.X, b.Y-a.Y)
		n := int(math.Min(l/every, 2000)) + 1
		for k := 0; k < n; k++ {
			t := float64(k) / float64(n)
			out = append(out, pt{a.X + t*(b.X-a.X), a.Y + t*(b.Y-a.Y)})
		}
	}
	if len(p) > 0 {
		out = append(out, p[len(p)-1])
	}
	return out
}

func (c *Chart) layout(fc *typesetter) *scene {
	if c == nil {
		c = &Chart{}
	}
	W, H := DefaultWidth, DefaultHeight
	if c.Width > 0 {
		W = max(c.Width, 240)
	}
	if c.Height > 0 {
		H = max(c.Height, 180)
	}
	s := &scene{W: W, H: H}
	s.add(rectItem{X: 0, Y: 0, W: float64(W), H: float64(H), Fill: white})

	title := cleanText(c.Title)
	s.Title = title
	xLabel := cleanText(c.XLabel)
	yLabel := cleanText(c.YLabel)

	// Data and ranges.
	yScale := 1.0
	if c.Percent {
		yScale = 100
	}
	data := make([]seriesData, len(c.Series))
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := math.Inf(1), math.Inf(-1)
	total := 0
	for i, sr := range c.Series {
		data[i] = collect(sr, yScale)
		total += data[i].points
		for _, run := range data[i].runs {
			for _, p := range run {
				xlo, xhi = math.Min(xlo, p.X), math.Max(xhi, p.X)
				ylo, yhi = math.Min(ylo, p.Y), math.Max(yhi, p.Y)
			}
		}
	}
	xMin, xMax, xFixed := explicitRange(c.XMin, c.XMax, 1)
	if !xFixed {
		for _, m := range c.Marks {
			if usable(m.X) {
				xlo, xhi = math.Min(xlo, m.X), math.Max(xhi, m.X)
			}
		}
		xMin, xMax = widen(xlo, xhi)
	}
	yMin, yMax, yFixed := explicitRange(c.YMin, c.YMax, yScale)
	if !yFixed {
		if c.Percent {
			ylo, yhi = math.Min(ylo, 0), math.Max(yhi, 100)
		}
		yMin, yMax = widen(ylo, yhi)
	}

	// Vertical layout.
	tickAsc := fc.ascent(sizeTick)
	top := 16.0
	if title != "" {
		top = 30 + fc.descent(sizeTitle) + 14
	}
	bottom := float64(H) - (6 + tickAsc + fc.descent(sizeTick) + 10)
	if xLabel != "" {
		bottom -= fc.ascent(sizeLabel) + fc.descent(sizeLabel) + 6
	}
	bottom = math.Round(math.Max(bottom, top+40))
	plotH := bottom - top

	// Y ticks; an automatic range grows to whole ticks.
	yStep := chooseStep(yMin, yMax, plotH, 42, nil)
	if !yFixed && yStep > 0 {
		yMin = math.Floor(yMin/yStep+1e-9) * yStep
		yMax = math.Ceil(yMax/yStep-1e-9) * yStep
	}
	yTicks := ticks(yMin, yMax, yStep)
	yTickLabels := make([]string, len(yTicks))
	maxYLabelW := 0.0
	for i, v := range yTicks {
		yTickLabels[i] = formatTick(v, yStep, c.Percent)
		maxYLabelW = math.Max(maxYLabelW, fc.width(yTickLabels[i], sizeTick, false))
	}

	// Horizontal layout.
	yLabelX := 10 + fc.ascent(sizeLabel)
	left := 10.0
	if yLabel != "" {
		left = yLabelX + fc.descent(sizeLabel) + 10
	}
	left = math.Round(left + maxYLabelW + 6 + 5)
	right := float64(W) - 24
	var xStep float64
	var xTicks []float64
	var xTickLabels []string
	for pass := 0; pass < 2; pass++ {
		plotW := right - left
		xStep = chooseStep(xMin, xMax, plotW, 50, func(step float64) float64 {
			w := 0.0
			for _, v := range ticks(xMin, xMax, step) {
				w = math.Max(w, fc.width(formatTick(v, step, false), sizeTick, false))
			}
			return w
		})
		xTicks = ticks(xMin, xMax, xStep)
		xTickLabels = make([]string, len(xTicks))
		for i, v := range xTicks {
			xTickLabels[i] = formatTick(v, xStep, false)
		}
		// Make room for a last label centred near the right edge.
		if n := len(xTicks); n > 0 && pass == 0 {
			px := left + (xTicks[n-1]-xMin)/(xMax-xMin)*plotW
			need := px + fc.width(xTickLabels[n-1], sizeTick, false)/2 + 6
			if need > float64(W)-4 {
				right = math.Round(right - (need - (float64(W) - 4)))
				continue
			}
		}
		break
	}
	right = math.Max(right, left+40)
	plotW := right - left
	plot := box{left, top, right, bottom}

	sx := func(x float64) float64 { return left + (x-xMin)/(xMax-xMin)*plotW }
	sy := func(y float64) float64 { return bottom - (y-yMin)/(yMax-yMin)*plotH }
	// Crisp 1-pixel lines sit on pixel centres, with the ends of the range
	// on the axis lines (x = left-0.5, y = bottom+0.5).
	snapX := func(v float64) float64 { return math.Round(v) - 0.5 }
	snapY := func(v float64) float64 { return math.Round(v) + 0.5 }

	// Gridlines.
	for _, v := range xTicks {
		x := snapX(sx(v))
		s.add(lineItem{Pts: []pt{{x, top}, {x, bottom}}, Color: colGrid, Width: 1})
	}
	for _, v := range yTicks {
		y := snapY(sy(v))
		s.add(lineItem{Pts: []pt{{left, y}, {right, y}}, Color: colGrid, Width: 1})
	}

	// Series geometry, computed first so that labels can avoid the data.
	type seriesGeom struct {
		pieces  [][]pt
		markers []pt
		color   rgba
		dash    []float64
		shape   int
		marked  bool
	}
	var obstacles []pt
	geoms := make([]seriesGeom, len(c.Series))
	for i, sr := range c.Series {
		g := seriesGeom{color: seriesColor(i), shape: i % numShapes, marked: data[i].points <= maxMarkedPoints}
		if sr.Dashed {
			g.dash = seriesDash
		}
		for _, run := range data[i].runs {
			px := make([]pt, 0, len(run))
			for _, p := range run {
				q := pt{sx(p.X), sy(p.Y)}
				if math.IsInf(q.X, 0) || math.IsInf(q.Y, 0) || math.IsNaN(q.X) || math.IsNaN(q.Y) {
					continue
				}
				px = append(px, q)
				// Lone points have no line, so always show them.
				if (g.marked || len(run) == 1) && plot.contains(q) {
					g.markers = append(g.markers, q)
				}
			}
			for _, piece := range clipPolyline(px, plot) {
				g.pieces = append(g.pieces, piece)
				obstacles = append(obstacles, samplePolyline(piece, 4)...)
			}
		}
		obstacles = append(obstacles, g.markers...)
		geoms[i] = g
	}

	// Reference marks: dashed lines under the data, labels on top of it.
	type markLabel struct {
		x, y float64
		text string
		a    anchor
		b    box
	}
	var markLines [][]pt
	var markLabels []markLabel
	for _, m := range c.Marks {
		if !usable(m.X) || m.X < xMin || m.X > xMax {
			continue
		}
		x := sx(m.X)
		line := []pt{{x, top}, {x, bottom}}
		markLines = append(markLines, line)
		obstacles = append(obstacles, samplePolyline(line, 6)...)
	}
	markIdx := 0
	for _, m := range c.Marks {
		if !usable(m.X) || m.X < xMin || m.X > xMax {
			continue
		}
		x := markLines[markIdx][0].X
		markIdx++
		label := cleanText(m.Label)
		if label == "" {
			continue
		}
		w := fc.width(label, sizeMark, false)
		asc, desc := fc.ascent(sizeMark), fc.descent(sizeMark)
		rowH := asc + desc + 6
		// Candidates: rows from the top down, then from the bottom up; right
		// of the line, then left of it. The one hiding the least wins.
		var best markLabel
		bestScore := math.Inf(1)
		for _, fromTop := range []bool{true, false} {
			for row := 0.0; row < 4; row++ {
				y := top + 6 + asc + row*rowH
				if !fromTop {
					y = bottom - 6 - desc - row*rowH
				}
				for _, a := range []anchor{anchorStart, anchorEnd} {
					tx, bx0 := x+5, x+5
					if a == anchorEnd {
						tx, bx0 = x-5, x-5-w
					}
					b := box{bx0 - 3, y - asc - 2, bx0 + w + 3, y + desc + 2}
					score := 0.0
					if b.x0 < left || b.x1 > right {
						score += 500 // sticks out of the plot
					}
					for _, o := range markLabels {
						if o.b.overlaps(b) {
							score += 1000
						}
					}
					for _, p := range obstacles {
						if b.contains(p) {
							score++
						}
					}
					if score < bestScore {
						best, bestScore = markLabel{tx, y, label, a, b}, score
					}
				}
			}
		}
		markLabels = append(markLabels, best)
	}

	for _, line := range markLines {
		s.add(lineItem{Pts: line, Color: colMark, Width: 1.5, Dash: []float64{5, 4}})
	}

	// Axes, tick marks and tick labels.
	s.add(lineItem{Pts: []pt{{left - 0.5, top}, {left - 0.5, bottom + 0.5}}, Color: colAxis, Width: 1})
	s.add(lineItem{Pts: []pt{{left - 0.5, bottom + 0.5}, {right, bottom + 0.5}}, Color: colAxis, Width: 1})
	for i, v := range xTicks {
		x := snapX(sx(v))
		s.add(lineItem{Pts: []pt{{x, bottom + 1}, {x, bottom + 6}}, Color: colAxis, Width: 1})
		s.add(textItem{X: x, Y: bottom + 8 + tickAsc, S: xTickLabels[i], Size: sizeTick, Color: colTick, Anchor: anchorMiddle})
	}
	for i, v := range yTicks {
		y := snapY(sy(v))
		s.add(lineItem{Pts: []pt{{left - 6, y}, {left - 1, y}}, Color: colAxis, Width: 1})
		s.add(textItem{X: left - 9, Y: y + math.Round(tickAsc*0.36), S: yTickLabels[i], Size: sizeTick, Color: colTick, Anchor: anchorEnd})
	}

	// Series, each line followed by its markers.
	type legendEntry struct {
		name string
		g    seriesGeom
	}
	var legend []legendEntry
	for i, g := range geoms {
		for _, piece := range g.pieces {
			s.add(lineItem{Pts: piece, Color: g.color, Width: lineWidth, Dash: g.dash, Round: g.dash == nil})
		}
		for _, m := range g.markers {
			s.add(markerItem{C: m, Shape: g.shape, R: markerR, Color: g.color})
		}
		if name := cleanText(c.Series[i].Name); name != "" {
			legend = append(legend, legendEntry{name, g})
		}
	}

	// Mark labels, on a light background so they stay readable over data.
	for _, ml := range markLabels {
		s.add(rectItem{X: ml.b.x0, Y: ml.b.y0, W: ml.b.x1 - ml.b.x0, H: ml.b.y1 - ml.b.y0, Fill: rgba{255, 255, 255, 220}})
		s.add(textItem{X: ml.x, Y: ml.y, S: ml.text, Size: sizeMark, Color: colText, Anchor: ml.a})
	}

	// Legend, in the plot corner that hides the least data.
	if len(legend) > 0 {
		const pad, sample, gap = 9.0, 32.0, 8.0
		asc, desc := fc.ascent(sizeLegend), fc.descent(sizeLegend)
		rowH := asc + desc + 6
		textW := 0.0
		for _, e := range legend {
			textW = math.Max(textW, fc.width(e.name, sizeLegend, false))
		}
		// A little slack: SVG viewers may pick a wider sans-serif than Go.
		bw := math.Ceil(pad + sample + gap + textW*1.08 + pad)
		bh := math.Ceil(2*pad + float64(len(legend))*rowH - 6)
		const inset = 10.0
		corners := []pt{
			{right - inset - bw, top + inset},         // top right
			{left + inset, top + inset},               // top left
			{right - inset - bw, bottom - inset - bh}, // bottom right
			{left + inset, bottom - inset - bh},       // bottom left
		}
		best, bestScore := 0, math.Inf(1)
		for i, cpt := range corners {
			b := box{cpt.X - 4, cpt.Y - 4, cpt.X + bw + 4, cpt.Y + bh + 4}
			score := 0.0
			for _, p := range obstacles {
				if b.contains(p) {
					score++
				}
			}
			for _, ml := range markLabels {
				if ml.b.overlaps(b) {
					score += 1000
				}
			}
			if score < bestScore {
				best, bestScore = i, score
			}
		}
		bx, by := math.Round(corners[best].X)+0.5, math.Round(corners[best].Y)+0.5
		s.add(rectItem{X: bx, Y: by, W: bw, H: bh, Fill: rgba{255, 255, 255, 235}, Stroke: colLegendB, StrokeW: 1})
		for i, e := range legend {
			baseline := by + pad + asc + float64(i)*rowH
			mid := math.Round(baseline-asc*0.35) + 0.5
			x0 := bx + pad
			s.add(lineItem{Pts: []pt{{x0, mid}, {x0 + sample, mid}}, Color: e.g.color, Width: lineWidth, Dash: e.g.dash, Round: e.g.dash == nil})
			if e.g.marked {
				s.add(markerItem{C: pt{x0 + sample/2, mid}, Shape: e.g.shape, R: markerR, Color: e.g.color})
			}
			s.add(textItem{X: x0 + sample + gap, Y: baseline, S: e.name, Size: sizeLegend, Color: colText})
		}
	}

	if total == 0 {
		s.add(textItem{X: (left + right) / 2, Y: (top + bottom) / 2, S: "no data", Size: sizeLabel, Color: colMuted, Anchor: anchorMiddle})
	}

	// Titles.
	if title != "" {
		s.add(textItem{X: (left + right) / 2, Y: 30, S: title, Size: sizeTitle, Bold: true, Color: colText, Anchor: anchorMiddle})
	}
	if xLabel != "" {
		s.add(textItem{X: (left + right) / 2, Y: float64(H) - 10 - fc.descent(sizeLabel), S: xLabel, Size: sizeLabel, Color: colText, Anchor: anchorMiddle})
	}
	if yLabel != "" {
		s.add(textItem{X: yLabelX, Y: (top + bottom) / 2, S: yLabel, Size: sizeLabel, Color: colText, Anchor: anchorMiddle, Rotate: true})
	}
	return s
}

// shapePolygon is the outline of a non-circular marker of nominal radius r.
func shapePolygon(shape int, c pt, r float64) []pt {
	switch shape {
	case shapeSquare:
		h := r * 0.88
		return []pt{{c.X - h, c.Y - h}, {c.X + h, c.Y - h}, {c.X + h, c.Y + h}, {c.X - h, c.Y + h}}
	case shapeTriangleUp:
		h := r * 1.3
		return []pt{{c.X, c.Y - h}, {c.X + h*0.866, c.Y + h*0.5}, {c.X - h*0.866, c.Y + h*0.5}}
	case shapeDiamond:
		h := r * 1.22
		return []pt{{c.X, c.Y - h}, {c.X + h, c.Y}, {c.X, c.Y + h}, {c.X - h, c.Y}}
	case shapeTriangleDown:
		h := r * 1.3
		return []pt{{c.X, c.Y + h}, {c.X - h*0.866, c.Y - h*0.5}, {c.X + h*0.866, c.Y - h*0.5}}
	}
	return circlePolygon(c, r)
}

func circlePolygon(c pt, r float64) []pt {
	const n = 28
	out := make([]pt, n)
	for i := range out {
		a := 2 * math.Pi * float64(i) / n
		out[i] = pt{c.X + r*math.Cos(a), c.Y + r*math.Sin(a)}
	}
	return out
}

// fmtNum prints a coordinate with at most two decimals.
func fmtNum(v float64) string {
	v = math.Round(v*100) / 100
	if v == 0 {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
