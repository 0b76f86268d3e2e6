package node

import (
	"maps"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// DefaultRecordCache bounds the records kept in memory by recentRecords,
// unless Options.RecordCache says otherwise.
const DefaultRecordCache = 1 << 20

// recentRecords keeps the stored records (flags byte ‖ envelope) written
// last, oldest evicted first. Live push forwards an envelope moments after
// it arrived, and duplicates and receipts arrive soon after what they
// match, so most reads of the store find their record here instead of
// looking up and decrypting it again. It lives in the inventory: a record
// leaves with its envelope and is replaced when the envelope is rewritten,
// both once the transaction has committed. The records are sealed
// envelopes, which carriers see anyway; the store's sealing protects them
// at rest, not in a running node's memory.
type recentRecords struct {
	limit int // bytes; 0: none kept
	m     map[envelope.ID]recentRecord
	peak  int         // the most records m held since it was made (a Go map never shrinks)
	fifo  []recentKey // insertion order; entries whose seq no longer matches are stale
	head  int         // fifo[:head] is consumed
	seq   uint64
	bytes int
}

// recentOverhead is what keeping a record costs beyond its bytes (its map
// slot, about twice filled, and its place in the queue), counted against
// the limit: the records of receipts are about 100 bytes, and a cache
// bounded by their bytes alone took twice its limit.
const recentOverhead = 128

type recentRecord struct {
	v   []byte
	seq uint64
}

type recentKey struct {
	id  envelope.ID
	seq uint64
}

func (r *recentRecords) put(id envelope.ID, v []byte) {
	if r.m == nil {
		r.m = map[envelope.ID]recentRecord{}
	}
	r.drop(id)
	r.seq++
	r.m[id] = recentRecord{v: v, seq: r.seq}
	r.peak = max(r.peak, len(r.m))
	r.fifo = append(r.fifo, recentKey{id: id, seq: r.seq})
	r.bytes += len(v) + recentOverhead
	for r.bytes > r.limit && r.head < len(r.fifo) {
		k := r.fifo[r.head]
		r.head++
		if rec, ok := r.m[k.id]; ok && rec.seq == k.seq {
			r.drop(k.id)
		}
	}
	if r.head > len(r.fifo)/2 { // reuse the consumed half
		r.fifo = r.fifo[:copy(r.fifo, r.fifo[r.head:])]
		r.head = 0
	}
	if len(r.fifo)-r.head > 2*len(r.m)+64 {
		// Records dropped with their envelopes (purged, evicted) leave
		// stale keys behind that eviction never reaches while the bytes
		// stay under the limit: keep the live ones only.
		live := r.fifo[:0]
		for _, k := range r.fifo[r.head:] {
			if rec, ok := r.m[k.id]; ok && rec.seq == k.seq {
				live = append(live, k)
			}
		}
		clear(r.fifo[len(live):])
		r.fifo, r.head = live, 0
	}
	if cap(r.fifo) > 4*(len(r.fifo)-r.head)+64 {
		// A burst of small records (a node's setup, a sweep) grew it: give
		// the room back.
		r.fifo, r.head = slices.Clone(r.fifo[r.head:]), 0
	}
}

func (r *recentRecords) drop(id envelope.ID) {
	rec, ok := r.m[id]
	if !ok {
		return
	}
	r.bytes -= len(rec.v) + recentOverhead
	delete(r.m, id)
	if r.peak > 64 && len(r.m) < r.peak/4 {
		// Most records left at once (a sweep, a purge): a map the size of
		// what remains, rather than one the size of the peak, on every node.
		m := make(map[envelope.ID]recentRecord, len(r.m)) // not maps.Clone: it keeps the size
		maps.Copy(m, r.m)
		r.m, r.peak = m, len(m)
	}
}

func (r *recentRecords) get(id envelope.ID) ([]byte, bool) {
	rec, ok := r.m[id]
	return rec.v, ok
}

// record returns the stored record of an envelope, or ok = false if it is
// not held. Within a transaction that rewrote it, only the store has the
// current one. The slice may be shared: callers copy what they change.
func (n *Node) record(tx *store.Tx, id envelope.ID) (v []byte, ok bool, err error) {
	if !n.mayHold(id) {
		return nil, false, nil
	}
	if !n.written[id] {
		if v, ok := n.inv.recent.get(id); ok {
			return v, true, nil
		}
	}
	v, _, ok, err = tx.GetShared(colEnvelopes, id[:]) // read-only, as the cache's records are
	return v, ok, err
}
