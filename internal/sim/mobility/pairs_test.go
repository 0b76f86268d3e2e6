package mobility

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func bruteForcePairs(w *World, r float64) [][2]int32 {
	var out [][2]int32
	for i := range w.N() {
		for j := i + 1; j < w.N(); j++ {
			dx, dy := w.x[j]-w.x[i], w.y[j]-w.y[i]
			if float64(dx*dx)+float64(dy*dy) <= r*r {
				out = append(out, [2]int32{int32(i), int32(j)})
			}
		}
	}
	return out
}

func checkPairs(t *testing.T, name string, w *World, r float64) {
	t.Helper()
	want := bruteForcePairs(w, r)
	prefix := [][2]int32{{-1, -1}}
	got := w.Pairs(r, prefix)
	if got[0] != prefix[0] {
		t.Fatalf("%s r=%v: Pairs overwrote dst's existing elements", name, r)
	}
	if !slices.Equal(got[1:], want) {
		t.Fatalf("%s r=%v: Pairs found %d pairs, brute force %d (first difference at %d)", name, r, len(got)-1, len(want), firstDiff(got[1:], want))
	}
	for k := 2; k < len(got); k++ {
		a, b := got[k-1], got[k]
		if a[0] > b[0] || a[0] == b[0] && a[1] >= b[1] {
			t.Fatalf("%s r=%v: pairs not sorted: %v then %v", name, r, a, b)
		}
	}
}

func firstDiff(a, b [][2]int32) int {
	for k := range min(len(a), len(b)) {
		if a[k] != b[k] {
			return k
		}
	}
	return min(len(a), len(b))
}

func TestPairsBruteForce(t *testing.T) {
	type area struct{ w, h float64 }
	for _, a := range []area{{1000, 1000}, {1000, 300}, {1, 1}, {0.01, 0.02}, {1e6, 1}, {2, 5000}} {
		for _, n := range []int{1, 2, 7, 150, 600} {
			for _, model := range []Model{Static, Waypoint} {
				diag := math.Hypot(a.w, a.h)
				c := Config{
					Nodes: n, Width: a.w, Height: a.h, Model: model,
					SpeedMin: 0.001 * diag, SpeedMax: 0.02 * diag, PauseMax: 5,
					Seed: uint64(n)*31 + uint64(a.w),
				}
				w := mustNew(t, c)
				name := fmt.Sprintf("%v n=%d %vx%v", model, n, a.w, a.h)
				for _, tt := range []float64{0, 13, 200} {
					w.Advance(tt)
					for _, r := range []float64{0, 1e-7 * diag, 0.01 * diag, 0.05 * diag, 0.2 * diag, 0.5 * diag, diag, 3 * diag, math.Inf(1)} {
						if n > 200 && r > 0.05*diag && r != diag {
							continue // slow, and nothing the smaller worlds don't cover
						}
						checkPairs(t, name, w, r)
					}
				}
			}
		}
	}
}

func TestPairsNoRange(t *testing.T) {
	w := mustNew(t, Config{Nodes: 20, Width: 1, Height: 1, Seed: 1})
	for _, r := range []float64{-1, math.NaN(), math.Inf(-1)} {
		if got := w.Pairs(r, nil); len(got) != 0 {
			t.Errorf("Pairs(%v) = %v, want none", r, got)
		}
	}
}

// Nodes on a lattice of pitch exactly r, with cells exactly r wide before
// the margin: neighbours at distance exactly r must be found, diagonal ones
// (r·√2) must not.
func TestPairsLattice(t *testing.T) {
	for _, r := range []float64{0.1, 1, 7, 100, 1.0 / 3, 0.125, 1e-3} {
		const side = 10
		w := mustNew(t, Config{Nodes: (side + 1) * (side + 1), Width: side * r, Height: side * r, Seed: 1})
		for i := range w.N() {
			w.x[i] = float64(i%(side+1)) * r
			w.y[i] = float64(i/(side+1)) * r
		}
		checkPairs(t, fmt.Sprint("lattice ", r), w, r)
		// With a pitch whose multiples are exact, every lattice edge is
		// exactly r long.
		if got, want := len(w.Pairs(r, nil)), 2*side*(side+1); exactMultiples(r, side) && got != want {
			t.Errorf("lattice pitch %v: %d pairs, want %d", r, got, want)
		}
		// Duplicated positions: many nodes on the same point.
		for i := range w.N() {
			w.x[i], w.y[i] = float64(i%2)*r, 0
		}
		checkPairs(t, fmt.Sprint("two points ", r), w, 0)
		checkPairs(t, fmt.Sprint("two points ", r), w, r)
	}
}

func exactMultiples(r float64, n int) bool {
	for k := 1; k <= n; k++ {
		if float64(k)*r-float64(k-1)*r != r {
			return false
		}
	}
	return true
}

func TestGridShape(t *testing.T) {
	for _, tc := range []struct{ w, h, r float64 }{
		{1000, 1000, 50}, {1000, 1000, 1e-9}, {1e9, 1e-3, 1e-3}, {1e-3, 1e9, 0},
		{1000, 10, 100}, {1000, 1000, math.Inf(1)}, {1e9, 1e9, 1},
	} {
		for _, n := range []int{1, 10, 10000} {
			cols, rows := gridShape(tc.w, tc.h, tc.r, n)
			if cols < 1 || rows < 1 || cols*rows > 2*n {
				t.Errorf("gridShape(%v, %v, %v, %d) = %d×%d", tc.w, tc.h, tc.r, n, cols, rows)
			}
			if cols > 1 && tc.w/float64(cols) < tc.r || rows > 1 && tc.h/float64(rows) < tc.r {
				t.Errorf("gridShape(%v, %v, %v, %d) = %d×%d: cells narrower than r", tc.w, tc.h, tc.r, n, cols, rows)
			}
		}
	}
}

func TestPairsNoAllocs(t *testing.T) {
	w := mustNew(t, waypointConfig(1000, 3))
	dst := w.Pairs(40, nil)
	tt := 0.0
	allocs := testing.AllocsPerRun(100, func() {
		tt++
		w.Advance(tt)
		dst = w.Pairs(40, dst[:0])
	})
	if allocs != 0 {
		t.Errorf("Advance+Pairs allocate %v times per call", allocs)
	}
}

// Static uniform nodes: a node at least r from the borders has on average
// (N-1)·π·r²/(W·H) neighbours.
func TestStaticMeanDegree(t *testing.T) {
	const n, side, r = 5000, 1000.0, 20.0
	w := mustNew(t, Config{Nodes: n, Width: side, Height: side, Seed: 77})
	deg := make([]int, n)
	for _, p := range w.Pairs(r, nil) {
		deg[p[0]]++
		deg[p[1]]++
	}
	sum, count := 0, 0
	for i := range n {
		x, y := w.Pos(i)
		if x >= r && x <= side-r && y >= r && y <= side-r {
			sum += deg[i]
			count++
		}
	}
	got := float64(sum) / float64(count)
	want := (n - 1) * math.Pi * r * r / (side * side)
	if math.Abs(got-want) > 0.05*want {
		t.Errorf("mean interior degree %.3f over %d nodes, want %.3f ± 5%%", got, count, want)
	}
}
