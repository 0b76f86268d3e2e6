package sim

import "time"

// An event is something that happens at a virtual time. Events at the same
// time run in the order they were scheduled (seq), which makes a run
// deterministic.
type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

// eventHeap is a binary min-heap of events by (at, seq), written out
// rather than through container/heap, which boxes every event pushed and
// popped in an interface: two allocations an event, and a run has tens of
// millions.
type eventHeap []event

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *eventHeap) push(ev event) {
	*h = append(*h, ev)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *eventHeap) pop() event {
	s := *h
	n := len(s) - 1
	first := s[0]
	s[0] = s[n]
	s[n] = event{} // let the closure go
	s = s[:n]
	for i := 0; ; {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j+1 < n && s.less(j+1, j) {
			j++ // the lesser child
		}
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	*h = s
	return first
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
	q.heap.push(event{at: max(t, q.now), seq: q.seq, fn: fn})
}

// after schedules fn d from now.
func (q *queue) after(d time.Duration, fn func()) { q.at(q.now+d, fn) }

// run executes events in order until the agenda is empty or the next event
// lies after end; the clock then reads end.
func (q *queue) run(end time.Duration) {
	for len(q.heap) > 0 && q.heap[0].at <= end {
		ev := q.heap.pop()
		q.now = ev.at
		ev.fn()
	}
	q.now = end
}
