package node

import (
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// index maps every tag this node currently expects to where it belongs, so
// recognising one's own mail is one table lookup however many contacts
// there are. It holds, per session, the tags its Expected lists;
// keys.RekeySlots tags per period of the retention window per active
// contact, for re-key requests; and keys.IntroSlots tags per unexpired
// invite.
//
// Every node of a simulated city holds one, so it is laid out for size
// rather than as a map of tag to slotRef (about 115 bytes a tag, 58 tags a
// contact): each owner (a contact, a room, a file, an invite) keeps its
// tags in a dense array, with its session tags' sessions, epochs and
// counters as runs of consecutive counters, and an open-addressed table of
// 8-byte references (owner, position) finds a tag's entry: about 40 bytes
// a tag, 2.3 KB a contact in BenchmarkRecognise (8.0 KB as a map).
// The table shrinks when an owner leaves, so an invite's 256 tags, spent
// within minutes, leave no table their size behind.
type index struct {
	owners  []tagOwner           // by number; a removed owner's slot is zero and its number in free
	free    []uint32             // numbers of removed owners, for reuse
	byKey   map[string]uint32    // owner key (ownerContact, ownerPrekey, ...) → number
	table   []tagRef             // power-of-two size; linear probing; 0: empty
	used    int                  // table entries that are not empty
	seed    [2]uint64            // secret, so that no one can choose tags that collide in the table
	prekeys map[string]introKeys // by owner; nil while there are none (invites are spent within minutes)
}

// tagRef is an entry of index.table: the owner's number plus one in the
// high 32 bits, the tag's position among its tags in the low 32.
type tagRef uint64

func makeRef(owner uint32, pos int) tagRef { return tagRef(uint64(owner+1)<<32 | uint64(uint32(pos))) }
func (r tagRef) owner() uint32             { return uint32(r>>32) - 1 }
func (r tagRef) pos() int                  { return int(uint32(r)) }

// tagOwner is what one owner expects: the tags of runs are session tags,
// in runs of one session, epoch and consecutive counters (a session
// expects Window of them in a row), the tags after the last run are of
// kind.
type tagOwner struct {
	key      string
	kind     byte
	tags     [][16]byte
	runs     []slotRun
	sessions [][8]byte // the IDs slotRun.session indexes
}

// slotRun says what tags[previous run's end:end] are: counters counter,
// counter+1, ... of an epoch of a session.
type slotRun struct {
	epoch   uint64
	end     uint32
	counter uint32
	session uint16 // a contact has a session or two, and perhaps a proposal
	next    bool
}

// run returns the run tags[p] belongs to and where it starts, or nil.
func (o *tagOwner) run(p int) (*slotRun, int) {
	start := 0
	for i := range o.runs {
		if p < int(o.runs[i].end) {
			return &o.runs[i], start
		}
		start = int(o.runs[i].end)
	}
	return nil, 0
}

// addSlot appends a session tag to o, extending the last run if it can.
func (o *tagOwner) addSlot(session int, s keys.Slot) {
	p := len(o.tags)
	o.tags = append(o.tags, s.Tag)
	if k := len(o.runs) - 1; k >= 0 {
		last, start := &o.runs[k], 0
		if k > 0 {
			start = int(o.runs[k-1].end)
		}
		if last.session == uint16(session) && last.epoch == s.Epoch && last.next == s.Next &&
			int(last.end) == p && uint64(last.counter)+uint64(p-start) == uint64(s.Counter) {
			last.end++
			return
		}
	}
	o.runs = append(o.runs, slotRun{epoch: s.Epoch, end: uint32(p + 1), counter: s.Counter, session: uint16(session), next: s.Next})
}

// name is the owner a slotRef names: the fingerprint, group or message ID,
// or for an invite the owner key itself.
func (o *tagOwner) name() string {
	if o.kind == slotIntro {
		return o.key
	}
	return o.key[1:]
}

// minTable is the smallest table made. Tables are kept at load 1/2 or
// less (tableSize): most tags looked up are not ours (envelopes carried
// for others), and a miss probes until an empty entry, about 2.5 entries
// at that load.
const minTable = 16

// Kinds of slot.
const (
	slotSession = 'c' // an envelope of a session with a contact
	slotIntro   = 'p' // a contact request sent to one of my invites
	slotRekey   = 'r' // a re-key request from a contact
	slotRoom    = 'g' // a message of a group I am in (owner: the group ID in hex)
	slotChunk   = 'f' // a chunk of a file I am fetching (owner: the message's ID)
)

type slotRef struct {
	kind    byte
	next    bool
	counter uint32
	session [8]byte
	epoch   uint64
	owner   string // the contact's fingerprint, or ownerPrekey
}

func (r slotRef) slot(tag [16]byte) keys.Slot {
	return keys.Slot{Epoch: r.epoch, Next: r.next, Counter: r.counter, Tag: tag}
}

type introKeys struct {
	prekey [32]byte
	secret [16]byte
}

func ownerContact(fp string) string   { return "c" + fp }
func ownerPrekey(pub [32]byte) string { return "p" + hex.EncodeToString(pub[:]) }
func ownerRoom(id string) string      { return "g" + id }
func ownerFile(id string) string      { return "f" + id }

func newIndex() *index {
	return &index{byKey: map[string]uint32{}, seed: [2]uint64{rand.Uint64(), rand.Uint64()}}
}

func (ix *index) lookup(tag [16]byte) (slotRef, bool) {
	i, ok := ix.find(tag)
	if !ok {
		return slotRef{}, false
	}
	ref := ix.table[i]
	o := &ix.owners[ref.owner()]
	r := slotRef{kind: o.kind, owner: o.name()}
	if s, start := o.run(ref.pos()); s != nil {
		r.kind, r.session, r.epoch, r.counter, r.next = slotSession, o.sessions[s.session], s.epoch, s.counter+uint32(ref.pos()-start), s.next
	}
	return r, true
}

// len is how many tags the index recognises.
func (ix *index) len() int { return ix.used }

func (ix *index) tagOf(ref tagRef) *[16]byte { return &ix.owners[ref.owner()].tags[ref.pos()] }

// home is where probing for tag starts: a keyed hash of it, the mixing
// step of wyhash (as Go's maps use where AES is missing).
func (ix *index) home(tag *[16]byte) int {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(tag[:8])^ix.seed[0], binary.LittleEndian.Uint64(tag[8:])^ix.seed[1])
	return int((hi ^ lo) & uint64(len(ix.table)-1))
}

// find returns the table entry of tag, or where it would go and false.
func (ix *index) find(tag [16]byte) (int, bool) {
	if len(ix.table) == 0 {
		return 0, false
	}
	mask := len(ix.table) - 1
	for i := ix.home(&tag); ; i = (i + 1) & mask {
		ref := ix.table[i]
		if ref == 0 {
			return i, false
		}
		if *ix.tagOf(ref) == tag {
			return i, true
		}
	}
}

// set replaces the owner o.key's tags with o's. A tag another owner
// expects too (two 128-bit tags alike: only by design, never by chance)
// goes to the owner set last, as it did in a map.
func (ix *index) set(o tagOwner) {
	ix.drop(o.key)
	defer ix.shrink()
	if len(o.tags) == 0 {
		return
	}
	var num uint32
	if k := len(ix.free); k > 0 {
		num, ix.free = ix.free[k-1], ix.free[:k-1]
		ix.owners[num] = o
	} else {
		num = uint32(len(ix.owners))
		ix.owners = append(ix.owners, o)
	}
	ix.byKey[o.key] = num
	ix.resize(ix.used + len(o.tags))
	for p := range o.tags {
		i, found := ix.find(o.tags[p])
		if !found {
			ix.used++
		}
		ix.table[i] = makeRef(num, p)
	}
}

func (ix *index) removeOwner(key string) {
	ix.drop(key)
	ix.shrink()
}

// shrink gives back the room of tags gone (an invite spent, a contact
// removed), to load 1/2 at most: the next tag does not grow it back.
func (ix *index) shrink() {
	if len(ix.table) > minTable && ix.used < len(ix.table)/4 {
		ix.rehash(tableSize(ix.used))
	}
}

// drop forgets the owner key's tags, leaving the table its size.
func (ix *index) drop(key string) {
	if delete(ix.prekeys, key); len(ix.prekeys) == 0 {
		ix.prekeys = nil
	}
	num, ok := ix.byKey[key]
	if !ok {
		return
	}
	for _, t := range ix.owners[num].tags {
		if i, ok := ix.find(t); ok && ix.table[i].owner() == num { // a colliding tag of another owner stays
			ix.deleteAt(i)
		}
	}
	delete(ix.byKey, key)
	ix.owners[num] = tagOwner{}
	ix.free = append(ix.free, num)
	if len(ix.free) == len(ix.owners) {
		ix.owners, ix.free = nil, nil
	}
}

// deleteAt empties table entry i and moves up the entries after it that
// probing would no longer reach (backward-shift deletion: no tombstones).
func (ix *index) deleteAt(i int) {
	mask := len(ix.table) - 1
	for j := (i + 1) & mask; ix.table[j] != 0; j = (j + 1) & mask {
		h := ix.home(ix.tagOf(ix.table[j]))
		// Entry j may fill the hole at i if its home is not in (i, j].
		if (j-h)&mask >= (j-i)&mask {
			ix.table[i] = ix.table[j]
			i = j
		}
	}
	ix.table[i] = 0
	ix.used--
}

// tableSize is the smallest table that holds n tags at load 1/2 or less.
func tableSize(n int) int {
	size := minTable
	for size < 2*n {
		size *= 2
	}
	return size
}

// resize grows the table, if need be, to hold n tags.
func (ix *index) resize(n int) {
	if 2*n > len(ix.table) {
		ix.rehash(tableSize(n))
	}
}

func (ix *index) rehash(size int) {
	old := ix.table
	ix.table = make([]tagRef, size)
	mask := size - 1
	for _, ref := range old {
		if ref == 0 {
			continue
		}
		i := ix.home(ix.tagOf(ref))
		for ix.table[i] != 0 {
			i = (i + 1) & mask
		}
		ix.table[i] = ref
	}
}

// setFile expects the chunks of a file I am fetching (SPEC §16.10).
func (ix *index) setFile(id string, ks *attach.Keys, chunks int) {
	o := tagOwner{key: ownerFile(id), kind: slotChunk, tags: make([][16]byte, chunks)}
	for i := range chunks {
		o.tags[i] = ks.Tag(i)
	}
	ix.set(o)
}

// setRoom replaces a room's expected tags (SPEC §15.6).
func (ix *index) setRoom(id string, r *room.Room) {
	ix.set(tagOwner{key: ownerRoom(id), kind: slotRoom, tags: r.Expected()})
}

func (ix *index) addPrekey(pub [32]byte, secret [16]byte) {
	owner := ownerPrekey(pub)
	if _, ok := ix.byKey[owner]; ok {
		return
	}
	ix.set(tagOwner{key: owner, kind: slotIntro, tags: keys.IntroTags(secret)})
	if ix.prekeys == nil {
		ix.prekeys = map[string]introKeys{}
	}
	ix.prekeys[owner] = introKeys{prekey: pub, secret: secret}
}

// setContact replaces a contact's expected tags for periods [from, to].
func (ix *index) setContact(c *contactRecord, from, to keys.Period) {
	sessions := c.Sessions
	if c.Proposal != nil {
		sessions = append(sessions[:len(sessions):len(sessions)], c.Proposal)
	}
	expected := make([][]keys.Slot, len(sessions))
	n := 0
	for i, ps := range sessions {
		expected[i] = ps.S.Expected()
		n += len(expected[i])
	}
	rekey := 0
	if c.State == StateActive && from <= to {
		rekey = int(to-from+1) * keys.RekeySlots
	}
	o := tagOwner{key: ownerContact(c.Fingerprint), kind: slotRekey, tags: make([][16]byte, 0, n+rekey),
		sessions: make([][8]byte, len(sessions))}
	for i, ps := range sessions {
		o.sessions[i] = ps.S.ID
		for _, s := range expected[i] {
			o.addSlot(i, s)
		}
	}
	if rekey > 0 {
		for p := from; p <= to; p++ {
			for slot := range uint16(keys.RekeySlots) {
				o.tags = append(o.tags, keys.RekeyTag(c.RekeyBase, c.public(), p, slot))
			}
		}
	}
	ix.set(o)
}

// window is the range of periods whose tags are expected now: the retention
// window, plus the next period for senders whose clocks run ahead.
func (n *Node) window() (from, to keys.Period) {
	return n.oldestPeriod(), keys.PeriodOf(n.now()) + 1
}

func (n *Node) rebuildIndex() error {
	ix := newIndex()
	from, to := n.window()
	err := n.st.View(func(tx *store.Tx) error {
		cs, err := allContacts(tx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			ix.setContact(c, from, to)
		}
		if err := n.eachRoom(tx, func(id string, r *room.Room) { ix.setRoom(id, r) }); err != nil {
			return err
		}
		if err := n.indexFiles(tx, ix); err != nil { // transfer.go
			return err
		}
		return tx.ForEach(colPrekeys, func(v []byte, _ time.Time) error {
			var r prekeyRecord
			if err := jsonUnmarshal(v, &r); err != nil {
				return err
			}
			pk, err := r.prekey()
			if err != nil {
				return err
			}
			ix.addPrekey(pk.Pub(), r.Secret)
			return nil
		})
	})
	if err != nil {
		return err
	}
	n.idx = ix
	n.idxWindow = [2]keys.Period{from, to}
	n.recog = nil
	return nil
}

// rebuildIndexQuietly restores the index after a failed transaction that may
// have changed it; a failure here only logs, the next Open rebuilds anyway.
func (n *Node) rebuildIndexQuietly() {
	if err := n.rebuildIndex(); err != nil {
		n.log.Warn("failed to rebuild tag index", "err", err)
	}
}

// reindex refreshes one contact's expected tags after its sessions changed.
func (n *Node) reindex(c *contactRecord) {
	from, to := n.window()
	n.idx.setContact(c, from, to)
	if n.recog != nil && !n.recog.refresh(c) {
		n.recog = nil
	}
}
