package mobility

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestComponents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		pairs  [][2]int32
		labels []int32
		share  float64
	}{
		{"no nodes", 0, nil, []int32{}, 0},
		{"one node", 1, nil, []int32{0}, 1},
		{"no edges", 4, nil, []int32{0, 1, 2, 3}, 0.25},
		{"self-loop", 2, [][2]int32{{1, 1}}, []int32{0, 1}, 0.5},
		{"one edge", 3, [][2]int32{{0, 2}}, []int32{0, 1, 0}, 2.0 / 3},
		{"path, reversed edges", 5, [][2]int32{{4, 3}, {3, 2}, {2, 1}, {1, 0}}, []int32{0, 0, 0, 0, 0}, 1},
		{"two triangles and an isolate", 7,
			[][2]int32{{1, 3}, {3, 5}, {1, 5}, {2, 4}, {4, 6}, {2, 6}},
			[]int32{0, 1, 2, 1, 2, 1, 2}, 3.0 / 7},
		{"star joined late", 6, [][2]int32{{5, 4}, {5, 3}, {2, 1}, {1, 3}, {4, 3}, {4, 3}},
			[]int32{0, 1, 1, 1, 1, 1}, 5.0 / 6},
		{"largest not first", 6, [][2]int32{{0, 1}, {2, 3}, {3, 4}, {4, 5}},
			[]int32{0, 0, 2, 2, 2, 2}, 4.0 / 6},
	} {
		labels, share := Components(tc.n, tc.pairs)
		if !slices.Equal(labels, tc.labels) || share != tc.share {
			t.Errorf("%s: Components = %v, %v; want %v, %v", tc.name, labels, share, tc.labels, tc.share)
		}
	}
}

// Random graphs against a breadth-first search; labels must not depend on
// the order of the pairs.
func TestComponentsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		m := rng.IntN(2 * n)
		pairs := make([][2]int32, m)
		for k := range pairs {
			pairs[k] = [2]int32{int32(rng.IntN(n)), int32(rng.IntN(n))}
		}
		adj := make([][]int, n)
		for _, p := range pairs {
			adj[p[0]] = append(adj[p[0]], int(p[1]))
			adj[p[1]] = append(adj[p[1]], int(p[0]))
		}
		want := make([]int32, n)
		for i := range want {
			want[i] = -1
		}
		largest := 0
		for s := range n {
			if want[s] >= 0 {
				continue
			}
			want[s] = int32(s)
			queue, size := []int{s}, 0
			for len(queue) > 0 {
				u := queue[0]
				queue = queue[1:]
				size++
				for _, v := range adj[u] {
					if want[v] < 0 {
						want[v] = int32(s)
						queue = append(queue, v)
					}
				}
			}
			largest = max(largest, size)
		}
		labels, share := Components(n, pairs)
		if !slices.Equal(labels, want) || share != float64(largest)/float64(n) {
			t.Fatalf("trial %d: Components = %v, %v; want %v, %v", trial, labels, share, want, float64(largest)/float64(n))
		}
		rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
		if again, _ := ComponentsInto(labels, n, pairs); !slices.Equal(again, want) {
			t.Fatalf("trial %d: shuffled pairs give %v, want %v", trial, again, want)
		}
	}
}

func TestComponentsIntoNoAllocs(t *testing.T) {
	w := mustNew(t, Config{Nodes: 2000, Width: 1000, Height: 1000, Seed: 5})
	pairs := w.Pairs(25, nil)
	labels, _ := ComponentsInto(nil, w.N(), pairs)
	if a := testing.AllocsPerRun(20, func() { labels, _ = ComponentsInto(labels, w.N(), pairs) }); a != 0 {
		t.Errorf("ComponentsInto allocates %v times per call", a)
	}
}
