package minheap

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type num int

func (a num) Less(b num) bool { return a < b }

// TestHeapSorts: pops come in order through pushes and pops interleaved,
// and Init orders a heap whose items were changed in place.
func TestHeapSorts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Heap[num]
	var model []num
	for range 5000 {
		if r.IntN(3) > 0 || len(h) == 0 {
			x := num(r.IntN(100))
			h.Push(x)
			model = append(model, x)
			continue
		}
		slices.Sort(model)
		if got := h.Pop(); got != model[0] {
			t.Fatalf("popped %d, want %d", got, model[0])
		}
		model = model[1:]
	}
	for i := range h {
		h[i] = num(r.IntN(100))
	}
	h.Init()
	var got []num
	for len(h) > 0 {
		got = append(got, h.Pop())
	}
	if !slices.IsSorted(got) || len(got) != len(model) {
		t.Fatalf("after Init, %d pops out of order or lost (%d held)", len(got), len(model))
	}
}
