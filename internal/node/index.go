package node

import (
	"encoding/hex"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// index maps every tag this node currently expects to where it belongs, so
// recognising one's own mail is one map lookup however many contacts there
// are. It holds, per session, the tags its Expected lists; keys.RekeySlots
// tags per period of the retention window per active contact, for re-key
// requests; and keys.IntroSlots tags per unexpired invite.
type index struct {
	slots map[[16]byte]slotRef
	// intros maps the tags of unspent invites to their owner (ownerPrekey),
	// apart from slots and nil while there are none: an invite brings 256
	// tags and is spent within minutes, and a Go map never shrinks, so in
	// slots they would leave every node that ever made an invite holding a
	// table twice the size its contacts need (2,000 simulated nodes after
	// setup: 79 MB of index, 40 MB with intros apart).
	intros  map[[16]byte]string
	owned   map[string][][16]byte
	prekeys map[string]introKeys // by owner
}

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

func newIndex() *index {
	return &index{slots: map[[16]byte]slotRef{}, owned: map[string][][16]byte{}, prekeys: map[string]introKeys{}}
}

func (ix *index) lookup(tag [16]byte) (slotRef, bool) {
	if r, ok := ix.slots[tag]; ok {
		return r, true
	}
	if owner, ok := ix.intros[tag]; ok {
		return slotRef{kind: slotIntro, owner: owner}, true
	}
	return slotRef{}, false
}

func ownerRoom(id string) string { return "g" + id }
func ownerFile(id string) string { return "f" + id }

// setFile expects the chunks of a file I am fetching (SPEC §16.10).
func (ix *index) setFile(id string, ks *attach.Keys, chunks int) {
	owner := ownerFile(id)
	ix.removeOwner(owner)
	for i := range chunks {
		ix.add(owner, ks.Tag(i), slotRef{kind: slotChunk, owner: id})
	}
}

func (r slotRef) ownerKey() string {
	switch r.kind {
	case slotIntro:
		return r.owner
	case slotRoom:
		return ownerRoom(r.owner)
	case slotChunk:
		return ownerFile(r.owner)
	}
	return ownerContact(r.owner)
}

// setRoom replaces a room's expected tags (SPEC §15.6).
func (ix *index) setRoom(id string, r *room.Room) {
	owner := ownerRoom(id)
	ix.removeOwner(owner)
	for _, t := range r.Expected() {
		ix.add(owner, t, slotRef{kind: slotRoom, owner: id})
	}
}

func (ix *index) removeOwner(owner string) {
	for _, t := range ix.owned[owner] {
		if r, ok := ix.slots[t]; ok && r.ownerKey() == owner { // a colliding tag of another owner stays
			delete(ix.slots, t)
		}
		if ix.intros[t] == owner {
			delete(ix.intros, t)
		}
	}
	delete(ix.owned, owner)
	delete(ix.prekeys, owner)
	if len(ix.intros) == 0 {
		ix.intros = nil
	}
}

func (ix *index) add(owner string, tag [16]byte, ref slotRef) {
	ix.slots[tag] = ref
	ix.owned[owner] = append(ix.owned[owner], tag)
}

func (ix *index) addPrekey(pub [32]byte, secret [16]byte) {
	owner := ownerPrekey(pub)
	if _, ok := ix.owned[owner]; ok {
		return
	}
	tags := keys.IntroTags(secret)
	if ix.intros == nil {
		ix.intros = make(map[[16]byte]string, len(tags))
	}
	for _, t := range tags {
		ix.intros[t] = owner
	}
	ix.owned[owner] = tags
	ix.prekeys[owner] = introKeys{prekey: pub, secret: secret}
}

// setContact replaces a contact's expected tags for periods [from, to].
func (ix *index) setContact(c *contactRecord, from, to keys.Period) {
	owner := ownerContact(c.Fingerprint)
	ix.removeOwner(owner)
	sessions := c.Sessions
	if c.Proposal != nil {
		sessions = append(sessions[:len(sessions):len(sessions)], c.Proposal)
	}
	for _, ps := range sessions {
		for _, s := range ps.S.Expected() {
			ix.add(owner, s.Tag, slotRef{kind: slotSession, owner: c.Fingerprint, session: ps.S.ID,
				next: s.Next, epoch: s.Epoch, counter: s.Counter})
		}
	}
	if c.State == StateActive {
		for p := from; p <= to; p++ {
			for slot := range uint16(keys.RekeySlots) {
				ix.add(owner, keys.RekeyTag(c.RekeyBase, c.public(), p, slot), slotRef{kind: slotRekey, owner: c.Fingerprint})
			}
		}
	}
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
	n.recog = nil
}
