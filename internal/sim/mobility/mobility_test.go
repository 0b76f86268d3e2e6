package mobility

import (
	"hash/fnv"
	"math"
	"strings"
	"testing"
)

func waypointConfig(nodes int, seed uint64) Config {
	return Config{
		Nodes: nodes, Width: 1000, Height: 600, Model: Waypoint,
		SpeedMin: 0.5, SpeedMax: 2, PauseMin: 0, PauseMax: 30,
		Seed: seed,
	}
}

func mustNew(t testing.TB, c Config) *World {
	t.Helper()
	w, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestParseModel(t *testing.T) {
	for _, m := range []Model{Static, Waypoint} {
		got, err := ParseModel(m.String())
		if err != nil || got != m {
			t.Errorf("ParseModel(%q) = %v, %v", m.String(), got, err)
		}
	}
	if got, err := ParseModel(" Waypoint "); err != nil || got != Waypoint {
		t.Errorf("ParseModel(\" Waypoint \") = %v, %v", got, err)
	}
	if _, err := ParseModel("brownian"); err == nil || !strings.Contains(err.Error(), "brownian") {
		t.Errorf("ParseModel(\"brownian\") error = %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := waypointConfig(10, 1)
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	static := Config{Nodes: 1, Width: 1, Height: 1, Model: Static, SpeedMin: -1}
	if err := static.Validate(); err != nil {
		t.Errorf("Static ignores the waypoint fields, got %v", err)
	}
	nan := math.NaN()
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Nodes", func(c *Config) { c.Nodes = 0 }},
		{"Nodes", func(c *Config) { c.Nodes = -3 }},
		{"Nodes", func(c *Config) { n := int64(math.MaxInt32); c.Nodes = int(n + 1) }},
		{"Width", func(c *Config) { c.Width = 0 }},
		{"Width", func(c *Config) { c.Width = nan }},
		{"Width", func(c *Config) { c.Width = math.Inf(1) }},
		{"Width", func(c *Config) { c.Width = 1e10 }},
		{"Height", func(c *Config) { c.Height = -5 }},
		{"Height", func(c *Config) { c.Height = 1e-4 }},
		{"Model", func(c *Config) { c.Model = 7 }},
		{"SpeedMin", func(c *Config) { c.SpeedMin = 0 }},
		{"SpeedMin", func(c *Config) { c.SpeedMin = nan }},
		{"SpeedMax", func(c *Config) { c.SpeedMax = 0.4 }},
		{"SpeedMax", func(c *Config) { c.SpeedMax = math.Inf(1) }},
		{"SpeedMax", func(c *Config) { c.SpeedMax = nan }},
		{"PauseMin", func(c *Config) { c.PauseMin = -1 }},
		{"PauseMin", func(c *Config) { c.PauseMin = nan }},
		{"PauseMax", func(c *Config) { c.PauseMin, c.PauseMax = 10, 5 }},
		{"PauseMax", func(c *Config) { c.PauseMax = math.Inf(1) }},
	} {
		c := good
		tc.edit(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%+v: no error, want one naming %s", c, tc.field)
			continue
		}
		if !strings.Contains(err.Error(), tc.field+" = ") {
			t.Errorf("%+v: error %q does not name %s", c, err, tc.field)
		}
		if _, err2 := New(c); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("New: error %v, want %v", err2, err)
		}
	}
}

func TestStaticNeverMoves(t *testing.T) {
	w := mustNew(t, Config{Nodes: 50, Width: 300, Height: 200, Model: Static, Seed: 9})
	type pt struct{ x, y float64 }
	before := make([]pt, w.N())
	for i := range before {
		before[i].x, before[i].y = w.Pos(i)
	}
	w.Advance(1e6)
	for i := range before {
		if x, y := w.Pos(i); (pt{x, y}) != before[i] {
			t.Fatalf("node %d moved from %v to (%v, %v)", i, before[i], x, y)
		}
	}
	if w.Time() != 1e6 {
		t.Errorf("Time() = %v", w.Time())
	}
}

func TestInsideArea(t *testing.T) {
	for _, c := range []Config{
		waypointConfig(300, 1),
		{Nodes: 200, Width: 1, Height: 1, Model: Waypoint, SpeedMin: 0.1, SpeedMax: 5, Seed: 2},
		{Nodes: 200, Width: 5000, Height: 0.01, Model: Waypoint, SpeedMin: 3, SpeedMax: 3, PauseMin: 1, PauseMax: 1, Seed: 3},
		{Nodes: 200, Width: 10, Height: 10, Model: Static, Seed: 4},
	} {
		w := mustNew(t, c)
		for step := 0; step <= 2000; step++ {
			w.Advance(float64(step) * 0.37)
			for i := range w.N() {
				x, y := w.Pos(i)
				if !(x >= 0 && x <= c.Width && y >= 0 && y <= c.Height) {
					t.Fatalf("%+v: node %d at (%v, %v) at t=%v", c, i, x, y, w.Time())
				}
			}
		}
	}
}

func positions(w *World) []float64 {
	var p []float64
	for i := range w.N() {
		x, y := w.Pos(i)
		p = append(p, x, y)
	}
	return p
}

func TestAdvanceSplitInvariance(t *testing.T) {
	for _, c := range []Config{
		waypointConfig(200, 5),
		// Short legs and no pauses: many events inside each step.
		{Nodes: 200, Width: 20, Height: 20, Model: Waypoint, SpeedMin: 1, SpeedMax: 10, Seed: 6},
	} {
		one := mustNew(t, c)
		one.Advance(100)

		small := mustNew(t, c)
		for k := 1; k <= 1000; k++ {
			small.Advance(float64(k) * 0.1)
		}
		small.Advance(100)

		irregular := mustNew(t, c)
		for _, tt := range []float64{0, 1e-9, 3.3, 3.3, 17, 59.999, 60, 99.5, 100} {
			irregular.Advance(tt)
		}

		want := positions(one)
		for name, w := range map[string]*World{"1000 steps of 0.1": small, "irregular steps": irregular} {
			got := positions(w)
			for k := range want {
				// The event times do not depend on the steps, so the
				// positions are in fact bit-identical.
				if math.Abs(got[k]-want[k]) > 1e-9 {
					t.Fatalf("%+v, %s: coordinate %d = %v, one step gives %v", c, name, k, got[k], want[k])
				}
			}
		}
	}
}

func TestAdvancePanics(t *testing.T) {
	w := mustNew(t, waypointConfig(5, 1))
	w.Advance(10)
	for _, tt := range []float64{9, math.NaN(), math.Inf(1)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Advance(%v) after 10 did not panic", tt)
				}
			}()
			w.Advance(tt)
		}()
	}
	w.Advance(10) // same time is fine
}

func TestDeterminism(t *testing.T) {
	run := func(c Config) []float64 {
		w := mustNew(t, c)
		p := positions(w)
		for _, tt := range []float64{1, 50, 51.5, 400, 3000} {
			w.Advance(tt)
			p = append(p, positions(w)...)
		}
		return p
	}
	for _, model := range []Model{Static, Waypoint} {
		c := waypointConfig(100, 42)
		c.Model = model
		a, b := run(c), run(c)
		for k := range a {
			if a[k] != b[k] {
				t.Fatalf("%v: same seed, coordinate %d differs: %v vs %v", model, k, a[k], b[k])
			}
		}
		c.Seed = 43
		d := run(c)
		same := 0
		for k := range a {
			if a[k] == d[k] {
				same++
			}
		}
		if same > 0 {
			t.Errorf("%v: seeds 42 and 43 share %d of %d coordinates", model, same, len(a))
		}
	}
}

// Each node has its own stream, so its trajectory does not depend on how
// many other nodes there are.
func TestNodesIndependent(t *testing.T) {
	small, big := mustNew(t, waypointConfig(10, 7)), mustNew(t, waypointConfig(500, 7))
	for _, tt := range []float64{0, 10, 1000, 5000} {
		small.Advance(tt)
		big.Advance(tt)
		for i := range small.N() {
			x1, y1 := small.Pos(i)
			x2, y2 := big.Pos(i)
			if x1 != x2 || y1 != y2 {
				t.Fatalf("t=%v node %d: (%v, %v) among 10 nodes, (%v, %v) among 500", tt, i, x1, y1, x2, y2)
			}
		}
	}
}

// TestGolden pins the exact trajectories of one configuration. The
// arithmetic is platform-independent by construction; this catches a
// platform (or Go release) where it is not, and accidental changes to the
// model. Update the constant only for a deliberate change of the model.
func TestGolden(t *testing.T) {
	c := waypointConfig(100, 2024)
	c.PauseMin = 2
	w := mustNew(t, c)
	h := fnv.New64a()
	put := func() {
		for _, v := range positions(w) {
			b := math.Float64bits(v)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24), byte(b >> 32), byte(b >> 40), byte(b >> 48), byte(b >> 56)})
		}
	}
	put()
	for k := 1; k <= 600; k++ {
		w.Advance(float64(k) * 7.5)
		put()
	}
	s := mustNew(t, Config{Nodes: 100, Width: 1000, Height: 600, Model: Static, Seed: 2024})
	for _, v := range positions(s) {
		b := math.Float64bits(v)
		h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24), byte(b >> 32), byte(b >> 40), byte(b >> 48), byte(b >> 56)})
	}
	const want = 0xc0797e548cd17d97
	if got := h.Sum64(); got != want {
		t.Errorf("trajectory hash = %#x, want %#x", got, uint64(want))
	}
}

// Displacement over one second never exceeds SpeedMax, and the fastest
// nodes come close to it.
func TestSpeedWithinRange(t *testing.T) {
	c := waypointConfig(300, 11)
	c.SpeedMin, c.SpeedMax = 1.5, 4
	w := mustNew(t, c)
	prev := positions(w)
	fastest := 0.0
	for s := 1; s <= 2000; s++ {
		w.Advance(float64(s))
		cur := positions(w)
		for i := 0; i < len(cur); i += 2 {
			d := math.Hypot(cur[i]-prev[i], cur[i+1]-prev[i+1])
			if d > c.SpeedMax*(1+1e-12) {
				t.Fatalf("node %d moved %v m in the second before t=%d, SpeedMax %v", i/2, d, s, c.SpeedMax)
			}
			fastest = max(fastest, d)
		}
		prev = cur
	}
	if fastest < 0.95*c.SpeedMax {
		t.Errorf("fastest displacement per second %v, want close to SpeedMax %v", fastest, c.SpeedMax)
	}
	// While moving, a node's speed is in [SpeedMin, SpeedMax].
	for i, n := range w.wp {
		v := math.Hypot(n.vx, n.vy)
		if w.t < n.t1 && !(v >= c.SpeedMin*(1-1e-12) && v <= c.SpeedMax*(1+1e-12)) {
			t.Errorf("node %d moves at %v m/s", i, v)
		}
	}
}
