package node

import (
	"encoding/hex"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// index maps every tag this node currently expects to where it belongs, so
// recognising one's own mail is one map lookup however many contacts there
// are. It holds, per receive chain, keys.Window tags for each period in the
// retention window, and keys.IntroSlots tags per unexpired invite.
type index struct {
	slots   map[[16]byte]slotRef
	owned   map[string][][16]byte
	prekeys map[string]introKeys // by owner
}

type slotRef struct {
	owner   string // ownerContact(fp) or ownerPrekey(pub)
	chain   uint32
	period  uint32
	counter uint32
}

type introKeys struct {
	prekey [32]byte
	secret [16]byte
}

func (r slotRef) intro() bool { return r.owner[0] == 'p' }

func ownerContact(fp string) string   { return "c" + fp }
func ownerPrekey(pub [32]byte) string { return "p" + hex.EncodeToString(pub[:]) }

func newIndex() *index {
	return &index{slots: map[[16]byte]slotRef{}, owned: map[string][][16]byte{}, prekeys: map[string]introKeys{}}
}

func (ix *index) lookup(tag [16]byte) (slotRef, bool) {
	r, ok := ix.slots[tag]
	return r, ok
}

func (ix *index) removeOwner(owner string) {
	for _, t := range ix.owned[owner] {
		if ix.slots[t].owner == owner {
			delete(ix.slots, t)
		}
	}
	delete(ix.owned, owner)
	delete(ix.prekeys, owner)
}

func (ix *index) addPrekey(pub [32]byte, secret [16]byte) {
	owner := ownerPrekey(pub)
	if _, ok := ix.owned[owner]; ok {
		return
	}
	tags := make([][16]byte, 0, keys.IntroSlots)
	for s := range uint16(keys.IntroSlots) {
		t := keys.IntroTag(secret, s)
		ix.slots[t] = slotRef{owner: owner}
		tags = append(tags, t)
	}
	ix.owned[owner] = tags
	ix.prekeys[owner] = introKeys{prekey: pub, secret: secret}
}

// setContact replaces a contact's expected tags for periods [from, to].
func (ix *index) setContact(c *contactRecord, from, to uint32) {
	owner := ownerContact(c.Fingerprint)
	ix.removeOwner(owner)
	var tags [][16]byte
	for i := range c.Recv {
		for _, s := range c.Recv[i].Expected(from, to) {
			ix.slots[s.Tag] = slotRef{owner: owner, chain: uint32(i), period: s.Period, counter: s.Counter}
			tags = append(tags, s.Tag)
		}
	}
	ix.owned[owner] = tags
}

// window is the range of periods whose tags are expected now: the retention
// window, plus the next period for senders whose clocks run ahead.
func (n *Node) window() (from, to uint32) {
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
	n.idxWindow = [2]uint32{from, to}
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

// reindex refreshes one contact's expected tags after its chains changed.
func (n *Node) reindex(c *contactRecord) {
	from, to := n.window()
	n.idx.setContact(c, from, to)
	n.recog = nil
}
