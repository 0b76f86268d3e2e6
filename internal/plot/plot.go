// Package plot owns the charts in the mesh simulator's reports: it draws
// small, readable line charts (for example "delivery ratio over time" or
// "delivery ratio vs mean degree") and renders each one both as SVG 1.1 text
// and as a PNG image.
//
// A Chart is plain data. SVG and PNG lay it out once (title, axis labels,
// 1-2-5 ticks with gridlines, a legend, vertical reference marks) and then
// emit the same drawing through two back ends. Output is deterministic: the
// same Chart always gives byte-identical SVG and PNG (on one architecture;
// fused multiply-add may move a pixel elsewhere), so rendered charts can be
// committed or compared in tests. Nothing here needs cgo or system fonts:
// the SVG asks for the generic sans-serif family, and the PNG is drawn with
// the anti-aliasing rasterizer golang.org/x/image/vector, its text from the
// outlines of the Go fonts embedded in golang.org/x/image/font/gofont, read
// with golang.org/x/image/font/sfnt (sfnt.go).
//
// Bad data does not panic. Points whose X or Y is NaN, infinite or larger in
// magnitude than 1e300 are skipped and break the line into separate pieces;
// when X and Y have different lengths, the extra values of the longer one
// are ignored; an empty chart renders its axes and "no data".
package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
)

// DefaultWidth and DefaultHeight are the image size, in pixels, used when
// Chart.Width or Chart.Height is zero.
const (
	DefaultWidth  = 800
	DefaultHeight = 500
)

// Series is one line of a chart. Points are joined in the order given (X is
// not sorted). Only the first min(len(X), len(Y)) points are used.
type Series struct {
	Name   string // shown in the legend; a series without a name is left out of it
	X, Y   []float64
	Dashed bool // draw the line dashed rather than solid
}

// Mark is a labelled vertical reference line at X, such as
// "critical mean degree 4.51".
type Mark struct {
	X     float64
	Label string
}

// Chart is a line chart. The zero value is a valid, empty chart.
//
// Series are coloured in order from the colour-blind-safe Okabe-Ito palette
// and, when a series has at most 40 points, each point is drawn as a marker
// whose shape also differs per series.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	Marks                 []Mark

	// XMin and XMax fix the x axis range. If both are zero (or XMax <= XMin)
	// the range is the extent of the data and the marks.
	XMin, XMax float64
	// YMin and YMax fix the y axis range. If both are zero (or YMax <= YMin)
	// the range is the data extent widened to whole ticks.
	YMin, YMax float64

	// Percent treats Y values (and YMin, YMax) as fractions and labels the
	// y axis in percent; an automatic y range then spans at least 0-100 %.
	Percent bool

	// Width and Height are the image size in pixels; zero means
	// DefaultWidth by DefaultHeight. Very small sizes are raised to a minimum.
	Width, Height int
}

// SVG renders the chart as a standalone SVG 1.1 document.
func (c *Chart) SVG() []byte {
	fc := newTypesetter()
	return renderSVG(c.layout(fc))
}

// PNG renders the chart as an 8-bit RGBA PNG image. The error is non-nil
// only if the embedded fonts cannot be loaded or encoding fails; bad data
// never causes an error.
func (c *Chart) PNG() ([]byte, error) {
	fc := newTypesetter()
	if fc.err != nil {
		return nil, fc.err
	}
	img, err := renderRaster(c.layout(fc), fc)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("plot: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// Write writes the chart to dir/name.svg and dir/name.png, creating dir if
// needed. name must be a plain file name without an extension or path
// separators.
func (c *Chart) Write(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return errors.New("plot: invalid chart file name " + fmt.Sprintf("%q", name))
	}
	pngData, err := c.PNG()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	base := filepath.Join(dir, name)
	if err := os.WriteFile(base+".svg", c.SVG(), 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := os.WriteFile(base+".png", pngData, 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
