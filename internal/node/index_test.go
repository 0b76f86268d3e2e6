package node

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// TestIndexDropsSpentInvites: an invite's tags are recognised while it is
// open, and once it is spent the index keeps nothing of them — no map the
// size of 256 tags (a Go map never shrinks).
func TestIndexDropsSpentInvites(t *testing.T) {
	ix := newIndex()
	var pub [32]byte
	var secret [keys.SecretSize]byte
	pub[0], secret[0] = 1, 2
	ix.addPrekey(pub, secret)
	tags := keys.IntroTags(secret)
	ref, ok := ix.lookup(tags[17])
	if !ok || ref.kind != slotIntro || ref.owner != ownerPrekey(pub) {
		t.Fatalf("an open invite's tag: %+v, %v", ref, ok)
	}
	if _, ok := ix.prekeys[ownerPrekey(pub)]; !ok {
		t.Fatal("the invite's keys are not kept")
	}
	ix.removeOwner(ownerPrekey(pub))
	if _, ok := ix.lookup(tags[17]); ok {
		t.Error("a spent invite's tag is still recognised")
	}
	if ix.len() != 0 || len(ix.table) > minTable || len(ix.byKey) != 0 || len(ix.owners) != 0 || ix.prekeys != nil {
		t.Errorf("a spent invite left %d tags in a table of %d, %d owners (%d numbered), keys kept: %v", ix.len(), len(ix.table), len(ix.byKey), len(ix.owners), ix.prekeys != nil)
	}
}

// TestIndexAgainstMap runs thousands of random changes — owners set with
// new tags, replaced, removed; tags two owners share; tags alike in their
// first 8 bytes — and checks after each that the index recognises exactly
// what a plain map of tag to owner would: the owner set last wins a shared
// tag, and removing an owner leaves another's tags alone. The table grows
// and shrinks all the while, and deletions move entries along their probe
// chains.
func TestIndexAgainstMap(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	ix := newIndex()
	want := map[[16]byte]string{}    // tag → owner key
	owned := map[string][][16]byte{} // owner key → its tags
	tag := func() [16]byte {
		var t [16]byte
		// A small universe of first halves, so that many tags agree in
		// their first 8 bytes, and of second halves, so that owners share.
		binary.LittleEndian.PutUint64(t[:8], rnd.Uint64N(64))
		binary.LittleEndian.PutUint64(t[8:], rnd.Uint64N(512))
		return t
	}
	remove := func(key string) {
		for _, tg := range owned[key] {
			if want[tg] == key {
				delete(want, tg)
			}
		}
		delete(owned, key)
		ix.removeOwner(key)
	}
	peak := 0
	for step := range 4000 {
		key := ownerRoom(fmt.Sprint(rnd.IntN(40)))
		switch {
		case rnd.IntN(3) == 0:
			remove(key)
		default:
			tags := make([][16]byte, rnd.IntN(80))
			for i := range tags {
				tags[i] = tag()
			}
			remove(key)
			ix.set(tagOwner{key: key, kind: slotRoom, tags: tags})
			owned[key] = tags
			for _, tg := range tags {
				want[tg] = key
			}
		}
		if ix.len() != len(want) {
			t.Fatalf("step %d: the index holds %d tags, want %d", step, ix.len(), len(want))
		}
		if 2*ix.len() > len(ix.table) || len(ix.table) > minTable && 4*ix.len() < len(ix.table) {
			t.Fatalf("step %d: %d tags in a table of %d", step, ix.len(), len(ix.table))
		}
		peak = max(peak, len(ix.table))
		for _, tags := range owned {
			for _, tg := range tags {
				r, ok := ix.lookup(tg)
				if w, held := want[tg]; ok != held || ok && ownerRoom(r.owner) != w {
					t.Fatalf("step %d: tag %x found %v as %q, want %v as %q", step, tg, ok, r.owner, held, w)
				}
			}
		}
		for range 20 {
			if tg := tag(); want[tg] == "" {
				if _, ok := ix.lookup(tg); ok {
					t.Fatalf("step %d: tag %x of no one found", step, tg)
				}
			}
		}
	}
	for key := range owned {
		remove(key)
	}
	if ix.len() != 0 || len(ix.table) > minTable || len(ix.owners) != 0 || len(ix.free) != 0 {
		t.Errorf("all owners removed: %d tags, table of %d (peak %d), %d owners numbered", ix.len(), len(ix.table), peak, len(ix.owners))
	}
}

// TestIndexSessionSlots: a contact's tags say which session, epoch and
// counter they are (its proposal's too), its re-key tags are of kind
// slotRekey, and replacing the contact forgets the tags it no longer has.
func TestIndexSessionSlots(t *testing.T) {
	const now = 20413
	self, _ := keys.NewIdentity("Me", crand.Reader)
	mine, _, peer := conversation(t, self, now-8)
	next, _, _ := conversation(t, self, now-8)
	base, _ := keys.RekeyBase(self, peer)
	c := &contactRecord{Fingerprint: "alice", State: StateActive, RekeyBase: base, Sign: peer.Sign, DH: peer.DH[:],
		Sessions: []*peerSession{{S: mine}}, Proposal: &peerSession{S: next}}
	ix := newIndex()
	ix.setContact(c, now-8, now+1)
	for _, ps := range []*peerSession{{S: mine}, c.Proposal} {
		for _, s := range ps.S.Expected() {
			r, ok := ix.lookup(s.Tag)
			if !ok || r.kind != slotSession || r.owner != "alice" || r.session != ps.S.ID || r.slot(s.Tag) != s {
				t.Fatalf("session tag %x: %+v, %v; want session %x slot %+v", s.Tag, r, ok, ps.S.ID, s)
			}
		}
	}
	rekey := keys.RekeyTag(base, c.public(), now, 0)
	if r, ok := ix.lookup(rekey); !ok || r.kind != slotRekey || r.owner != "alice" {
		t.Fatalf("re-key tag: %+v, %v", r, ok)
	}
	c.Proposal, c.State = nil, StatePending
	ix.setContact(c, now-8, now+1)
	if _, ok := ix.lookup(rekey); ok {
		t.Error("a contact no longer active: its re-key tag is still recognised")
	}
	for _, s := range next.Expected() {
		if _, ok := ix.lookup(s.Tag); ok {
			t.Fatal("a dropped proposal's tag is still recognised")
		}
	}
	if want := len(mine.Expected()); ix.len() != want {
		t.Errorf("%d tags, want the session's %d", ix.len(), want)
	}
}

// TestIndexSlotRuns: session tags are kept in runs of consecutive counters;
// whatever the order of the slots — runs broken by a skipped counter, a
// new epoch, the next epoch, another session — each tag says its own slot.
func TestIndexSlotRuns(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	o := tagOwner{key: ownerContact("bob"), kind: slotRekey, sessions: [][8]byte{{1}, {2}, {3}}}
	var want []keys.Slot
	var sessions []int
	s := keys.Slot{Epoch: 7, Counter: 100}
	for i := range 500 {
		switch rnd.IntN(8) {
		case 0:
			s.Counter += uint32(rnd.IntN(3)) // a gap, or the same counter again
		case 1:
			s.Epoch++
		case 2:
			s.Next = !s.Next
		case 3:
			s.Counter = ^uint32(0) - uint32(rnd.IntN(2)) // wraps next
		default:
			s.Counter++
		}
		binary.LittleEndian.PutUint64(s.Tag[:], uint64(i)+1)
		session := min(i/200, 2)
		o.addSlot(session, s)
		want, sessions = append(want, s), append(sessions, session)
	}
	rekey := [16]byte{15: 0xff}
	o.tags = append(o.tags, rekey)
	ix := newIndex()
	ix.set(o)
	if len(o.runs) > len(want)/2 {
		t.Errorf("%d runs for %d slots", len(o.runs), len(want))
	}
	for i, s := range want {
		r, ok := ix.lookup(s.Tag)
		if !ok || r.kind != slotSession || r.owner != "bob" || r.session != o.sessions[sessions[i]] || r.slot(s.Tag) != s {
			t.Fatalf("slot %d: %+v, %v; want %+v of session %d", i, r, ok, s, sessions[i])
		}
	}
	if r, ok := ix.lookup(rekey); !ok || r.kind != slotRekey {
		t.Errorf("the tag after the runs: %+v, %v", r, ok)
	}
}

// TestExpiredInviteLeavesTheIndex: maintenance leaves the tag index alone
// while nothing in it can have changed (rebuilding it reads every contact,
// on every node, every few minutes), but an invite whose prekey has expired
// must stop being expected: a request through it would otherwise be
// recognised, though the key to open it is gone.
func TestExpiredInviteLeavesTheIndex(t *testing.T) {
	clk := newTestClock()
	cfg := DefaultConfig
	cfg.InviteLifetime = 2 * time.Hour
	n, err := InitMemory("Alice", cfg, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	inv, err := n.Invite()
	if err != nil {
		t.Fatal(err)
	}
	expected := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		_, ok := n.idx.prekeys[ownerPrekey(inv.Prekey)]
		return ok
	}
	if err := n.Maintain(); err != nil {
		t.Fatal(err)
	}
	built := n.idx
	clk.Advance(time.Hour)
	if err := n.Maintain(); err != nil {
		t.Fatal(err)
	}
	if n.idx != built || !expected() {
		t.Fatalf("the index was rebuilt (%v) or lost the live invite (expected: %v)", n.idx != built, expected())
	}
	// Past the prekey's expiry, on the same day: a new period (midnight)
	// rebuilds the index anyway, and would hide a node that never looks.
	for range 2 {
		clk.Advance(time.Hour)
		if err := n.Maintain(); err != nil {
			t.Fatal(err)
		}
		if !expected() {
			return
		}
	}
	t.Fatal("an expired invite is still expected an hour on")
}
