package node

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/negentropy"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// The inventory is a small in-memory record of every envelope held, so that
// reconciliation with neighbours, the relay quota and status never scan the
// store. Every envelope write goes through putEnvelope/deleteEnvelope, which
// journal the change; update applies the journal once the transaction has
// committed, so the inventory never shows what a failed transaction wrote.
//
// Who handed us an envelope (its source, for fair eviction) lives only here,
// in memory: a seized device must not tell whom its owner met.

// Held describes one envelope the node holds.
type Held struct {
	ID      envelope.ID
	Expiry  uint32 // Unix seconds
	Size    int
	Hops    uint8
	Own     bool // written by this node: its outbox and its receipts
	Receipt bool
	Copies  uint8 // spray-and-wait copies this node may still hand out; 0: unlimited
	Chunk   bool  // a file's chunk (kind 4): it leaves after every other envelope (SPEC §16.4)
	// Better: a copy with a larger hop budget replaced the first one held,
	// so neighbours who have the envelope may want this copy (SPEC §12.2).
	Better bool
}

// DefaultRelayQuota bounds what a node carries for others, in bytes.
const DefaultRelayQuota = 256 << 20

// heldMeta is kept by value, 20 bytes, for 100,000 envelopes in a few MB.
type heldMeta struct {
	expiry  uint32
	size    int32
	source  uint32 // who handed it over (index into inventory.sources); 0: unknown, held before a restart
	seq     uint32 // order of arrival since the node started; 0: held before a restart
	hops    uint8
	own     bool
	receipt bool
	chunk   bool // a chunk envelope (kind 4): charged to the chunk pool
	carried bool // an own chunk MarkCarried has counted
	better  bool // a copy with a larger hop budget replaced the first
	copies  uint8
	tagged  bool // carried for others, its tag in inventory.tags (taggedKind)
}

// ItemOverhead is what an envelope held costs beyond its own bytes — its
// index entries, its place in memory (the inventory, the tag map) and on
// disk (keys, padding, expiry index) — charged against the relay quota, so
// that a quota of tiny envelopes means what it says (SPEC §12.4).
const ItemOverhead = 512

func (hm heldMeta) cost() int64 { return int64(hm.size) + ItemOverhead }

func (hm heldMeta) held(id envelope.ID) Held {
	return Held{ID: id, Expiry: hm.expiry, Size: int(hm.size), Hops: hm.hops, Own: hm.own, Receipt: hm.receipt, Copies: hm.copies, Chunk: hm.chunk, Better: hm.better}
}

type change struct {
	id      envelope.ID
	meta    heldMeta
	rec     []byte // the stored record written
	deleted bool
	tag     *[envelope.TagSize]byte // a sealed envelope carried for others
	// proven, if not 0, is the expiry of an envelope that id names and
	// this node opened and receipted (releaseReceipt): nothing is written,
	// it joins the envelopes proven delivered (n.delivered) once the
	// transaction commits.
	proven uint32
}

// expected lists the carried envelopes whose tags the index expects.
func (iv *inventory) expected(ix *index) []envelope.ID {
	var out []envelope.ID
	for tag, id := range iv.tags {
		if _, held := iv.m[id]; !held {
			delete(iv.tags, tag)
			continue
		}
		if _, ok := ix.lookup(tag); ok {
			out = append(out, id)
		}
	}
	return out
}

// noteTag maps a carried envelope's tag to it. The tags of envelopes gone
// since go when expected looks (new keys), or here once they are half as
// many as those of envelopes held: a relay that is never sent anything
// would otherwise keep the tag of every envelope it ever carried. Half,
// counted against the envelopes that have tags: bounded by twice all that
// is held (receipts and its own too), the tags of 1,000 walkers where
// every message reaches everyone took 92 MB of the 1,208 MB live at the
// peak of three hours, 25 MB bounded so (TestCarriedTagsDoNotAccumulate).
func (iv *inventory) noteTag(tag [envelope.TagSize]byte, id envelope.ID) {
	iv.tags[tag] = id
	if len(iv.tags) > iv.tagged+iv.tagged/2+64 {
		// A map never shrinks: a new one, of the size it needs.
		tags := make(map[[envelope.TagSize]byte]envelope.ID, iv.tagged)
		for tag, id := range iv.tags {
			if _, held := iv.m[id]; held {
				tags[tag] = id
			}
		}
		iv.tags = tags
	}
}

type inventory struct {
	m    map[envelope.ID]heldMeta
	snap *negentropy.Storage // every envelope held as Negentropy items; nil: not made yet
	// snapTouched holds the envelopes added, changed or removed since snap
	// was made, with the expiry each had in it (or its first since): the
	// next snapshot applies these to the last one rather than being made of
	// every envelope, so that a reconciliation costs the same whatever is
	// held (SPEC §11.2).
	snapTouched map[envelope.ID]uint32
	recent      recentRecords
	carried     int64 // bytes held for others
	cost        int64 // what they cost, ItemOverhead each included: what the quota bounds
	chunkCost   int64 // the part of cost that chunks carried for others make: a pool of its own
	seq         uint32
	bytes       int64 // bytes held in all
	bySource    map[uint32]int64
	sources     map[string]uint32 // source name → index; index 0 is ""
	// tags maps the tag of every sealed envelope carried for others to its
	// ID, so that keys learnt later find what they open without reading the
	// store. Entries of envelopes gone since are dropped lazily.
	tags   map[[envelope.TagSize]byte]envelope.ID
	tagged int // envelopes held whose tags are noted (heldMeta.tagged)
}

func newInventory(cache int) *inventory {
	return &inventory{recent: recentRecords{limit: cache}, m: map[envelope.ID]heldMeta{}, bySource: map[uint32]int64{}, sources: map[string]uint32{"": 0},
		tags: map[[envelope.TagSize]byte]envelope.ID{}}
}

// sourceIndex numbers source names; past 65,536 of them (a node up for
// months among many strangers), new ones share index 0.
func (iv *inventory) sourceIndex(name string) uint32 {
	if i, ok := iv.sources[name]; ok {
		return i
	}
	if len(iv.sources) >= 1<<16 {
		return 0
	}
	i := uint32(len(iv.sources))
	iv.sources[name] = i
	return i
}

func (iv *inventory) add(id envelope.ID, hm heldMeta) (isNew bool) {
	old, ok := iv.m[id]
	if ok {
		iv.remove(id)
		hm.source, hm.seq = old.source, old.seq // a better copy keeps its origin
		hm.better = old.better || hm.hops > old.hops
	}
	if hm.seq == 0 && hm.source != 0 {
		iv.seq++
		hm.seq = iv.seq
	}
	iv.m[id] = hm
	iv.bytes += int64(hm.size)
	if hm.tagged {
		iv.tagged++
	}
	if !hm.own {
		iv.carried += int64(hm.size)
		iv.cost += hm.cost()
		iv.bySource[hm.source] += hm.cost()
		if hm.chunk {
			iv.chunkCost += hm.cost()
		}
	}
	iv.touch(id, hm.expiry)
	return !ok
}

func (iv *inventory) remove(id envelope.ID) {
	hm, ok := iv.m[id]
	if !ok {
		return
	}
	delete(iv.m, id)
	iv.recent.drop(id)
	iv.bytes -= int64(hm.size)
	if hm.tagged {
		iv.tagged--
	}
	if !hm.own {
		iv.carried -= int64(hm.size)
		iv.cost -= hm.cost()
		if iv.bySource[hm.source] -= hm.cost(); iv.bySource[hm.source] <= 0 {
			delete(iv.bySource, hm.source)
		}
		if hm.chunk {
			iv.chunkCost -= hm.cost()
		}
	}
	iv.touch(id, hm.expiry)
}

// touch notes a change for the next snapshot; before the first snapshot
// (while a node loads what it holds) there is nothing to apply it to, and
// nothing is noted.
func (iv *inventory) touch(id envelope.ID, expiry uint32) {
	if _, ok := iv.snapTouched[id]; !ok && iv.snap != nil {
		if len(iv.snapTouched) > len(iv.m)/2+64 {
			// No reconciliation for a long while (a node that only answers
			// rounds, under a flood): make the next snapshot afresh rather
			// than keep a record of every change, and the old snapshot.
			// Making one afresh costs a sort of what is held, little for a
			// small node: so a small node does not keep a thousand changes
			// (10,000 static nodes under a flood kept 60 MB of them).
			iv.snap = nil
			iv.resetTouched()
		} else {
			if iv.snapTouched == nil {
				iv.snapTouched = map[envelope.ID]uint32{}
			}
			iv.snapTouched[id] = expiry
		}
	}
}

// list returns every envelope held, sorted by expiry then ID: the order of
// Negentropy items (timestamp = expiry). It sorts afresh each time: it
// serves the first snapshot and the API's listing, while reconciliations
// use the snapshot kept up to date change by change, so a sorted copy kept
// beside the map would only double what each envelope costs in memory.
func (iv *inventory) list() []Held {
	out := make([]Held, 0, len(iv.m))
	for id, hm := range iv.m {
		out = append(out, hm.held(id))
	}
	slices.SortFunc(out, compareHeld)
	return out
}

// snapshot returns every envelope held as a Negentropy storage, in the
// order list returns them. The first is made of every envelope; each later
// one is the last with what changed since applied (negentropy's With): a
// node reconciles at every link set-up and every few minutes on each link,
// and a stranger may open a round ten times a second, so a snapshot must
// not cost a pass over everything held.
func (iv *inventory) snapshot() (*negentropy.Storage, error) {
	if iv.snap == nil {
		held := iv.list()
		items := make([]negentropy.Item, len(held))
		for i, h := range held {
			items[i] = negentropy.Item{Timestamp: uint64(h.Expiry), ID: h.ID}
		}
		st, err := negentropy.NewSortedStorage(items)
		if err != nil {
			return nil, fmt.Errorf("failed to snapshot envelopes: %w", err)
		}
		iv.snap = st
		iv.resetTouched()
		return st, nil
	}
	if len(iv.snapTouched) == 0 {
		return iv.snap, nil
	}
	var add, remove []negentropy.Item
	for id, expiry := range iv.snapTouched {
		remove = append(remove, negentropy.Item{Timestamp: uint64(expiry), ID: id})
		if hm, ok := iv.m[id]; ok {
			add = append(add, negentropy.Item{Timestamp: uint64(hm.expiry), ID: id})
		}
	}
	st, err := iv.snap.With(add, remove)
	if err != nil {
		return nil, fmt.Errorf("failed to update the envelope snapshot: %w", err)
	}
	iv.snap = st
	iv.resetTouched()
	return st, nil
}

// resetTouched empties snapTouched. A Go map keeps the size it grew to, so
// it is dropped rather than cleared: one that a round's changes filled
// would hold kilobytes on every node between rounds, tens after a flood.
func (iv *inventory) resetTouched() {
	iv.snapTouched = nil
}

func compareHeld(a, b Held) int {
	if a.Expiry != b.Expiry {
		return int(int64(a.Expiry) - int64(b.Expiry))
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// victims chooses what to evict so that the cost of what is carried falls
// to target (SPEC §12.4). Each source (a neighbour's address) has a fair
// share: the quota divided among the sources holding something. Eviction
// takes from the largest source over its share — so a source within its
// share loses nothing, however many addresses a flooder uses — and from it
// the most recently arrived first, so what was held before a flood stays.
// What was held before a restart (source 0) goes last, oldest expiry first.
//
// Chunks and everything else are two pools, each bounded by its own quota
// (the chunk quota and the relay quota, SPEC §16.4): chunks chooses the pool, so a flood of chunks evicts
// chunks and never texts, receipts or posts.
func (iv *inventory) victims(target int64, chunks bool) []envelope.ID {
	cost := iv.cost - iv.chunkCost
	if chunks {
		cost = iv.chunkCost
	}
	if cost <= target {
		return nil
	}
	type item struct {
		id     envelope.ID
		order  uint64 // eviction order: popped from the end
		cost   int64
		source uint32
	}
	bySrc := map[uint32][]item{}
	for id, hm := range iv.m {
		if hm.own || hm.chunk != chunks {
			continue
		}
		o := uint64(hm.seq)
		if hm.source == 0 {
			o = uint64(^uint32(0)-hm.expiry) << 32 // soonest expiry last in, first out
		}
		bySrc[hm.source] = append(bySrc[hm.source], item{id, o, hm.cost(), hm.source})
	}
	for _, items := range bySrc {
		slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.order, b.order) })
	}
	use := make(map[uint32]int64, len(bySrc))
	for s, items := range bySrc {
		for _, it := range items {
			use[s] += it.cost
		}
	}
	share := target / int64(max(1, len(use)))
	var out []envelope.ID
	for total := cost; total > target; {
		worst, found := uint32(0), false
		for s, c := range use {
			if s != 0 && c > share && (!found || c > use[worst] || c == use[worst] && s < worst) {
				worst, found = s, true
			}
		}
		if !found { // nobody over its share: the largest, source 0 included
			for s, c := range use {
				if !found || c > use[worst] || c == use[worst] && s < worst {
					worst, found = s, true
				}
			}
		}
		items := bySrc[worst]
		if len(items) == 0 {
			break
		}
		it := items[len(items)-1]
		bySrc[worst] = items[:len(items)-1]
		if use[worst] -= it.cost; use[worst] <= 0 {
			delete(use, worst)
		}
		total -= it.cost
		out = append(out, it.id)
	}
	return out
}

// update runs fn in a write transaction and, once it has committed, brings
// the inventory up to date and tells the watcher what is new.
func (n *Node) update(fn func(tx *store.Tx) error) error {
	n.resetJournal()
	last, due := n.clk.due(time.Minute)
	err := n.st.Update(func(tx *store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if tx.Touched(colMessages) || tx.Touched(colContacts) || tx.Touched(colSelf) {
			// The conversation list read these: it is made again
			// (events.go). Bumped before the commit: a transaction that
			// then fails only costs a needless rebuild.
			n.convGen++
		}
		if due { // the trusted time rides along with writes that happen anyway
			return putClock(tx, last)
		}
		return nil
	})
	n.written = nil
	if err != nil {
		n.resetJournal()
		return err
	}
	if due {
		n.clk.wrote(last)
	}
	var added []envelope.ID
	var proven []provenEntry
	for _, c := range n.journal {
		if c.proven != 0 {
			proven = append(proven, provenEntry{c.id, c.proven})
			continue
		}
		if c.deleted {
			n.inv.remove(c.id)
			continue
		}
		before, had := n.inv.m[c.id]
		if n.inv.add(c.id, c.meta) || had && c.meta.hops > before.hops {
			added = append(added, c.id) // new, or a copy that goes further
		}
		if c.tag != nil {
			n.inv.noteTag(*c.tag, c.id)
		}
		n.inv.recent.put(c.id, c.rec)
	}
	n.resetJournal()
	n.delivered.add(proven, uint32(n.now().Unix()))
	n.events.notify()
	if len(added) > 0 && n.watch != nil {
		n.watch(added)
	}
	return nil
}

// maxKeptJournal is the most changes whose room the journal keeps between
// transactions: a link coming up may write hundreds, and room for them all
// kept on every node between its writes cost 1,000 walkers 13 MB.
const maxKeptJournal = 64

// resetJournal empties the journal. The changes it held are cleared, not
// only cut off: each points to the record it wrote, which the room kept
// would otherwise keep alive long after the record cache let it go
// (TestJournalLetsGoOfRecords). Room past the changes is always clear.
func (n *Node) resetJournal() {
	if cap(n.journal) > maxKeptJournal {
		n.journal = nil
		return
	}
	clear(n.journal)
	n.journal = n.journal[:0]
}

// putEnvelope stores an encoded envelope under its ID until it expires.
func (n *Node) putEnvelope(tx *store.Tx, raw []byte, flags byte) error {
	return n.putEnvelopeID(tx, envelope.ComputeID(raw), raw, flags)
}

// putEnvelopeID is putEnvelope for a caller that has computed raw's ID: a
// hash of all its bytes, 32 KB for a chunk.
func (n *Node) putEnvelopeID(tx *store.Tx, id envelope.ID, raw []byte, flags byte) error {
	e, err := envelope.Parse(raw)
	if err != nil {
		return err
	}
	return n.putParsed(tx, id, e, raw, flags)
}

// putParsed is putEnvelopeID for an envelope ingest has parsed (e, from
// raw) already: a parse fewer per envelope.
func (n *Node) putParsed(tx *store.Tx, id envelope.ID, e *envelope.Envelope, raw []byte, flags byte) error {
	v := make([]byte, 0, 1+len(raw))
	v = append(append(v, flags), raw...)
	if err := tx.Put(colEnvelopes, id[:], v, e.ExpiresAt()); err != nil {
		return err
	}
	ch := change{id: id, meta: metaOf(e, len(raw), flags, n.inv.sourceIndex(n.source)), rec: v}
	if ch.meta.tagged {
		tag := e.Tag
		ch.tag = &tag
	}
	n.journal = append(n.journal, ch)
	n.noteWritten(id)
	return nil
}

// taggedKind says whether a carried envelope's tag may become expected
// later: a message's (keys learnt later) or a chunk's (a manifest arriving
// after its chunks, SPEC §16.10).
func taggedKind(k envelope.Kind) bool { return k == envelope.KindSealed || k == envelope.KindChunk }

func (n *Node) noteWritten(id envelope.ID) {
	if n.written == nil {
		n.written = map[envelope.ID]bool{}
	}
	n.written[id] = true
}

// mayHold reports whether the store may hold the envelope: the inventory
// has it, or this transaction wrote it. When false, reading the store for it
// is pointless (the inventory mirrors the store).
func (n *Node) mayHold(id envelope.ID) bool {
	_, ok := n.inv.m[id]
	return ok || n.written[id]
}

func metaOf(e *envelope.Envelope, size int, flags byte, source uint32) heldMeta {
	return heldMeta{expiry: e.Expiry, size: int32(size), hops: e.Hops, own: flags&flagOwn != 0,
		receipt: e.Kind == envelope.KindReceipt, chunk: e.Kind == envelope.KindChunk, source: source, copies: copiesOf(flags),
		tagged: taggedKind(e.Kind) && flags&flagOwn == 0}
}

func (n *Node) deleteEnvelope(tx *store.Tx, id envelope.ID) error {
	if err := tx.Delete(colEnvelopes, id[:]); err != nil {
		return err
	}
	n.journal = append(n.journal, change{id: id, deleted: true})
	n.noteWritten(id)
	return nil
}

// loadInventory reads what the store holds, at open.
func (n *Node) loadInventory() error {
	iv := newInventory(n.inv.recent.limit)
	err := n.eachEnvelope(func(flags byte, raw []byte, e *envelope.Envelope) error {
		id := envelope.ComputeID(raw)
		hm := metaOf(e, len(raw), flags, 0)
		iv.add(id, hm)
		if hm.tagged {
			iv.noteTag(e.Tag, id)
		}
		if e.Kind == envelope.KindReceipt {
			n.kept.add(secretKeyOf(e.Secret, e.Expiry), uint32(n.now().Unix())) // receipts.go
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to read envelopes: %w", err)
	}
	n.inv = iv
	return nil
}

// pruneInventory forgets expired envelopes (the store sweeps them itself).
func (n *Node) pruneInventory() {
	now := n.now()
	for id, hm := range n.inv.m {
		if !time.Unix(int64(hm.expiry), 0).After(now) {
			n.inv.remove(id)
		}
	}
}

// Watch registers fn to learn the IDs of envelopes newly held, right after
// they are stored (sent here, or arrived from anywhere). fn runs with the node
// locked: it must not block or call back into the node.
func (n *Node) Watch(fn func(ids []envelope.ID)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.watch = fn
}

// Inventory lists every envelope held, sorted by expiry then ID. The slice is
// shared and must not be modified; it stays valid after later changes.
func (n *Node) Inventory() []Held {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inv.list()
}

// Snapshot returns every envelope held as a Negentropy storage (timestamp =
// expiry) for a reconciliation. The storage is immutable and may be shared;
// it is made again only when what is held has changed.
func (n *Node) Snapshot() (*negentropy.Storage, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inv.snapshot()
}

// Holds reports whether the envelope is held here.
func (n *Node) Holds(id envelope.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.inv.m[id]
	return ok
}

// Redundant reports whether an arriving copy of an envelope would change
// nothing here: the envelope is held already with at least this hop budget.
// A link drops such copies before they cost a transaction; in a dense mesh
// most live-pushed copies are these.
func (n *Node) Redundant(id envelope.ID, hops uint8) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	hm, ok := n.inv.m[id]
	return ok && hm.hops >= hops
}

// Outgoing is an envelope leaving for a neighbour, or an offer of one.
type Outgoing struct {
	ID  envelope.ID
	Raw []byte // the envelope, hop budget decremented; nil for an offer
	// Copies is the spray-and-wait copy budget handed over with it; 0 means
	// unlimited (epidemic).
	Copies uint8
	// Tag is set for an offer (Raw nil): the envelope is down to its last
	// copy, so it goes only to the neighbour that claims it by its tag.
	Tag [envelope.TagSize]byte
	// Target is set for the offer of a receipt down to its last copy: it
	// goes only to a neighbour that holds the envelope it proves delivered.
	Target *envelope.ID
}

// Forward returns the envelopes with these IDs as they leave for a
// neighbour, hop budget decremented; envelopes no longer held, expired, or
// with no hops left are skipped. Routing happens here. An epidemic envelope
// always goes. A spray-and-wait envelope with c > 1 copies goes with c/2 of
// them and this node keeps the rest; one with its last copy goes only if
// claimed(id) says the neighbour claimed it after an offer, and comes back
// as an offer otherwise.
func (n *Node) Forward(ids []envelope.ID, claimed func(envelope.ID) bool) ([]Outgoing, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	out := make([]Outgoing, 0, len(ids))
	var kept [][]byte // records whose copies were split: rewritten below
	err := n.st.View(func(tx *store.Tx) error {
		for _, id := range ids {
			v, ok, err := n.record(tx, id)
			if err != nil {
				return err
			}
			if !ok || len(v) < 2 {
				continue
			}
			e, err := envelope.Parse(v[1:])
			if err != nil {
				return fmt.Errorf("corrupt stored envelope: %w", err)
			}
			if e.Hops == 0 || e.Expired(now) {
				continue
			}
			give := copiesOf(v[0])
			switch {
			case give == 1 && (claimed == nil || !claimed(id)):
				o := Outgoing{ID: id, Tag: e.Tag}
				if e.Kind == envelope.KindReceipt {
					o.Target = &e.Target
				}
				out = append(out, o)
				continue
			case give > 1:
				keep := give - give/2
				give /= 2
				kept = append(kept, append([]byte{withCopies(v[0], keep)}, v[1:]...))
			}
			cp := bytes.Clone(v[1:]) // record's slice is read-only
			envelope.SetHops(cp, nextHops(e.Hops))
			out = append(out, Outgoing{ID: id, Raw: cp, Copies: give})
		}
		return nil
	})
	if err == nil && len(kept) > 0 {
		err = n.update(func(tx *store.Tx) error {
			for _, v := range kept {
				if err := n.putEnvelope(tx, v[1:], v[0]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read envelopes to forward: %w", err)
	}
	return out, nil
}

// ReturnCopies gives back spray-and-wait copies handed to a neighbour over a
// link that ended before the neighbour acknowledged them (SPEC §12.7): each
// envelope still held with a copy budget takes its copies back (up to
// MaxCopies). It returns how many copies came back.
func (n *Node) ReturnCopies(ids []envelope.ID, copies []uint8) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	returned := 0
	err := n.update(func(tx *store.Tx) error {
		for i, id := range ids {
			v, ok, err := n.record(tx, id)
			if err != nil {
				return err
			}
			held := uint8(0)
			if ok && len(v) > 1 {
				held = copiesOf(v[0])
			}
			if held == 0 { // gone (delivered, expired) or unlimited
				continue
			}
			back := min(held+copies[i], MaxCopies)
			returned += int(back - held)
			if err := n.putEnvelope(tx, bytes.Clone(v[1:]), withCopies(v[0], back)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("failed to take copies back: %w", err)
	}
	return returned, nil
}

// ClaimReceipts answers a neighbour's offer of receipts down to their last
// copy (receipt IDs and the IDs of the envelopes they prove delivered, side
// by side): it returns the receipts whose envelope is held here, writer's
// copy or carried, and that are not held yet, so the neighbour hands them
// over and they purge it (SPEC §12.7).
func (n *Node) ClaimReceipts(ids, targets []envelope.ID) []envelope.ID {
	return n.claim(ids, func(i int) bool {
		hm, held := n.inv.m[targets[i]]
		return held && !hm.receipt
	})
}

// Claim answers a neighbour's offer of envelopes down to their last copy
// (IDs and tags side by side): it returns the IDs whose tags are this
// node's own and that it does not hold, so the neighbour hands them over.
// Claiming tells the neighbour which envelopes are mine (SPEC §12.7).
func (n *Node) Claim(ids []envelope.ID, tags [][envelope.TagSize]byte) []envelope.ID {
	return n.claim(ids, func(i int) bool {
		// Requests and re-keys always travel epidemically, never as an
		// offer: a tag from an invite seen on a poster must not let anyone
		// find its owner's node by offering it (SPEC §13).
		ref, mine := n.idx.lookup(tags[i])
		return mine && ref.kind == slotSession
	})
}

// claim returns the offered IDs not held here for which want(index) holds,
// with the node locked.
func (n *Node) claim(ids []envelope.ID, want func(i int) bool) []envelope.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []envelope.ID
	for i, id := range ids {
		if _, held := n.inv.m[id]; !held && want(i) {
			out = append(out, id)
		}
	}
	return out
}

// HeldBytes is the size of every envelope held, outbox included.
func (n *Node) HeldBytes() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inv.bytes
}

// SetRelayQuota sets how many bytes the node carries for others; 0 turns
// relaying off (only its own mail and receipts for it are kept). It lasts
// until the node closes (SaveSettings saves settings), and evicts nothing
// at once: the next arrival does (SaveSettings evicts at once).
func (n *Node) SetRelayQuota(q int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.set
	s.Relay = q > 0
	if q > 0 {
		s.RelayQuota = q
	}
	n.applySettings(s)
}

// IngestFrom is Ingest for envelopes handed over by a neighbour; source names
// it (an address) for fair eviction and is kept in memory only. When what is
// carried for others exceeds the quota, envelopes are evicted, always from
// the source holding the most.
//
// copies[i] is the spray-and-wait copy budget handed over with raws[i]
// (0: unlimited); copies may be nil when all are unlimited.
func (n *Node) IngestFrom(source string, raws [][]byte, copies []uint8) (IngestReport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.source = source
	rep, err := n.ingest(raws, copies)
	n.source = ""
	if err != nil {
		return rep, err
	}
	if err := n.enforceQuota(&rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// enforceQuota evicts down to 95% of the quota, so eviction runs in batches
// rather than on every arrival: chunks within the chunk quota and the rest
// within the relay quota, as two pools (victims).
func (n *Node) enforceQuota(rep *IngestReport) error {
	chunkQuota := n.chunkQuota()
	if n.inv.cost-n.inv.chunkCost <= n.quota && n.inv.chunkCost <= chunkQuota {
		return nil
	}
	target := func(q int64) int64 { return q - q/20 }
	victims := append(n.inv.victims(target(n.quota), false), n.inv.victims(target(chunkQuota), true)...)
	err := n.update(func(tx *store.Tx) error {
		for _, id := range victims {
			del := n.deleteEnvelope
			if n.inv.m[id].receipt {
				del = n.evictReceipt // its secret stays (receipts.go)
			}
			if err := del(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to evict envelopes over the relay and chunk quotas: %w", err)
	}
	rep.Evicted += len(victims)
	return nil
}

// Stats is what the node holds, for status displays.
type Stats struct {
	Queued        int   `json:"queued"`         // own envelopes (messages, requests, accepts) not yet known delivered
	QueuedBytes   int64 `json:"queued_bytes"`   //
	Receipts      int   `json:"receipts"`       // own receipts travelling back or waiting to leave
	Carried       int   `json:"carried"`        // envelopes and receipts held for others
	CarriedBytes  int64 `json:"carried_bytes"`  //
	RelayQuota    int64 `json:"relay_quota"`    // bytes
	StoreBytes    int64 `json:"store_bytes"`    // size of the store file
	CarriedFrom   int   `json:"carried_from"`   // distinct sources of carried envelopes since start
	EnvelopesHeld int   `json:"envelopes_held"` // all of the above
	// Clock says why the node does not trust the device's clock now, if it
	// does not (node.MaxClockJump); empty when all is well.
	Clock string `json:"clock,omitempty"`
}

// Stats counts what the node holds.
func (n *Node) Stats() (Stats, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Stats{RelayQuota: n.quota, CarriedBytes: n.inv.carried, CarriedFrom: len(n.inv.bySource), EnvelopesHeld: len(n.inv.m),
		Clock: n.clk.status()}
	for _, hm := range n.inv.m {
		switch {
		case !hm.own:
			s.Carried++
		case hm.receipt:
			s.Receipts++
		default:
			s.Queued++
			s.QueuedBytes += int64(hm.size)
		}
	}
	err := n.st.View(func(tx *store.Tx) error {
		waiting, err := tx.Count(colDelayed)
		s.Receipts += waiting
		return err
	})
	if err != nil {
		return s, err
	}
	size, err := n.st.FileSize()
	if err != nil && !errors.Is(err, store.ErrNotInitialized) {
		return s, err
	}
	s.StoreBytes = size
	return s, nil
}

// Describe returns what is known of the envelopes with these IDs that are
// held here, in the order given; the others are left out.
func (n *Node) Describe(ids []envelope.ID) []Held {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Held, 0, len(ids))
	for _, id := range ids {
		if hm, ok := n.inv.m[id]; ok {
			out = append(out, hm.held(id))
		}
	}
	return out
}

// MarkCarried records that these envelopes went out on a link: a queued
// message among them becomes "carried" (a neighbour took it), and an own
// file's chunk is counted in its message's progress the first time it
// leaves. Envelopes that are not this node's are ignored, and so is an own
// chunk counted before: a transaction for each batch of chunks sent again
// would cost the link a commit (an fsync) every 16 chunks.
func (n *Node) MarkCarried(ids []envelope.ID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var mine []envelope.ID
	for _, id := range ids {
		hm, ok := n.inv.m[id]
		if !ok || !hm.own || hm.receipt || hm.chunk && hm.carried {
			continue
		}
		if hm.chunk {
			hm.carried = true
			n.inv.m[id] = hm
		}
		mine = append(mine, id)
	}
	if len(mine) == 0 {
		return nil
	}
	n.events.noteCarried(mine) // events.go: how many links took each
	return n.update(func(tx *store.Tx) error {
		var chunks [][]byte
		for _, id := range mine {
			var m messageRecord
			key := []byte(id.String())
			exp, ok, err := getJSONExpiry(tx, colMessages, key, &m)
			if err != nil {
				return err
			}
			if !ok && n.inv.m[id].chunk {
				chunks = append(chunks, key)
			}
			if ok && m.Direction == "out" && m.Status == StatusQueued {
				m.Status = StatusCarried
				if err := putJSON(tx, colMessages, key, m, exp); err != nil {
					return err
				}
			}
		}
		return chunksCarried(tx, chunks) // attach.go: a file's progress
	})
}
