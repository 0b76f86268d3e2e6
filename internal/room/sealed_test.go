package room

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/hex"
	"errors"
	"testing"
	"testing/cryptotest"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

// removeWithSealed removes carol from g as alice, welcoming Bob pairwise and
// Dave (whom Alice has no session with) by sealed welcomes in a group
// message of the parent epoch, which Dave opens. It returns the new epoch
// and the sealed welcomes as they travelled.
func removeWithSealed(t *testing.T, g *group) (Hash, *SealedWelcomes) {
	t.Helper()
	alice, bob, carol, dave := g.by("Alice"), g.by("Bob"), g.by("Carol"), g.by("Dave")
	parent := alice.room.Head().Hash
	h := g.commit(t, alice, &Change{Kind: KindRemove, Target: carol.ed()})
	w, err := alice.room.Welcome(h, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.room.AcceptWelcome(roundTrip(t, w), alice.ed()); err != nil {
		t.Fatal(err)
	}
	sw, err := alice.room.SealWelcomes(h, [][32]byte{dave.id.Public().DH})
	if err != nil {
		t.Fatal(err)
	}
	alice.room.ForgetSecret(h)
	env, err := alice.room.SealIn(parent, p0, sw.Marshal(), expiry, 12, g.rand)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dave.room.Open(parse(t, env.Marshal()), p0)
	if err != nil || m.Epoch != parent {
		t.Fatalf("Dave opens the parent epoch's message: %v", err)
	}
	got, err := ParseSealedWelcomes(m.Content)
	if err != nil {
		t.Fatal(err)
	}
	return h, got
}

// TestSealedWelcomeReachesAMemberWithoutASession: Alice removes Carol
// while Dave, whom another admin added, is no contact of hers; Dave gets
// the new epoch's secret from a sealed welcome in the parent epoch and
// reads Alice's next post; Carol, who reads the parent epoch too, finds no
// box of hers and reads nothing of the new epoch.
func TestSealedWelcomeReachesAMemberWithoutASession(t *testing.T) {
	g := newGroup(t, "sealed", "Alice", "Bob", "Carol", "Dave")
	alice, carol, dave := g.by("Alice"), g.by("Carol"), g.by("Dave")
	h, sw := removeWithSealed(t, g)
	// The boxes name nobody: neither Dave's keys nor his room key appear.
	daveX, daveEd := dave.id.Public().DH, dave.ed()
	for _, k := range [][]byte{daveX[:], daveEd[:], dave.rk.Public().(ed25519.PublicKey)} {
		if bytes.Contains(sw.Marshal(), k) {
			t.Fatal("the sealed welcomes name their member")
		}
	}
	if err := dave.room.OpenSealed(sw, alice.ed(), dave.id.DH); err != nil {
		t.Fatalf("Dave: %v", err)
	}
	if dave.room.Head().Hash != h {
		t.Fatal("Dave's head is not the new epoch")
	}
	post := seal(t, g, alice, "after Carol")
	mustOpen(t, dave, post, "after Carol")
	mustOpen(t, g.by("Bob"), post, "after Carol")
	if err := carol.room.OpenSealed(sw, alice.ed(), carol.id.DH); !errors.Is(err, ErrNotForMe) {
		t.Fatalf("Carol opened a sealed welcome: %v", err)
	}
	if _, err := carol.room.Open(post, p0); err == nil {
		t.Fatal("Carol, removed, read a post of the new epoch")
	}
}

// TestSealedWelcomeAttacks: a member who is not the epoch's signer cannot
// hand out a secret of its own choosing; a damaged box, a box for another
// member and a change that is not the epoch's are refused.
func TestSealedWelcomeAttacks(t *testing.T) {
	g := newGroup(t, "sealed attacks", "Alice", "Bob", "Carol", "Dave")
	alice, bob, dave := g.by("Alice"), g.by("Bob"), g.by("Dave")
	h, sw := removeWithSealed(t, g)

	// Bob seals a secret he chose to Dave and sends it as his own.
	kem, kdf, aead := sealedSuite()
	daveX := dave.id.Public().DH
	pk, _ := kem.NewPublicKey(daveX[:])
	fake, err := hpke.Seal(pk, kdf, aead, sealedInfo(sw.Group, h, dave.id.Public().DH), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	forged := &SealedWelcomes{Group: sw.Group, Epoch: h, Change: sw.Change, Boxes: [][]byte{fake}}
	if err := dave.room.OpenSealed(forged, bob.ed(), dave.id.DH); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a secret from a member who did not sign the epoch: %v", err)
	}

	damaged := &SealedWelcomes{Group: sw.Group, Epoch: h, Change: sw.Change, Boxes: [][]byte{bytes.Clone(sw.Boxes[0])}}
	damaged.Boxes[0][40] ^= 1
	if err := dave.room.OpenSealed(damaged, alice.ed(), dave.id.DH); !errors.Is(err, ErrNotForMe) {
		t.Fatalf("a damaged box: %v", err)
	}
	if err := bob.room.OpenSealed(sw, alice.ed(), bob.id.DH); !errors.Is(err, ErrNotForMe) {
		t.Fatalf("Dave's box opened for Bob: %v", err)
	}
	other := &SealedWelcomes{Group: sw.Group, Epoch: alice.room.Chain()[1], Change: sw.Change, Boxes: sw.Boxes}
	if err := dave.room.OpenSealed(other, alice.ed(), dave.id.DH); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a change that is not the epoch's: %v", err)
	}
	if _, ok := dave.room.Epoch(h); ok {
		t.Fatal("Dave holds the new epoch's keys from refused welcomes")
	}
	if err := dave.room.OpenSealed(sw, alice.ed(), dave.id.DH); err != nil {
		t.Fatalf("after the refusals, Alice's own sealed welcomes: %v", err)
	}
}

// sealedVector is SPEC §15.10's sealed welcome case: a box for Bob of
// epoch secret Secret, as HPKE sealed it (deterministic randomness), and
// the sealed welcomes it travels in.
type sealedVector struct {
	Comment              string
	BDHPriv, BDHPub      string
	Group, Epoch, Secret string
	Change               string
	Info, Box, Encoded   string
}

func TestSealedWelcomeVectors(t *testing.T) {
	vs := testkit.Vectors(t, "../../testdata/vectors/room_sealed.json", func() []sealedVector {
		cryptotest.SetGlobalRandom(t, 15)
		g := newGroup(t, "sealed vector", "Alice", "Bob")
		alice, bob := g.by("Alice"), g.by("Bob")
		h := alice.room.Head().Hash
		sw, err := alice.room.SealWelcomes(h, [][32]byte{bob.id.Public().DH})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := alice.room.Epoch(h)
		bobX := bob.id.Public().DH
		return []sealedVector{{
			Comment: "Alice seals epoch 1's secret to Bob",
			BDHPriv: hex.EncodeToString(bob.id.DH.Bytes()), BDHPub: hex.EncodeToString(bobX[:]),
			Group: hex.EncodeToString(sw.Group[:]), Epoch: hex.EncodeToString(h[:]), Secret: hex.EncodeToString(e.secret[:]),
			Change: hex.EncodeToString(sw.Change),
			Info:   hex.EncodeToString(sealedInfo(sw.Group, h, bob.id.Public().DH)),
			Box:    hex.EncodeToString(sw.Boxes[0]), Encoded: hex.EncodeToString(sw.Marshal()),
		}}
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		priv, err := ecdh.X25519().NewPrivateKey(testkit.Unhex(t, v.BDHPriv))
		if err != nil {
			t.Fatal(err)
		}
		kem, kdf, aead := sealedSuite()
		sk, _ := kem.NewPrivateKey(priv.Bytes())
		var group [32]byte
		var h Hash
		copy(group[:], testkit.Unhex(t, v.Group))
		copy(h[:], testkit.Unhex(t, v.Epoch))
		info := sealedInfo(group, h, [32]byte(testkit.Unhex(t, v.BDHPub)))
		if hex.EncodeToString(info) != v.Info {
			t.Fatalf("info %x, want %s", info, v.Info)
		}
		gs, err := hpke.Open(sk, kdf, aead, info, testkit.Unhex(t, v.Box))
		if err != nil || hex.EncodeToString(gs) != v.Secret {
			t.Fatalf("%s: the box opens to %x (%v), want %s", v.Comment, gs, err, v.Secret)
		}
		sw, err := ParseSealedWelcomes(testkit.Unhex(t, v.Encoded))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sw.Marshal(), testkit.Unhex(t, v.Encoded)) || hex.EncodeToString(sw.Change) != v.Change || hex.EncodeToString(sw.Boxes[0]) != v.Box {
			t.Fatalf("%s: the encoding does not round-trip", v.Comment)
		}
	}
}

func FuzzParseSealedWelcomes(f *testing.F) {
	g := newGroup(f, "sealed fuzz", "Alice", "Bob")
	sw, err := g.by("Alice").room.SealWelcomes(g.by("Alice").room.Head().Hash, [][32]byte{g.by("Bob").id.Public().DH})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sw.Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		sw, err := ParseSealedWelcomes(b)
		if err != nil {
			return
		}
		if !bytes.Equal(sw.Marshal(), b) {
			t.Fatalf("parse ∘ marshal is not the identity")
		}
	})
}
