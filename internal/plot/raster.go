package plot

import (
	"image"
	"image/color"
	"math"

	"golang.org/x/image/vector"
)

// rasterizer draws a scene into an RGBA image. Shapes are filled with
// x/image/vector (anti-aliased, non-zero winding with coverage clamped to
// one, so overlapping pieces of one stroke must share an orientation);
// text is filled the same way from the Go fonts' glyph outlines.
type rasterizer struct {
	img *image.RGBA
	z   *vector.Rasterizer
	fc  *typesetter
}

func renderRaster(s *scene, fc *typesetter) (*image.RGBA, error) {
	r := &rasterizer{
		img: image.NewRGBA(image.Rect(0, 0, s.W, s.H)),
		z:   vector.NewRasterizer(1, 1),
		fc:  fc,
	}
	for _, it := range s.Items {
		switch it := it.(type) {
		case rectItem:
			r.rect(it)
		case lineItem:
			r.fill(strokePolygons(it), it.Color)
		case markerItem:
			r.fill([][]pt{markerPolygon(it.Shape, it.C, it.R+1)}, white)
			r.fill([][]pt{markerPolygon(it.Shape, it.C, it.R)}, it.Color)
		case textItem:
			if err := r.text(it); err != nil {
				return nil, err
			}
		}
	}
	return r.img, nil
}

func markerPolygon(shape int, c pt, r float64) []pt {
	if shape == shapeCircle {
		return circlePolygon(c, r)
	}
	return shapePolygon(shape, c, r)
}

func nrgba(c rgba) *image.Uniform { return image.NewUniform(color.NRGBA{c.R, c.G, c.B, c.A}) }

func signedArea(p []pt) float64 {
	a := 0.0
	for i := range p {
		q, r := p[i], p[(i+1)%len(p)]
		a += q.X*r.Y - r.X*q.Y
	}
	return a / 2
}

// orient returns p with positive signed area if positive is set, negative
// otherwise.
func orient(p []pt, positive bool) []pt {
	if (signedArea(p) >= 0) == positive {
		return p
	}
	out := make([]pt, len(p))
	for i, q := range p {
		out[len(p)-1-i] = q
	}
	return out
}

// fill paints the union of polys (all oriented the same way by the caller
// or by orient) in colour c.
func (r *rasterizer) fill(polys [][]pt, c rgba) {
	if len(polys) == 0 {
		return
	}
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, p := range polys {
		for _, q := range p {
			minX, minY = math.Min(minX, q.X), math.Min(minY, q.Y)
			maxX, maxY = math.Max(maxX, q.X), math.Max(maxY, q.Y)
		}
	}
	if !(minX <= maxX && minY <= maxY) {
		return
	}
	// The rasterizer does no clipping of its own: limit it to the image.
	bounds := r.img.Bounds()
	box := image.Rect(int(math.Max(math.Floor(minX), -1)), int(math.Max(math.Floor(minY), -1)),
		int(math.Min(math.Ceil(maxX), float64(bounds.Max.X+1))), int(math.Min(math.Ceil(maxY), float64(bounds.Max.Y+1)))).
		Intersect(bounds)
	if box.Empty() {
		return
	}
	r.z.Reset(box.Dx(), box.Dy())
	ox, oy := float64(box.Min.X), float64(box.Min.Y)
	for _, p := range polys {
		if len(p) < 3 {
			continue
		}
		r.z.MoveTo(float32(p[0].X-ox), float32(p[0].Y-oy))
		for _, q := range p[1:] {
			r.z.LineTo(float32(q.X-ox), float32(q.Y-oy))
		}
		r.z.ClosePath()
	}
	r.z.Draw(r.img, box, nrgba(c), image.Point{})
}

func (r *rasterizer) rect(it rectItem) {
	x0, y0, x1, y1 := it.X, it.Y, it.X+it.W, it.Y+it.H
	quad := func(x0, y0, x1, y1 float64, positive bool) []pt {
		return orient([]pt{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}, positive)
	}
	if it.Fill.A > 0 {
		r.fill([][]pt{quad(x0, y0, x1, y1, true)}, it.Fill)
	}
	if it.StrokeW > 0 && it.Stroke.A > 0 {
		h := it.StrokeW / 2
		// A ring: the inner rectangle winds the other way and cancels.
		r.fill([][]pt{
			quad(x0-h, y0-h, x1+h, y1+h, true),
			quad(x0+h, y0+h, x1-h, y1-h, false),
		}, it.Stroke)
	}
}

// dashPolyline splits p into the "on" pieces of a dash pattern.
func dashPolyline(p []pt, dash []float64) [][]pt {
	total := 0.0
	for _, d := range dash {
		if !(d >= 0) {
			return [][]pt{p}
		}
		total += d
	}
	if !(total > 0) {
		return [][]pt{p}
	}
	var out [][]pt
	idx, left := 0, dash[0]
	on := true
	var cur []pt
	if on {
		cur = []pt{p[0]}
	}
	for i := 0; i+1 < len(p); i++ {
		a, b := p[i], p[i+1]
		seg := math.Hypot(b.X-a.X, b.Y-a.Y)
		pos := 0.0
		for guard := 0; seg-pos > left && guard < 100000; guard++ {
			pos += left
			t := pos / seg
			q := pt{a.X + t*(b.X-a.X), a.Y + t*(b.Y-a.Y)}
			if on {
				cur = append(cur, q)
				out = append(out, cur)
				cur = nil
			} else {
				cur = []pt{q}
			}
			on = !on
			idx = (idx + 1) % len(dash)
			left = dash[idx]
		}
		left -= seg - pos
		if on {
			cur = append(cur, b)
		}
	}
	if on && len(cur) > 1 {
		out = append(out, cur)
	}
	return out
}

// strokePolygons outlines a polyline as quads per segment plus round joins
// (and round caps if asked), all with positive orientation.
func strokePolygons(l lineItem) [][]pt {
	if len(l.Pts) < 2 || !(l.Width > 0) {
		return nil
	}
	pieces := [][]pt{l.Pts}
	if len(l.Dash) > 0 {
		pieces = dashPolyline(l.Pts, l.Dash)
	}
	h := l.Width / 2
	var polys [][]pt
	for _, p := range pieces {
		for i := 0; i+1 < len(p); i++ {
			a, b := p[i], p[i+1]
			dx, dy := b.X-a.X, b.Y-a.Y
			n := math.Hypot(dx, dy)
			if n == 0 {
				continue
			}
			nx, ny := -dy/n*h, dx/n*h
			polys = append(polys, orient([]pt{
				{a.X + nx, a.Y + ny}, {b.X + nx, b.Y + ny},
				{b.X - nx, b.Y - ny}, {a.X - nx, a.Y - ny},
			}, true))
			if i > 0 && h > 0.6 {
				polys = append(polys, orient(circlePolygon(a, h), true))
			}
		}
		if l.Round && h > 0.6 {
			polys = append(polys, orient(circlePolygon(p[0], h), true), orient(circlePolygon(p[len(p)-1], h), true))
		}
	}
	return polys
}

func (r *rasterizer) text(t textItem) error {
	if t.S == "" {
		return nil
	}
	f := r.fc.font(t.Bold)
	if f == nil {
		return r.fc.err
	}
	glyphs, w := r.fc.shape(t.S, t.Size, t.Bold)
	shift := 0.0
	switch t.Anchor {
	case anchorMiddle:
		shift = w / 2
	case anchorEnd:
		shift = w
	}
	scale := t.Size / f.unitsPerEm
	over := t.Size*0.3 + 2 // glyphs may reach a little past their advance
	up, down := f.yMax*scale+2, -f.yMin*scale+2
	// tf maps a point of a glyph whose origin is a pixels along the
	// baseline from the string's start to image pixels. The baseline sits
	// on a whole pixel so that text looks the same wherever it is drawn.
	var tf func(p pt, a float64) pt
	var bx0, by0, bx1, by1 float64
	if !t.Rotate {
		x0, base := t.X-shift, math.Round(t.Y)
		tf = func(p pt, a float64) pt { return pt{x0 + a + p.X*scale, base - p.Y*scale} }
		bx0, bx1, by0, by1 = x0-over, x0+w+over, base-up, base+down
	} else {
		// Turned a quarter anticlockwise: along the text is up the image,
		// and "up" in a glyph is to the left.
		base := math.Round(t.X)
		tf = func(p pt, a float64) pt { return pt{base - p.Y*scale, t.Y + shift - a - p.X*scale} }
		bx0, bx1, by0, by1 = base-up, base+down, t.Y+shift-w-over, t.Y+shift+over
	}
	box := image.Rect(int(math.Floor(bx0)), int(math.Floor(by0)), int(math.Ceil(bx1)), int(math.Ceil(by1))).
		Intersect(r.img.Bounds())
	if box.Empty() {
		return nil
	}
	r.z.Reset(box.Dx(), box.Dy())
	ox, oy := float64(box.Min.X), float64(box.Min.Y)
	v := func(p pt, a float64) (float32, float32) {
		q := tf(p, a)
		return float32(q.X - ox), float32(q.Y - oy)
	}
	for _, g := range glyphs {
		ops := f.outline(g.id)
		for i, op := range ops {
			switch op.Kind {
			case 0:
				if i > 0 {
					r.z.ClosePath()
				}
				r.z.MoveTo(v(op.P, g.x))
			case 1:
				r.z.LineTo(v(op.P, g.x))
			case 2:
				cx, cy := v(op.C, g.x)
				px, py := v(op.P, g.x)
				r.z.QuadTo(cx, cy, px, py)
			case 3:
				cx, cy := v(op.C, g.x)
				dx, dy := v(op.D, g.x)
				px, py := v(op.P, g.x)
				r.z.CubeTo(cx, cy, dx, dy, px, py)
			}
		}
		if len(ops) > 0 {
			r.z.ClosePath()
		}
	}
	r.z.Draw(r.img, box, nrgba(t.Color), image.Point{})
	return nil
}
