package session

import (
	"bytes"
	"container/heap"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// sendQueue orders what a session sends: receipts first (they are small and
// purge copies everywhere they pass), then the soonest to expire, then by ID
// so the order is deterministic.
type sendQueue struct {
	h   queueHeap
	ids map[envelope.ID]struct{}
}

type queued struct {
	id      envelope.ID
	expiry  uint32
	receipt bool
}

type queueHeap []queued

func (h queueHeap) Len() int { return len(h) }
func (h queueHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.receipt != b.receipt {
		return a.receipt
	}
	if a.expiry != b.expiry {
		return a.expiry < b.expiry
	}
	return bytes.Compare(a.id[:], b.id[:]) < 0
}
func (h queueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *queueHeap) Push(x any)   { *h = append(*h, x.(queued)) }
func (h *queueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newSendQueue() sendQueue { return sendQueue{ids: map[envelope.ID]struct{}{}} }

func (q *sendQueue) Len() int                { return len(q.h) }
func (q *sendQueue) has(id envelope.ID) bool { _, ok := q.ids[id]; return ok }

func (q *sendQueue) push(h node.Held) {
	if q.has(h.ID) {
		return
	}
	q.ids[h.ID] = struct{}{}
	heap.Push(&q.h, queued{id: h.ID, expiry: h.Expiry, receipt: h.Receipt})
}

func (q *sendQueue) pop() (envelope.ID, bool) {
	if len(q.h) == 0 {
		return envelope.ID{}, false
	}
	x := heap.Pop(&q.h).(queued)
	delete(q.ids, x.id)
	return x.id, true
}

// idSet remembers up to about 2×limit IDs: when the current generation
// fills, the older one is dropped. Forgetting only costs a duplicate send.
type idSet struct {
	cur, old map[envelope.ID]struct{}
	limit    int
}

func newIDSet(limit int) idSet {
	return idSet{cur: map[envelope.ID]struct{}{}, old: map[envelope.ID]struct{}{}, limit: limit}
}

func (s *idSet) add(id envelope.ID) {
	if len(s.cur) >= s.limit {
		s.old, s.cur = s.cur, map[envelope.ID]struct{}{}
	}
	s.cur[id] = struct{}{}
}

func (s *idSet) has(id envelope.ID) bool {
	if _, ok := s.cur[id]; ok {
		return true
	}
	_, ok := s.old[id]
	return ok
}
