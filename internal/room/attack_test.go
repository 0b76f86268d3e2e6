package room

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestRemovedMemberOpensNothingAfter: Dave is removed; he still holds every
// envelope sent afterwards (a relay gives them to him) and every key he
// ever had. He recognises none, and no key his old epochs can still derive
// — any sender's chain up to 200 counters on, in any period of the window —
// opens any of them.
func TestRemovedMemberOpensNothingAfter(t *testing.T) {
	g := newGroup(t, "removal", "Alice", "Bob", "Carol", "Dave")
	alice, dave := g.by("Alice"), g.by("Dave")
	before := seal(t, g, g.by("Bob"), "before")
	mustOpen(t, dave, before, "before")
	h := g.commit(t, alice, &Change{Kind: KindRemove, Target: dave.ed()})
	g.welcome(t, alice, h, dave)
	// Dave even learns the removal itself, with its signed change.
	c, _ := alice.room.Change(h)
	if _, err := dave.room.Add(c.Marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.room.Seal(p0, text("still here?"), expiry, 12, g.rand); err == nil {
		t.Fatal("a removed member sealed in the new epoch")
	}
	// Alice's welcome for the new epoch is refused by Dave: he is not in it.
	w, _ := alice.room.Welcome(h, false)
	wantErr(t, dave.room.AcceptWelcome(w, alice.ed()), ErrNotMember)

	var after []*envelope.Envelope
	for _, p := range []*person{alice, g.by("Bob"), g.by("Carol")} {
		for i := range 3 {
			after = append(after, seal(t, g, p, "after "+string(rune('0'+i))))
		}
	}
	for _, e := range after {
		if _, err := dave.room.Open(e, p0); err == nil {
			t.Fatal("Dave opened a message sent after his removal")
		}
		if dave.room.Recognises(e.Tag) {
			t.Fatal("Dave recognises a tag of the epoch after his removal")
		}
	}
	// Brute force with every chain Dave can still derive.
	tried := 0
	for _, ep := range dave.room.epochs {
		for _, sd := range ep.senders {
			c := sd.ch
			for range 200 {
				ck, tag := c.step()
				for p := p0 - 1; p <= p0+1; p++ {
					pk, ok := ep.periods.At(p)
					if !ok {
						continue
					}
					for _, e := range after {
						if tag == e.Tag {
							t.Fatal("a derivable tag matches")
						}
						key := messageKeys(ck, pk, e.Body[:saltSize])
						if _, err := envelope.Open(key, e, prefixSize); err == nil {
							t.Fatal("a derivable key opens a message sent after the removal")
						}
						tried++
					}
				}
			}
		}
	}
	if tried == 0 {
		t.Fatal("the brute force tried nothing")
	}
	// The others still read each other.
	mustOpen(t, g.by("Carol"), after[0], "after 0")
}

func TestForgedChangesAreRefused(t *testing.T) {
	g := newGroup(t, "forged", "Alice", "Bob", "Carol")
	alice, bob, carol := g.by("Alice"), g.by("Bob"), g.by("Carol")
	head := alice.room.Head()
	next := func(c *Change, signer ed25519.PrivateKey) []byte {
		c.Group, c.Epoch, c.Parent, c.Start = head.Group, head.Epoch+1, head.Hash, p0
		c.Sign(signer)
		return c.Marshal()
	}
	mallory := newPerson(t, "Mallory")
	mrk, _ := NewRoomKey(g.rand)
	mm := NewMember(mallory.id, head.Group, mrk.Public().(ed25519.PublicKey))

	// A member who is not an admin adds someone.
	_, err := carol.room.Add(next(&Change{Kind: KindAdd, Member: mm}, bob.rk))
	wantErr(t, err, ErrNotAdmin)
	// An outsider with a room key of its own.
	_, err = carol.room.Add(next(&Change{Kind: KindAdd, Member: mm}, mrk))
	wantErr(t, err, ErrNotAdmin)
	// The admin's change with a bit flipped in its payload.
	b := next(&Change{Kind: KindRename, Name: "Renamed"}, alice.rk)
	b[len(b)-70] ^= 1
	_, err = carol.room.Add(b)
	wantErr(t, err, ErrSignature)
	// An add whose join statement the member never signed: the admin binds
	// someone's identity to a room key the admin holds.
	fake := mm
	adminHeld, _ := NewRoomKey(g.rand)
	fake.Key = [32]byte(adminHeld.Public().(ed25519.PublicKey))
	_, err = carol.room.Add(next(&Change{Kind: KindAdd, Member: fake}, alice.rk))
	wantErr(t, err, ErrSignature)
	// A wrong parent: the right hash with the wrong epoch number.
	c := &Change{Kind: KindRename, Name: "Skip", Group: head.Group, Epoch: head.Epoch + 2, Parent: head.Hash, Start: p0}
	c.Sign(alice.rk)
	_, err = carol.room.Add(c.Marshal())
	wantErr(t, err, ErrParent)
	// Another group's change.
	other := newGroup(t, "other", "Alice")
	oc := &Change{Kind: KindRename, Name: "Other"}
	if _, err := other.people[0].room.Commit(oc, p0, other.rand); err != nil {
		t.Fatal(err)
	}
	_, err = carol.room.Add(oc.Marshal())
	wantErr(t, err, ErrOtherRoom)
	// A leave Carol never signed; the last admin leaving; removing the owner.
	_, err = carol.room.Add(next(&Change{Kind: KindLeave, Target: carol.ed(), Leave: LeaveStatement(bob.rk, head.Group)}, alice.rk))
	wantErr(t, err, ErrSignature)
	_, err = carol.room.Add(next(&Change{Kind: KindLeave, Target: alice.ed(), Leave: LeaveStatement(alice.rk, head.Group)}, alice.rk))
	wantErr(t, err, ErrInvalid)
	// A second create.
	_, err = carol.room.Add(carol.room.changes[carol.room.Genesis].Marshal())
	wantErr(t, err, ErrDuplicate)
	if carol.room.Head().Hash != head.Hash {
		t.Fatal("a refused change moved the head")
	}

	// Bob becomes an admin; he still cannot remove the owner.
	h := g.commit(t, alice, &Change{Kind: KindAdmin, Target: bob.ed()})
	g.welcome(t, alice, h)
	head = alice.room.Head()
	_, err = carol.room.Add(next(&Change{Kind: KindRemove, Target: alice.ed()}, bob.rk))
	wantErr(t, err, ErrInvalid)

	// A replayed old change: known, refused, nothing moves.
	old, _ := alice.room.Change(h)
	_, err = carol.room.Add(old.Marshal())
	wantErr(t, err, ErrDuplicate)
	// Replayed after a later change it would otherwise follow: same bytes,
	// same epoch, still a duplicate.
	h2 := g.commit(t, alice, &Change{Kind: KindRename, Name: "Later"})
	g.welcome(t, alice, h2)
	_, err = carol.room.Add(old.Marshal())
	wantErr(t, err, ErrDuplicate)
	if carol.room.Head().Hash != h2 {
		t.Fatal("Carol is not at the latest epoch")
	}

	// A welcome secret from someone other than the change's signer.
	w, _ := alice.room.Welcome(h2, false)
	w.Secret[0] ^= 1
	carolCopy := newGroupMemberCopy(t, g, carol)
	wantErr(t, carolCopy.AcceptWelcome(w, bob.ed()), ErrInvalid)
	if _, ok := carolCopy.Epoch(h2); ok {
		t.Fatal("a refused secret was kept")
	}
	w.Secret[0] ^= 1
	if err := carolCopy.AcceptWelcome(w, alice.ed()); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, &person{name: "Carol's copy", room: carolCopy}, seal(t, g, bob, "to the copy"), "to the copy")
}

// newGroupMemberCopy rebuilds a member's room from the full history,
// without the newest epoch's secret.
func newGroupMemberCopy(t *testing.T, g *group, p *person) *Room {
	t.Helper()
	r, err := open(p.room.changes[p.room.Genesis], p.ed(), p.rk)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.room.Chain()[1:] {
		c, _ := p.room.Change(h)
		if _, err := r.Add(c.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// TestForgedSenderIsRefused: Bob holds every member's chain keys in the
// epoch (they come from the epoch secret), so he can seal under Carol's
// next tag — but not sign with Carol's room key. Alice refuses the forgery
// and the attempt does not burn Carol's counter: her genuine envelope
// with that tag still opens. An edited copy of a genuine envelope fails
// the same way.
func TestForgedSenderIsRefused(t *testing.T) {
	g := newGroup(t, "sender", "Alice", "Bob", "Carol")
	alice, bob, carol := g.by("Alice"), g.by("Bob"), g.by("Carol")
	ep := bob.room.epochs[bob.room.Head().Hash]
	sd := ep.senders[[32]byte(carol.rk.Public().(ed25519.PublicKey))]
	ck, tag := sd.ch.peek()
	pk, _ := ep.periods.At(p0)
	salt := []byte("saltsalt")
	prefix := append(bytes.Clone(salt), byte(p0%256)^maskByte(ep.mask, tag, salt))
	key := messageKeys(ck, pk, salt)
	commit := envelope.Commitment([16]byte{1})
	content := text("I am Carol")
	for _, signer := range []ed25519.PrivateKey{bob.rk, ed25519.NewKeyFromSeed(make([]byte, 32))} {
		sig := ed25519.Sign(signer, signed(ep.group, ep.Hash, expiry, tag, commit, prefix, content))
		forged, err := envelope.Seal(envelope.Sealing{Key: key, Tag: tag, Commit: commit, Expiry: expiry, Hops: 12, Prefix: prefix}, append(sig, content...))
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.room.Open(parse(t, forged.Marshal()), p0)
		wantErr(t, err, ErrSignature)
	}
	genuine := seal(t, g, carol, "the real Carol")
	if genuine.Tag != tag {
		t.Fatal("Carol's envelope does not use the tag the forgery used")
	}
	edited := genuine.Marshal()
	edited[len(edited)-20] ^= 1
	_, err := alice.room.Open(parse(t, edited), p0)
	wantErr(t, err, ErrOpen)
	m := mustOpen(t, alice, genuine, "the real Carol")
	if m.Sender != carol.ed() {
		t.Fatal("wrong sender")
	}
}

// TestTagsRevealNothingToNonMembers: the tags of two groups with the same
// members, and of one group across periods and epochs, are all distinct,
// their bits balanced, and someone who knows everything public about a
// group — its ID, every change, every member's keys — but not the epoch
// secret computes none of them.
func TestTagsRevealNothingToNonMembers(t *testing.T) {
	g1 := newGroup(t, "tags one", "Alice", "Bob")
	g2 := newGroup(t, "tags two", "Alice", "Bob")
	seen := map[[16]byte]string{}
	ones, bits := 0, 0
	record := func(e *envelope.Envelope, what string) {
		if prev, dup := seen[e.Tag]; dup {
			t.Fatalf("%s repeats the tag of %s", what, prev)
		}
		seen[e.Tag] = what
		for _, b := range e.Tag {
			for i := range 8 {
				ones += int(b >> i & 1)
			}
			bits += 8
		}
	}
	for _, g := range []*group{g1, g2} {
		alice := g.by("Alice")
		for p := p0; p < p0+3; p++ {
			for i := range 20 {
				e, err := alice.room.Seal(p, text("x"), expiry, 12, g.rand)
				if err != nil {
					t.Fatal(err)
				}
				record(e, "a message")
				_ = i
			}
		}
		h := g.commit(t, alice, &Change{Kind: KindRename, Name: "Renamed"})
		g.welcome(t, alice, h)
		for range 20 {
			record(seal(t, g, alice, "new epoch"), "a message of the next epoch")
		}
	}
	if frac := float64(ones) / float64(bits); frac < 0.47 || frac > 0.53 {
		t.Fatalf("tag bits are %.3f ones", frac)
	}
	// The outsider derives the epoch's chains with every public input and
	// a guessed secret (all zero; the group ID; a change hash).
	alice := g1.by("Alice")
	s := alice.room.Head()
	guesses := [][32]byte{{}, s.Group, s.Hash, [32]byte(alice.rk.Public().(ed25519.PublicKey))}
	for _, gs := range guesses {
		e := newEpoch(s, gs, [32]byte{})
		for _, sd := range e.senders {
			c := sd.ch
			for range 100 {
				if _, tag := c.step(); seen[tag] != "" {
					t.Fatal("an outsider computed a tag")
				}
			}
		}
	}
}

// TestSeizedMemberCannotReopenWhatItRead: Bob opened Alice's first posts,
// then his device is seized with everything in it. No key his state can
// derive — every sender chain run 100 counters on, every skipped key, in
// any period of the window — opens a post he already opened; he holds no
// epoch secret to rebuild the chains from (only an epoch's signer keeps
// it, until ForgetSecret). What he has not opened yet still opens.
func TestSeizedMemberCannotReopenWhatItRead(t *testing.T) {
	g := newGroup(t, "seized", "Alice", "Bob", "Carol")
	alice, bob := g.by("Alice"), g.by("Bob")
	var read []*envelope.Envelope
	for i := range 5 {
		e := seal(t, g, alice, "read "+string(rune('0'+i)))
		mustOpen(t, bob, e, "read "+string(rune('0'+i)))
		read = append(read, e)
	}
	skippedOver := seal(t, g, alice, "not yet read")
	mustOpen(t, bob, seal(t, g, alice, "read after a gap"), "read after a gap")
	for _, ep := range bob.room.epochs {
		if ep.hasSec {
			t.Fatal("a member who did not sign the epoch keeps its secret")
		}
		for _, sd := range ep.senders {
			var cks [][32]byte
			for _, k := range sd.skipped {
				cks = append(cks, k.ck)
			}
			c := sd.ch
			for range 100 {
				ck, _ := c.step()
				cks = append(cks, ck)
			}
			for _, ck := range cks {
				for p := p0 - 1; p <= p0+1; p++ {
					pk, ok := ep.periods.At(p)
					if !ok {
						continue
					}
					for _, e := range read {
						key := messageKeys(ck, pk, e.Body[:saltSize])
						if _, err := envelope.Open(key, e, prefixSize); err == nil {
							t.Fatal("a seized state reopens a post it had read")
						}
					}
				}
			}
		}
	}
	h := alice.room.Head().Hash
	if ep, _ := alice.room.Epoch(h); !ep.hasSec {
		t.Fatal("the signer lost the secret before sending its welcomes")
	}
	alice.room.ForgetSecret(h)
	if _, err := alice.room.Welcome(h, false); err == nil {
		t.Fatal("a forgotten secret still makes welcomes")
	}
	mustOpen(t, bob, skippedOver, "not yet read")
}

// TestExpiredPeriodsDoNotOpen: once a member's period chains have moved
// past the retention window, a message sealed before it and never received
// no longer opens, though its tag is still watched.
func TestExpiredPeriodsDoNotOpen(t *testing.T) {
	g := newGroup(t, "expiry", "Alice", "Bob")
	late := seal(t, g, g.by("Alice"), "lost for a while")
	bob := g.by("Bob")
	bob.room.Advance(p0 + Retention + 1)
	_, err := bob.room.Open(late, p0+Retention+1)
	wantErr(t, err, ErrExpired)
	if !bob.room.Recognises(late.Tag) {
		t.Fatal("the refusal moved the window")
	}
}

// TestNoMemberCanPurgeAGroupEnvelope: a receipt purges an envelope from
// every relay (SPEC §6), so a member who could write one would delete a
// post before the others got it. The commitment is to a secret the sender
// drew and deleted: nothing a member can derive for the envelope — its
// counter key, message key, seal key, a receipt secret derived as pairwise
// ones are — opens it.
func TestNoMemberCanPurgeAGroupEnvelope(t *testing.T) {
	g := newGroup(t, "purge", "Alice", "Bob")
	alice, bob := g.by("Alice"), g.by("Bob")
	ep := bob.room.epochs[bob.room.Head().Hash]
	sd := ep.senders[[32]byte(alice.rk.Public().(ed25519.PublicKey))]
	ck, _ := sd.ch.peek()
	e := seal(t, g, alice, "do not purge me")
	pk, _ := ep.periods.At(p0)
	salt := e.Body[:saltSize]
	mk := prf(ck[:], []byte("period"), pk[:])
	seal := messageKeys(ck, pk, salt)
	receipt := prf(mk[:], []byte("receipt"), salt)
	for _, cand := range [][32]byte{ck, mk, seal, receipt, pk, ep.mask} {
		if envelope.Commitment([16]byte(cand[:16])) == e.Commit {
			t.Fatal("a member derives the envelope's receipt secret")
		}
	}
	mustOpen(t, bob, e, "do not purge me")
}

// TestSkippedKeysAreBounded: a sender whose every eighth envelope arrives
// leaves seven skipped keys each time; past MaxSkipped the oldest go, the
// receiver's state stays bounded, and the newest skipped still open.
func TestSkippedKeysAreBounded(t *testing.T) {
	g := newGroup(t, "skipped", "Alice", "Bob")
	alice, bob := g.by("Alice"), g.by("Bob")
	var all []*envelope.Envelope
	for i := range 8 * 80 {
		all = append(all, seal(t, g, alice, fmt.Sprint(i)))
	}
	for i := Window - 1; i < len(all); i += Window {
		mustOpen(t, bob, all[i], fmt.Sprint(i))
	}
	ep := bob.room.epochs[bob.room.Head().Hash]
	if ep.skipped != MaxSkipped || len(ep.watch) != MaxSkipped+Window {
		t.Fatalf("%d skipped keys and %d watched tags, want %d and %d", ep.skipped, len(ep.watch), MaxSkipped, MaxSkipped+Window)
	}
	_, err := bob.room.Open(all[0], p0)
	wantErr(t, err, ErrUnknown)
	last := len(all) - 2
	mustOpen(t, bob, all[last], fmt.Sprint(last))
}
