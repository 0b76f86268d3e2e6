package plot

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleChart is a typical report chart: two series, a mark, percent axis.
func sampleChart() *Chart {
	deg := []float64{1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 7, 8, 9, 10}
	delivery := make([]float64, len(deg))
	giant := make([]float64, len(deg))
	for i, k := range deg {
		giant[i] = 1 - math.Exp(-0.9*(k-1))
		delivery[i] = 0.97 / (1 + math.Exp(-1.6*(k-4.5)))
	}
	return &Chart{
		Title:   "Delivery ratio and giant component vs mean degree",
		XLabel:  "mean degree",
		YLabel:  "fraction of nodes / messages",
		Percent: true,
		Series: []Series{
			{Name: "delivery ratio", X: deg, Y: delivery},
			{Name: "giant component", X: deg, Y: giant, Dashed: true},
		},
		Marks: []Mark{{X: 4.51, Label: "critical mean degree 4.51"}},
	}
}

func timeChart() *Chart {
	var t, a, b, c []float64
	for i := 0; i <= 360; i++ {
		x := float64(i) * 10
		t = append(t, x)
		a = append(a, 1-math.Exp(-x/600))
		b = append(b, 0.8*(1-math.Exp(-x/1200)))
		c = append(c, 0.5*(1-math.Exp(-x/300))+0.05*math.Sin(x/200))
	}
	return &Chart{
		Title:   "Delivery ratio over time",
		XLabel:  "time (s)",
		YLabel:  "delivery ratio",
		Percent: true,
		Series: []Series{
			{Name: "epidemic", X: t, Y: a},
			{Name: "spray-and-wait (L=8)", X: t, Y: b},
			{Name: "direct delivery", X: t, Y: c, Dashed: true},
		},
	}
}

func routingChart() *Chart {
	ttl := []float64{1, 2, 4, 8, 16, 32}
	return &Chart{
		Title:  "Transmissions per delivered message vs TTL",
		XLabel: "TTL (hops)",
		YLabel: "transmissions per delivered",
		Series: []Series{
			{Name: "flooding", X: ttl, Y: []float64{3, 9, 27, 60, 95, 120}},
			{Name: "spray-and-wait", X: ttl, Y: []float64{2, 5, 8, 9.5, 10, 10}},
			{Name: "gossip p=0.6", X: ttl, Y: []float64{2.5, 6, 15, 31, 44, 50}},
			{Name: "direct", X: ttl, Y: []float64{1, 1, 1, 1, 1, 1}},
			{Name: "oracle", X: ttl, Y: []float64{1.2, 1.5, 2, 2.2, 2.3, 2.3}},
		},
	}
}

func checkSVG(t *testing.T, svg []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
			if se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("root namespace = %q", se.Name.Space)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element = %q, want svg", root)
	}
}

func decodePNG(t *testing.T, data []byte, w, h int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("PNG size = %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	return img
}

// countColor counts pixels within tol of c in every channel.
func countColor(img image.Image, c rgba, tol int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			d := func(v uint32, w uint8) bool {
				diff := int(v>>8) - int(w)
				return diff >= -tol && diff <= tol
			}
			if d(r, c.R) && d(g, c.G) && d(bl, c.B) {
				n++
			}
		}
	}
	return n
}

func TestSVGWellFormedAndEscaped(t *testing.T) {
	c := sampleChart()
	c.Title = `Loss & latency <p50> "quoted" 'single'`
	c.Series[0].Name = `a<b & "c"`
	c.XLabel = "x\x00with\ncontrol"
	c.Marks[0].Label = "k > 4.5 & more"
	svg := c.SVG()
	checkSVG(t, svg)
	s := string(svg)
	for _, want := range []string{
		"Loss &amp; latency &lt;p50&gt; &#34;quoted&#34; &#39;single&#39;",
		"a&lt;b &amp; &#34;c&#34;",
		"giant component",
		"k &gt; 4.5 &amp; more",
		"x with control",
		`font-family="sans-serif"`,
		`width="800" height="500"`,
		"100%", "60%", "0%",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(s, "<p50>") {
		t.Error("SVG contains an unescaped label")
	}
}

func TestPNGSizeAndSeriesColours(t *testing.T) {
	c := sampleChart()
	data, err := c.PNG()
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, data, DefaultWidth, DefaultHeight)
	if n := countColor(img, white, 0); n < DefaultWidth*DefaultHeight/2 {
		t.Errorf("only %d white background pixels", n)
	}
	for i := range c.Series {
		if n := countColor(img, seriesColor(i), 8); n < 50 {
			t.Errorf("series %d colour %v: %d pixels, want many", i, seriesColor(i), n)
		}
	}
	// A third colour that is not used must not show up.
	if n := countColor(img, seriesColor(2), 8); n != 0 {
		t.Errorf("unused palette colour drawn on %d pixels", n)
	}

	c.Width, c.Height = 640, 360
	data, err = c.PNG()
	if err != nil {
		t.Fatal(err)
	}
	decodePNG(t, data, 640, 360)
	if !bytes.Contains(c.SVG(), []byte(`width="640" height="360"`)) {
		t.Error("SVG ignores Width/Height")
	}
}

func TestDeterministic(t *testing.T) {
	for _, c := range []*Chart{sampleChart(), timeChart(), routingChart(), {}} {
		s1, s2 := c.SVG(), c.SVG()
		if !bytes.Equal(s1, s2) {
			t.Errorf("%q: SVG differs between renders", c.Title)
		}
		p1, err1 := c.PNG()
		p2, err2 := c.PNG()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(p1, p2) {
			t.Errorf("%q: PNG differs between renders", c.Title)
		}
	}
}

func TestConcurrentRendersAgree(t *testing.T) {
	want, err := sampleChart().PNG()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	for range 4 {
		go func() {
			p, _ := sampleChart().PNG()
			done <- p
		}()
	}
	for range 4 {
		if got := <-done; !bytes.Equal(got, want) {
			t.Error("concurrent render differs")
		}
	}
}

func TestEdgeCases(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := map[string]*Chart{
		"empty":       {},
		"nil series":  {Title: "t", Series: []Series{{Name: "nothing"}}},
		"one point":   {Series: []Series{{Name: "p", X: []float64{3}, Y: []float64{0.5}}}},
		"flat":        {Series: []Series{{Name: "f", X: []float64{1, 2, 3}, Y: []float64{7, 7, 7}}}},
		"flat zero":   {Series: []Series{{Name: "z", X: []float64{0, 0}, Y: []float64{0, 0}}}},
		"flat pct":    {Percent: true, Series: []Series{{Name: "z", X: []float64{1, 2}, Y: []float64{1, 1}}}},
		"nan inf":     {Series: []Series{{Name: "n", X: []float64{0, 1, nan, 3, 4, 5}, Y: []float64{1, inf, 2, 3, math.Inf(-1), nan}}}},
		"all nan":     {Series: []Series{{Name: "n", X: []float64{nan, nan}, Y: []float64{nan, 1}}}},
		"mismatched":  {Series: []Series{{Name: "m", X: []float64{1, 2, 3, 4}, Y: []float64{1, 2}}, {Name: "m2", X: []float64{1}, Y: []float64{1, 2, 3}}}},
		"huge":        {Series: []Series{{Name: "h", X: []float64{-1e300, 1e300}, Y: []float64{1e300, -1e300}}}},
		"too huge":    {Series: []Series{{Name: "h", X: []float64{-1e308, 1e308, 1}, Y: []float64{1e308, -1e308, 1}}}},
		"tiny":        {Series: []Series{{Name: "t", X: []float64{0, 1e-300}, Y: []float64{1e-300, 2e-300}}}},
		"big offset":  {Series: []Series{{Name: "o", X: []float64{1e15, 1e15 + 1}, Y: []float64{1, 2}}}},
		"negative":    {Series: []Series{{Name: "neg", X: []float64{-5, -1}, Y: []float64{-0.003, -0.001}}}},
		"fixed range": {XMin: 2, XMax: 3, YMin: 0, YMax: 1, Series: []Series{{Name: "c", X: []float64{0, 1, 2, 2.5, 3, 10}, Y: []float64{-5, 0.5, 0.2, 0.9, 2, 0.1}}}},
		"bad range":   {XMin: 5, XMax: 1, YMin: nan, YMax: inf, Series: []Series{{Name: "c", X: []float64{0, 1}, Y: []float64{0, 1}}}},
		"marks only":  {Marks: []Mark{{X: 3, Label: "here"}, {X: nan, Label: "nan"}, {X: 3.01, Label: "there, overlapping"}}},
		"mark far":    {XMin: 0, XMax: 1, Marks: []Mark{{X: 50, Label: "outside"}}, Series: []Series{{X: []float64{0, 1}, Y: []float64{0, 1}}}},
		"many series": {Series: manySeries(12)},
		"tiny image":  {Width: 10, Height: 10, Title: "very long title that does not fit at all", Series: manySeries(3)},
		"bad utf8":    {Title: "bad \xff utf8", Series: []Series{{Name: "\xfe", X: []float64{1, 2}, Y: []float64{1, 2}}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			checkSVG(t, c.SVG())
			data, err := c.PNG()
			if err != nil {
				t.Fatal(err)
			}
			w, h := DefaultWidth, DefaultHeight
			if c.Width > 0 {
				w, h = 240, 180
			}
			decodePNG(t, data, w, h)
		})
	}
	var nilChart *Chart
	checkSVG(t, nilChart.SVG())
	if _, err := nilChart.PNG(); err != nil {
		t.Fatal(err)
	}
}

func manySeries(n int) []Series {
	var out []Series
	for i := range n {
		out = append(out, Series{
			Name: "series " + string(rune('A'+i)),
			X:    []float64{0, 1, 2, 3},
			Y:    []float64{float64(i), float64(i) + 1, float64(i) * 2, 3},
		})
	}
	return out
}

func TestEmptyChartSaysNoData(t *testing.T) {
	if !bytes.Contains((&Chart{}).SVG(), []byte(">no data<")) {
		t.Error(`empty chart lacks "no data"`)
	}
	if bytes.Contains(sampleChart().SVG(), []byte(">no data<")) {
		t.Error(`chart with data says "no data"`)
	}
}

func TestLonePointsAndMarkers(t *testing.T) {
	// 41 usable points: no markers, except for the lone point after the
	// NaN gap.
	var x, y []float64
	for i := range 42 {
		x = append(x, float64(i))
		y = append(y, float64(i%7))
	}
	y[40] = math.NaN()
	svg := string((&Chart{Series: []Series{{Name: "s", X: x, Y: y}}}).SVG())
	if n := strings.Count(svg, "<circle"); n != 2 { // one marker = halo + dot
		t.Errorf("got %d circles, want 2 for the lone point", n)
	}
	svg = string((&Chart{Series: []Series{{Name: "s", X: x[:20], Y: y[:20]}}}).SVG())
	if n := strings.Count(svg, "<circle"); n != 2*20+2 { // points + legend
		t.Errorf("got %d circles, want %d", n, 2*20+2)
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi, step float64
		want         string
	}{
		{0, 100, 20, "0 20 40 60 80 100"},
		{0.1, 0.95, 0.2, "0.2 0.4 0.6 0.8"},
		{-1, 1, 0.5, "-1.0 -0.5 0 0.5 1.0"},
		{0, 3600, 500, "0 500 1000 1500 2000 2500 3000 3500"},
	} {
		var got []string
		for _, v := range ticks(tc.lo, tc.hi, tc.step) {
			got = append(got, formatTick(v, tc.step, false))
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("ticks(%v, %v, %v) = %q, want %q", tc.lo, tc.hi, tc.step, s, tc.want)
		}
	}
	// Steps are always 1, 2 or 5 times a power of ten.
	for _, span := range []float64{1, 3, 7.5, 42, 1234, 0.0031} {
		s := chooseStep(0, span, 400, 42, nil)
		m := s / math.Pow10(int(math.Floor(math.Log10(s)+1e-9)))
		if math.Abs(m-1) > 1e-9 && math.Abs(m-2) > 1e-9 && math.Abs(m-5) > 1e-9 {
			t.Errorf("chooseStep(span %v) = %v, not a 1-2-5 step", span, s)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts", "nested")
	charts := map[string]*Chart{"degree": sampleChart(), "time": timeChart(), "routing": routingChart()}
	for name, c := range charts {
		if err := c.Write(dir, name); err != nil {
			t.Fatal(err)
		}
		svg, err := os.ReadFile(filepath.Join(dir, name+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(svg, c.SVG()) {
			t.Errorf("%s.svg differs from SVG()", name)
		}
		p, err := os.ReadFile(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		decodePNG(t, p, DefaultWidth, DefaultHeight)
	}
	for _, bad := range []string{"", "a/b", `a\b`, ".."} {
		if err := sampleChart().Write(dir, bad); err == nil {
			t.Errorf("Write(%q) succeeded", bad)
		}
	}
}

// TestWriteSample writes charts to /tmp for checking by eye:
//
//	PLOT_SAMPLE=1 go test ./internal/plot -run TestWriteSample
func TestWriteSample(t *testing.T) {
	if os.Getenv("PLOT_SAMPLE") == "" {
		t.Skip("set PLOT_SAMPLE=1 to write /tmp/plot-sample.{png,svg}")
	}
	if err := sampleChart().Write(os.TempDir(), "plot-sample"); err != nil {
		t.Fatal(err)
	}
	if err := timeChart().Write(os.TempDir(), "plot-sample-time"); err != nil {
		t.Fatal(err)
	}
	if err := routingChart().Write(os.TempDir(), "plot-sample-routing"); err != nil {
		t.Fatal(err)
	}
}
