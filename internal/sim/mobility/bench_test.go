package mobility

import (
	"math"
	"testing"
)

// side returns the side of a square holding n nodes at mean degree deg
// (ignoring borders) for radio range r.
func side(n int, r, deg float64) float64 {
	return math.Sqrt(float64(n) * math.Pi * r * r / deg)
}

// One virtual second of a 1,000-node pedestrian random waypoint world at
// mean degree about 3: Advance by 1 s, then Pairs.
func BenchmarkAdvancePairs1000(b *testing.B) {
	const n, r = 1000, 100.0
	s := side(n, r, 3)
	w := mustNew(b, Config{
		Nodes: n, Width: s, Height: s, Model: Waypoint,
		SpeedMin: 0.5, SpeedMax: 1.5, PauseMin: 0, PauseMax: 60, Seed: 1,
	})
	var dst [][2]int32
	t, pairs := 0.0, 0
	for b.Loop() {
		t++
		w.Advance(t)
		dst = w.Pairs(r, dst[:0])
		pairs += len(dst)
	}
	b.ReportMetric(2*float64(pairs)/float64(b.N)/n, "degree")
}

// Pairs over 10,000 static nodes at mean degree about 3.
func BenchmarkPairs10000Static(b *testing.B) {
	const n, r = 10000, 100.0
	s := side(n, r, 3)
	w := mustNew(b, Config{Nodes: n, Width: s, Height: s, Model: Static, Seed: 1})
	var dst [][2]int32
	for b.Loop() {
		dst = w.Pairs(r, dst[:0])
	}
	b.ReportMetric(2*float64(len(dst))/n, "degree")
}

// Components of the contact graph of 1,000 nodes at mean degree about 3.
func BenchmarkComponents1000(b *testing.B) {
	const n, r = 1000, 100.0
	s := side(n, r, 3)
	w := mustNew(b, Config{Nodes: n, Width: s, Height: s, Model: Static, Seed: 1})
	pairs := w.Pairs(r, nil)
	var labels []int32
	var share float64
	for b.Loop() {
		labels, share = ComponentsInto(labels, n, pairs)
	}
	b.ReportMetric(share, "largest-share")
}

// Advance alone: 1,000 vehicles (10–20 m/s, no pauses) for one second.
func BenchmarkAdvance1000Fast(b *testing.B) {
	const n = 1000
	w := mustNew(b, Config{
		Nodes: n, Width: 1000, Height: 1000, Model: Waypoint,
		SpeedMin: 10, SpeedMax: 20, Seed: 1,
	})
	t := 0.0
	for b.Loop() {
		t++
		w.Advance(t)
	}
}
