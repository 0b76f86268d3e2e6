package mobility

import "testing"

// TestReach: on a line 0-1-2-3-4 and a lone pair 5-6, nodes are within h
// links exactly when the line's distance is at most h, and never across
// the gap; a search reuses its marks without clearing them.
func TestReach(t *testing.T) {
	r := NewReach(7, [][2]int32{{0, 1}, {2, 1}, {2, 3}, {3, 4}, {6, 5}})
	for _, tc := range []struct {
		from, to int32
		hops     int
		want     bool
	}{
		{0, 4, 4, true}, {0, 4, 3, false}, {4, 0, 4, true}, {1, 3, 2, true}, {1, 3, 1, false},
		{2, 2, 0, true}, {0, 1, 0, false}, {5, 6, 1, true}, {0, 5, 10, false}, {6, 4, 10, false},
	} {
		if got := r.Within(tc.from, tc.to, tc.hops); got != tc.want {
			t.Errorf("%d to %d within %d: %v, want %v", tc.from, tc.to, tc.hops, got, tc.want)
		}
	}
}
