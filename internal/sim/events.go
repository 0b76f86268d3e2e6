package sim

import (
	"time"

	"github.com/grapevine-mesh/grapevine/internal/minheap"
)

// An event is something that happens at a virtual time. Events at the same
// time run in the order they were scheduled (seq), which makes a run
// deterministic.
type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

// Less orders events by time, then by when they were scheduled.
func (a event) Less(b event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// queue is the simulator's clock and agenda.
type queue struct {
	now  time.Duration
	seq  uint64
	heap minheap.Heap[event] // not container/heap, which boxes every event twice
}

// at schedules fn at t (never before now).
func (q *queue) at(t time.Duration, fn func()) {
	q.seq++
	q.heap.Push(event{at: max(t, q.now), seq: q.seq, fn: fn})
}

// after schedules fn d from now.
func (q *queue) after(d time.Duration, fn func()) { q.at(q.now+d, fn) }

// run executes events in order until the agenda is empty or the next event
// lies after end; the clock then reads end.
func (q *queue) run(end time.Duration) {
	for len(q.heap) > 0 && q.heap[0].at <= end {
		ev := q.heap.Pop()
		q.now = ev.at
		ev.fn()
	}
	q.now = end
}
