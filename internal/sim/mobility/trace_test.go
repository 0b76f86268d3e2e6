package mobility

import (
	"math"
	"strings"
	"testing"
)

const smallTrace = `# two walkers and one who stands still
t,node,x,y
0,0,0,0
10,0,100,0
0,1,100,50
20,1,100,0
5,2,30,30
`

func TestTraceReplay(t *testing.T) {
	tr, err := ParseTrace(strings.NewReader(smallTrace))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Nodes() != 3 {
		t.Fatalf("%d nodes", tr.Nodes())
	}
	w, err := New(Config{Nodes: 3, Width: 100, Height: 50, Model: Traced, Trace: tr})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		t    float64
		node int
		x, y float64
	}{
		{0, 0, 0, 0}, {0, 1, 100, 50}, {0, 2, 30, 30}, // before its first sample: at the first
		{5, 0, 50, 0}, {5, 1, 100, 37.5},
		{10, 0, 100, 0}, {15, 0, 100, 0}, // after its last: at the last
		{20, 1, 100, 0}, {1e6, 2, 30, 30},
	} {
		w.Advance(math.Max(step.t, w.Time()))
		if x, y := w.Pos(step.node); math.Abs(x-step.x) > 1e-9 || math.Abs(y-step.y) > 1e-9 {
			t.Errorf("node %d at %g s: (%g, %g), want (%g, %g)", step.node, step.t, x, y, step.x, step.y)
		}
	}
	if _, err := New(Config{Nodes: 3, Width: 50, Height: 50, Model: Traced, Trace: tr}); err == nil {
		t.Error("a trace outside the area was accepted")
	}
	if _, err := New(Config{Nodes: 4, Width: 100, Height: 50, Model: Traced, Trace: tr}); err == nil {
		t.Error("a trace of 3 nodes drove 4")
	}
}

func TestTraceErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "trace: no samples"},
		{"0,0,1", "trace line 1: 3 fields, want 4 (t,node,x,y)"},
		{"0,0,1,1\n-1,0,1,1", "trace line 2: time \"-1\" is not a number of seconds"},
		{"0,x,1,1\n", "trace line 1: node \"x\" is not an index from 0"},
		{"0,0,1,NaN", "trace line 1: position (1, NaN) is not in metres"},
		{"0,0,1,1\n0,2,1,1", "trace: node 1 has no sample"},
		{"0,0,1,1\n0,0,2,2", "trace: node 0 has two samples at 0 s"},
		{"0,0,1,1\n" + strings.Repeat("9", 5000), "trace line 2: longer than 4096 bytes"},
	} {
		_, err := ParseTrace(strings.NewReader(tt.in))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.in, err, tt.want)
		}
	}
}

// FuzzParseTrace: any input parses or is refused with an error, and a trace
// that parses replays inside its extent at any time.
func FuzzParseTrace(f *testing.F) {
	f.Add(smallTrace)
	f.Add("0,0,1e9,0\n1e12,0,0,1e9\n")
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := ParseTrace(strings.NewReader(in))
		if err != nil {
			return
		}
		wd, ht := tr.Extent()
		w, err := New(Config{Nodes: tr.Nodes(), Width: max(wd, MinSide), Height: max(ht, MinSide), Model: Traced, Trace: tr})
		if err != nil {
			if tr.Nodes() > 1<<16 {
				return
			}
			t.Fatal(err)
		}
		for _, at := range []float64{0, 1, 1e3, 1e9} {
			w.Advance(at)
			for i := range w.N() {
				if x, y := w.Pos(i); !(x >= 0 && x <= max(wd, MinSide)) || !(y >= 0 && y <= max(ht, MinSide)) {
					t.Fatalf("node %d at (%g, %g) outside %gx%g", i, x, y, wd, ht)
				}
			}
		}
	})
}
