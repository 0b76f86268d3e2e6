// Package minheap owns a binary min-heap of values: container/heap's
// algorithm over a slice of values that order themselves, without the
// interface container/heap boxes every value in (two allocations a push
// and a pop, on paths that run tens of millions of times: a session's send
// queue, the simulator's agenda).
package minheap

// Item is a value that orders itself against another of its type.
type Item[T any] interface{ Less(T) bool }

// Heap is a min-heap by Less; the zero value is empty, and h[0] is the
// least item.
type Heap[T Item[T]] []T

// Push adds x.
func (h *Heap[T]) Push(x T) {
	*h = append(*h, x)
	h.up(len(*h) - 1)
}

// Pop removes and returns the least item; the heap must not be empty.
func (h *Heap[T]) Pop() T {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	old.down(0, n)
	x := old[n]
	var zero T
	old[n] = zero // let what it points to go
	*h = old[:n]
	return x
}

// Init orders the heap after arbitrary changes to its items.
func (h Heap[T]) Init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i, len(h))
	}
}

func (h Heap[T]) up(j int) {
	for j > 0 {
		i := (j - 1) / 2 // parent
		if !h[j].Less(h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h Heap[T]) down(i, n int) {
	for {
		j := 2*i + 1
		if j >= n || j < 0 { // j < 0 after int overflow
			break
		}
		if j2 := j + 1; j2 < n && h[j2].Less(h[j]) {
			j = j2 // the lesser child
		}
		if !h[j].Less(h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}
