package plot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

func svgColor(c rgba) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// svgPaint writes a paint attribute and, for translucent colours, its
// opacity attribute.
func svgPaint(b *bytes.Buffer, attr string, c rgba) {
	fmt.Fprintf(b, ` %s="%s"`, attr, svgColor(c))
	if c.A != 255 {
		fmt.Fprintf(b, ` %s-opacity="%s"`, attr, strconv.FormatFloat(float64(c.A)/255, 'f', 3, 64))
	}
}

func svgEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder cannot fail
	return b.String()
}

func svgPoints(p []pt) string {
	parts := make([]string, len(p))
	for i, q := range p {
		parts[i] = fmtNum(q.X) + "," + fmtNum(q.Y)
	}
	return strings.Join(parts, " ")
}

func renderSVG(s *scene) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		s.W, s.H, s.W, s.H)
	if s.Title != "" {
		fmt.Fprintf(&b, "<title>%s</title>\n", svgEscape(s.Title))
	}
	for _, it := range s.Items {
		switch it := it.(type) {
		case rectItem:
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s"`, fmtNum(it.X), fmtNum(it.Y), fmtNum(it.W), fmtNum(it.H))
			svgPaint(&b, "fill", it.Fill)
			if it.StrokeW > 0 {
				svgPaint(&b, "stroke", it.Stroke)
				fmt.Fprintf(&b, ` stroke-width="%s"`, fmtNum(it.StrokeW))
			}
			b.WriteString("/>\n")
		case lineItem:
			if len(it.Pts) < 2 {
				continue
			}
			if len(it.Pts) == 2 {
				p, q := it.Pts[0], it.Pts[1]
				fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s"`, fmtNum(p.X), fmtNum(p.Y), fmtNum(q.X), fmtNum(q.Y))
			} else {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none"`, svgPoints(it.Pts))
			}
			svgPaint(&b, "stroke", it.Color)
			fmt.Fprintf(&b, ` stroke-width="%s" stroke-linejoin="round"`, fmtNum(it.Width))
			if it.Round {
				b.WriteString(` stroke-linecap="round"`)
			}
			if len(it.Dash) > 0 {
				d := make([]string, len(it.Dash))
				for i, v := range it.Dash {
					d[i] = fmtNum(v)
				}
				fmt.Fprintf(&b, ` stroke-dasharray="%s"`, strings.Join(d, ","))
			}
			b.WriteString("/>\n")
		case markerItem:
			for _, layer := range []struct {
				r float64
				c rgba
			}{{it.R + 1, white}, {it.R, it.Color}} {
				if it.Shape == shapeCircle {
					fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="%s"`, fmtNum(it.C.X), fmtNum(it.C.Y), fmtNum(layer.r))
				} else {
					fmt.Fprintf(&b, `<polygon points="%s"`, svgPoints(shapePolygon(it.Shape, it.C, layer.r)))
				}
				svgPaint(&b, "fill", layer.c)
				b.WriteString("/>\n")
			}
		case textItem:
			if it.S == "" {
				continue
			}
			x, y := fmtNum(it.X), fmtNum(it.Y)
			fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="%s"`, x, y, fmtNum(it.Size))
			svgPaint(&b, "fill", it.Color)
			switch it.Anchor {
			case anchorMiddle:
				b.WriteString(` text-anchor="middle"`)
			case anchorEnd:
				b.WriteString(` text-anchor="end"`)
			}
			if it.Bold {
				b.WriteString(` font-weight="bold"`)
			}
			if it.Rotate {
				fmt.Fprintf(&b, ` transform="rotate(-90 %s %s)"`, x, y)
			}
			fmt.Fprintf(&b, ">%s</text>\n", svgEscape(it.S))
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
