package session

import (
	"bytes"
	"encoding/binary"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// sendQueue orders what a session sends: every other envelope before a
// file's chunks (SPEC §16.4: a text never waits behind a file, only behind
// the one chunk frame already on the wire); then envelopes pushed live
// (they just arrived here) before the backlog that reconciliation and Wants
// queue, so that new mail does not wait behind a large transfer; within
// each, receipts first (they are small and purge copies everywhere they
// pass), then the soonest to expire, then by ID so the order is
// deterministic.
type sendQueue struct {
	h      queueHeap
	ids    map[envelope.ID]struct{}
	pushed int // how many of the queued were pushed live
}

type queued struct {
	id      envelope.ID
	expiry  uint32
	receipt bool
	pushed  bool
	chunk   bool
	// announce: a live push of an epidemic envelope, announced by a Have
	// (hops is its hop budget here) rather than sent whole.
	announce bool
	hops     uint8
}

// queueHeap is a binary min-heap by less. It is container/heap's
// algorithm written for queued values, which container/heap would box in
// an interface on every push and pop: two allocations per envelope sent.
type queueHeap []queued

func (h queueHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.chunk != b.chunk {
		return !a.chunk
	}
	if a.pushed != b.pushed {
		return a.pushed
	}
	if a.receipt != b.receipt {
		return a.receipt
	}
	if a.expiry != b.expiry {
		return a.expiry < b.expiry
	}
	return bytes.Compare(a.id[:], b.id[:]) < 0
}

func (h *queueHeap) push(x queued) {
	*h = append(*h, x)
	h.up(len(*h) - 1)
}

// pop removes and returns the least item; the heap must not be empty.
func (h *queueHeap) pop() queued {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	old.down(0, n)
	x := old[n]
	old[n] = queued{}
	*h = old[:n]
	return x
}

// init orders the heap after arbitrary changes.
func (h queueHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i, len(h))
	}
}

func (h queueHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2 // parent
		if !h.Less(j, i) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h queueHeap) down(i, n int) {
	for {
		j := 2*i + 1
		if j >= n || j < 0 { // j < 0 after int overflow
			break
		}
		if j2 := j + 1; j2 < n && h.Less(j2, j) {
			j = j2 // the lesser child
		}
		if !h.Less(j, i) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func newSendQueue() sendQueue { return sendQueue{ids: map[envelope.ID]struct{}{}} }

func (q *sendQueue) Len() int                { return len(q.h) }
func (q *sendQueue) has(id envelope.ID) bool { _, ok := q.ids[id]; return ok }

func (q *sendQueue) push(h node.Held, pushed, announce bool) {
	if q.has(h.ID) {
		return
	}
	q.ids[h.ID] = struct{}{}
	if pushed {
		q.pushed++
	}
	q.h.push(queued{id: h.ID, expiry: h.Expiry, receipt: h.Receipt, pushed: pushed, chunk: h.Chunk, announce: announce, hops: h.Hops})
}

// receiptFirst says whether the next envelope to leave is a receipt.
func (q *sendQueue) receiptFirst() bool { return len(q.h) > 0 && q.h[0].receipt }

func (q *sendQueue) pop() (queued, bool) {
	if len(q.h) == 0 {
		return queued{}, false
	}
	x := q.h.pop()
	delete(q.ids, x.id)
	if x.pushed {
		q.pushed--
	}
	return x, true
}

// list returns the queued IDs, in no particular order.
func (q *sendQueue) list() []envelope.ID {
	out := make([]envelope.ID, 0, len(q.h))
	for _, x := range q.h {
		out = append(out, x.id)
	}
	return out
}

// filter keeps the queued IDs for which keep is true.
func (q *sendQueue) filter(keep func(envelope.ID) bool) {
	h := q.h[:0]
	for _, x := range q.h {
		if keep(x.id) {
			h = append(h, x)
		} else {
			delete(q.ids, x.id)
			if x.pushed {
				q.pushed--
			}
		}
	}
	clear(q.h[len(h):])
	q.h = h
	q.h.init()
}

// idSet remembers up to about 2×limit IDs: when the current generation
// fills, the older one is dropped. Forgetting only costs a duplicate send.
// It keeps the first 8 bytes of each ID (about 20 bytes an entry, not 60):
// IDs are SHA-256 outputs, and making an envelope whose ID shares its first
// 8 bytes with a given one costs 2^64 hashes.
type idSet struct {
	cur, old map[uint64]struct{}
	limit    int
}

func newIDSet(limit int) idSet {
	return idSet{cur: map[uint64]struct{}{}, old: map[uint64]struct{}{}, limit: limit}
}

func idKey(id envelope.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

func (s *idSet) add(id envelope.ID) {
	if len(s.cur) >= s.limit {
		s.old, s.cur = s.cur, make(map[uint64]struct{}, s.limit)
	}
	s.cur[idKey(id)] = struct{}{}
}

func (s *idSet) has(id envelope.ID) bool {
	k := idKey(id)
	if _, ok := s.cur[k]; ok {
		return true
	}
	_, ok := s.old[k]
	return ok
}
