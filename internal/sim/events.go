package sim

import (
	"container/heap"
	"time"
)

// An event is something that happens at a virtual time. Events at the same
// time run in the order they were scheduled (seq), which makes a run
// deterministic.
type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = event{}
	*h = old[:len(old)-1]
	return x
}

// queue is the simulator's clock and agenda.
type queue struct {
	now  time.Duration
	seq  uint64
	heap eventHeap
}

// at schedules fn at t (never before now).
func (q *queue) at(t time.Duration, fn func()) {
	q.seq++
	heap.Push(&q.heap, event{at: max(t, q.now), seq: q.seq, fn: fn})
}

// after schedules fn d from now.
func (q *queue) after(d time.Duration, fn func()) { q.at(q.now+d, fn) }

// run executes events in order until the agenda is empty or the next event
// lies after end; the clock then reads end.
func (q *queue) run(end time.Duration) {
	for len(q.heap) > 0 && q.heap[0].at <= end {
		ev := heap.Pop(&q.heap).(event)
		q.now = ev.at
		ev.fn()
	}
	q.now = end
}
