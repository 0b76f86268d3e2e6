package session

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/minheap"
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
	h queueHeap
	// ids indexes a long queue; a short one is searched. Most links carry
	// little and drain at once, and a Go map keeps its size when emptied:
	// 100,000 static nodes kept 220 MB of drained maps.
	ids    map[envelope.ID]struct{}
	pushed int // how many of the queued were pushed live
}

// A queue is indexed from indexFrom entries until it is back under
// indexFrom/4, so that one hovering near the line does not rebuild its
// index at every push; a drained queue longer than keepCap gives its array
// back.
const (
	indexFrom = 32
	keepCap   = 64
)

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

// queueHeap orders what waits to be sent (see queued.Less).
type queueHeap = minheap.Heap[queued]

// Less is the order sendQueue describes.
func (a queued) Less(b queued) bool {
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

func (q *sendQueue) Len() int { return len(q.h) }

func (q *sendQueue) has(id envelope.ID) bool {
	if q.ids != nil {
		_, ok := q.ids[id]
		return ok
	}
	for i := range q.h {
		if q.h[i].id == id {
			return true
		}
	}
	return false
}

func (q *sendQueue) push(h node.Held, pushed, announce bool) {
	if q.has(h.ID) {
		return
	}
	if pushed {
		q.pushed++
	}
	q.h.Push(queued{id: h.ID, expiry: h.Expiry, receipt: h.Receipt, pushed: pushed, chunk: h.Chunk, announce: announce, hops: h.Hops})
	switch {
	case q.ids != nil:
		q.ids[h.ID] = struct{}{}
	case len(q.h) >= indexFrom:
		q.ids = make(map[envelope.ID]struct{}, 2*len(q.h))
		for _, x := range q.h {
			q.ids[x.id] = struct{}{}
		}
	}
}

// shrunk lets go of the index and the array once the queue is short.
func (q *sendQueue) shrunk() {
	if len(q.h) < indexFrom/4 {
		q.ids = nil
	}
	if len(q.h) == 0 && cap(q.h) > keepCap {
		q.h = nil
	}
}

// receiptFirst says whether the next envelope to leave is a receipt.
func (q *sendQueue) receiptFirst() bool { return len(q.h) > 0 && q.h[0].receipt }

func (q *sendQueue) pop() (queued, bool) {
	if len(q.h) == 0 {
		return queued{}, false
	}
	x := q.h.Pop()
	delete(q.ids, x.id)
	if x.pushed {
		q.pushed--
	}
	q.shrunk()
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
	q.h.Init()
	q.shrunk()
}

// What a link remembers of an envelope ID that passed it (linkIDs).
const (
	// idPeerHolds: the peer holds it — sent to it, received from it, or
	// known from reconciliation, an Offer or a Have.
	idPeerHolds uint64 = 1 << iota
	// idOffered: a last copy offered to the peer; idClaimed: one it
	// claimed by a Want, which Forward then hands over.
	idOffered
	idClaimed
	// idAnnounced: this side announced it by a Have (each is announced
	// once a link; what the peer then wants goes whole).
	idAnnounced
	factMask = 1<<4 - 1
)

// linkIDs remembers facts about up to about 2×limit envelope IDs: when the
// current generation fills, the older one is dropped. Forgetting only
// costs a duplicate send (or a claim read as a plain Want, and the
// envelope comes back as an offer).
//
// It keeps the first 60 bits of each ID and the four facts in one uint64,
// in an open-addressed table: 8 to 11 bytes an ID for all four facts,
// where four Go maps of 8-byte prefixes took about 20 bytes per ID and
// fact, and a link under a flood holds thousands (10,000 static nodes:
// 270 MB of the peak live heap). IDs are SHA-256 outputs: making an
// envelope whose ID shares its first 60 bits with a given one costs 2^60
// hashes. Where an ID goes in the table is a multiply-shift hash with a
// random odd multiplier, so a peer cannot pick IDs that pile up in one
// place. The tables are allocated on first use: most links of a standing
// crowd carry little.
type linkIDs struct {
	cur, old idTable
	limit    int
	mult     uint64
}

// idTable is one generation: a power-of-two number of slots, each an ID
// prefix with its facts or 0 (a used slot has at least one fact).
type idTable struct {
	slots []uint64
	n     int
	shift uint8 // 64 − log2(len(slots))
}

func newLinkIDs(limit int) linkIDs { return linkIDs{limit: limit, mult: rand.Uint64() | 1} }

func idKey(id envelope.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// add records fact f about id.
func (s *linkIDs) add(id envelope.ID, f uint64) {
	k := idKey(id) &^ factMask
	if i, ok := s.cur.find(k, s.mult); ok {
		s.cur.slots[i] |= f
		return
	}
	if s.cur.n >= s.limit {
		s.old, s.cur = s.cur, idTable{}
	}
	s.cur.insert(k|f, s.mult)
}

// forget drops facts f about id (the slot stays, with its ID prefix).
func (s *linkIDs) forget(id envelope.ID, f uint64) {
	k := idKey(id) &^ factMask
	for _, t := range []*idTable{&s.cur, &s.old} {
		if i, ok := t.find(k, s.mult); ok {
			t.slots[i] &^= f
		}
	}
}

// has says whether fact f is known about id.
func (s *linkIDs) has(id envelope.ID, f uint64) bool { return s.facts(id)&f != 0 }

// facts returns every fact known about id, for a caller that asks about
// several: each question costs a look-up in both generations.
func (s *linkIDs) facts(id envelope.ID) uint64 {
	k := idKey(id) &^ factMask
	return s.cur.facts(k, s.mult) | s.old.facts(k, s.mult)
}

func (t *idTable) facts(k, mult uint64) uint64 {
	if i, ok := t.find(k, mult); ok {
		return t.slots[i] & factMask
	}
	return 0
}

// find returns the slot holding prefix k, or ok = false.
func (t *idTable) find(k, mult uint64) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.slots) - 1
	for i := int((k * mult) >> t.shift); ; i = (i + 1) & mask {
		switch v := t.slots[i]; {
		case v == 0:
			return 0, false
		case v&^factMask == k:
			return i, true
		}
	}
}

// insert adds an entry whose prefix is not in the table, growing it to
// keep it at most three quarters full.
func (t *idTable) insert(v, mult uint64) {
	if (t.n+1)*4 > len(t.slots)*3 {
		old := t.slots
		size := max(8, 2*len(old))
		t.slots, t.n = make([]uint64, size), 0
		t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
		for _, x := range old {
			if x != 0 {
				t.put(x, mult)
			}
		}
	}
	t.put(v, mult)
}

func (t *idTable) put(v, mult uint64) {
	mask := len(t.slots) - 1
	i := int(((v &^ factMask) * mult) >> t.shift)
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = v
	t.n++
}
