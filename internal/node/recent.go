package node

import (
	"encoding/binary"
	"maps"

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
//
// Every simulated node keeps one, so its own bookkeeping is small: the
// records in arrival order, and a map from the first 8 bytes of an ID to
// its place. Two IDs alike in those 8 bytes (only by design: IDs are
// hashes) cannot both be kept; the later evicts the earlier, which is then
// read from the store like any record not kept.
type recentRecords struct {
	limit int              // bytes; 0: none kept
	at    map[uint64]int32 // ID prefix → place in q
	peak  int              // the most records at held since it was made (a Go map never shrinks)
	// q is a ring of places in arrival order, n of them from head; q[i]
	// holds a record only while at says i, the others are stale places
	// of records dropped or rewritten since.
	q     []recentEntry
	head  int
	n     int
	bytes int
}

// recentOverhead is what keeping a record is counted to cost beyond its
// bytes (its map slot and its place in the queue), against the limit: the
// records of receipts are about 100 bytes, and a cache bounded by their
// bytes alone took twice its limit.
const recentOverhead = 128

type recentEntry struct {
	id envelope.ID
	v  []byte
}

func idPrefix(id envelope.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// place returns where id's record is in q, if it is kept.
func (r *recentRecords) place(id envelope.ID) (int, bool) {
	i, ok := r.at[idPrefix(id)]
	return int(i), ok && r.q[i].id == id
}

// kept says whether q[i] holds a record rather than a stale place.
func (r *recentRecords) kept(i int) bool {
	j, ok := r.at[idPrefix(r.q[i].id)]
	return ok && int(j) == i
}

func (r *recentRecords) put(id envelope.ID, v []byte) {
	if r.at == nil {
		r.at = map[uint64]int32{}
	}
	if i, ok := r.at[idPrefix(id)]; ok {
		r.dropAt(int(i)) // this record's last version, or one whose ID shares its prefix
	}
	if r.n == len(r.q) {
		// Full: a ring of the records kept and half as many places more,
		// which drops the stale places (records purged or rewritten)
		// eviction would reach only once the bytes pass the limit.
		r.remake(len(r.at) + len(r.at)/2 + 8)
	}
	i := (r.head + r.n) % len(r.q)
	r.q[i] = recentEntry{id: id, v: v}
	r.n++
	r.at[idPrefix(id)] = int32(i)
	r.peak = max(r.peak, len(r.at))
	r.bytes += len(v) + recentOverhead
	for r.bytes > r.limit && r.n > 0 {
		if r.kept(r.head) {
			r.dropAt(r.head)
		}
		r.q[r.head] = recentEntry{}
		r.head = (r.head + 1) % len(r.q)
		r.n--
	}
	if len(r.q) > 64 && len(r.at) < len(r.q)/4 {
		// A burst of small records (a node's setup, a sweep) grew it: give
		// the room back.
		r.remake(2*len(r.at) + 8)
	}
}

// remake moves the records kept, in order, to a ring of size places.
func (r *recentRecords) remake(size int) {
	q := make([]recentEntry, size)
	n := 0
	for k := range r.n {
		if i := (r.head + k) % len(r.q); r.kept(i) {
			r.at[idPrefix(r.q[i].id)] = int32(n)
			q[n] = r.q[i]
			n++
		}
	}
	r.q, r.head, r.n = q, 0, n
}

func (r *recentRecords) drop(id envelope.ID) {
	if i, ok := r.place(id); ok {
		r.dropAt(i)
	}
}

func (r *recentRecords) dropAt(i int) {
	e := r.q[i]
	r.bytes -= len(e.v) + recentOverhead
	delete(r.at, idPrefix(e.id))
	r.q[i].v = nil // the bytes go now, the place when the ring is remade or reaches it
	if r.peak > 64 && len(r.at) < r.peak/4 {
		// Most records left at once (a sweep, a purge): a map the size of
		// what remains, rather than one the size of the peak, on every node.
		m := make(map[uint64]int32, len(r.at)) // not maps.Clone: it keeps the size
		maps.Copy(m, r.at)
		r.at, r.peak = m, len(m)
	}
}

func (r *recentRecords) get(id envelope.ID) ([]byte, bool) {
	if i, ok := r.place(id); ok {
		return r.q[i].v, true
	}
	return nil, false
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
