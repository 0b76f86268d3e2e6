package room

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
)

var hundred = strings.Repeat("x", 100)

// TestHundredCharacterPostSize: a 100-character group post is one envelope
// of at most 256 bytes (SPEC §15.5), whoever reads it.
func TestHundredCharacterPostSize(t *testing.T) {
	g := newGroup(t, "size", "Alice", "Bob")
	if n := len(seal(t, g, g.by("Alice"), hundred).Marshal()); n > 256 {
		t.Fatalf("a 100-character post is %d bytes on the wire, limit 256", n)
	}
}

// BenchmarkWireSize reports the wire size of a 100-character group post.
func BenchmarkWireSize(b *testing.B) {
	g := newGroup(b, "size", "Alice", "Bob")
	var n int
	for b.Loop() {
		e, err := g.by("Alice").room.Seal(p0, text(hundred), expiry, 12, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		n = len(e.Marshal())
	}
	if n > 256 {
		b.Fatalf("%d bytes, limit 256", n)
	}
	b.ReportMetric(float64(n), "post-bytes")
}

// benchGroup is a 20-member group: Alice sends, Bob reads.
func benchGroup(b *testing.B) *group {
	names := []string{"Alice", "Bob"}
	for i := range 18 {
		names = append(names, fmt.Sprintf("M%d", i))
	}
	return newGroup(b, "bench", names...)
}

// BenchmarkGroupSeal: sealing a 100-character post in a 20-member group —
// the chains, the period key, the Ed25519 signature and the AEAD.
func BenchmarkGroupSeal(b *testing.B) {
	g := benchGroup(b)
	a := g.by("Alice")
	for b.Loop() {
		if _, err := a.room.Seal(p0, text(hundred), expiry, 12, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/envelope")
}

// BenchmarkGroupOpen: opening such a post in order — lookup, the period
// key, the message key, the AEAD, the signature check and the window move.
func BenchmarkGroupOpen(b *testing.B) {
	g := benchGroup(b)
	a, bob := g.by("Alice"), g.by("Bob")
	for b.Loop() {
		b.StopTimer()
		e, err := a.room.Seal(p0, text(hundred), expiry, 12, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		raw := e.Marshal()
		b.StartTimer()
		pe, err := envelope.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.room.Open(pe, p0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/envelope")
}

// pairwise is an established pairwise session (package keys), for the
// comparison SPEC §15.5 makes: Alice's key is acknowledged, so her
// envelopes carry no prefix.
func pairwise(b *testing.B) (a, bob *keys.Session) {
	ida, _ := keys.NewIdentity("Alice", rand.Reader)
	idb, _ := keys.NewIdentity("Bob", rand.Reader)
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pk := &keys.Prekey{Priv: priv, Expiry: expiry}
	rand.Read(pk.Secret[:])
	fc, err := keys.Initiate(ida, keys.NewInvite(idb, pk), p0, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sk, err := keys.Respond(idb, priv, ida.Public(), fc.EK)
	if err != nil {
		b.Fatal(err)
	}
	sb, err := keys.NewResponderSession(sk, p0, fc.Ratchet, fc.KEMKey)
	if err != nil {
		b.Fatal(err)
	}
	a, bob = fc.Session, sb
	a = pairOpen(b, a, pairSeal(b, bob, "accept"))
	bob = pairOpen(b, bob, pairSeal(b, a, "step"))
	a.Acked(a.Send.N)
	return a, bob
}

// BenchmarkPairwiseSeal is keys' BenchmarkSessionSeal with this file's
// content, for the side-by-side figure.
func BenchmarkPairwiseSeal(b *testing.B) {
	a, _ := pairwise(b)
	for b.Loop() {
		if _, _, err := a.Seal(p0, text(hundred), expiry, 12, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/envelope")
}

// BenchmarkPairwiseOpen opens one such envelope again and again (a
// session's Open returns the next state and leaves its own alone).
func BenchmarkPairwiseOpen(b *testing.B) {
	a, bob := pairwise(b)
	e := pairSeal(b, a, hundred)
	var sl keys.Slot
	for _, x := range bob.Expected() {
		if x.Tag == e.Tag {
			sl = x
		}
	}
	raw := e.Marshal()
	for b.Loop() {
		pe, err := envelope.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := bob.Open(pe, sl, p0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/envelope")
}

func pairSeal(b *testing.B, s *keys.Session, t string) *envelope.Envelope {
	e, _, err := s.Seal(p0, text(t), expiry, 12, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func pairOpen(b *testing.B, s *keys.Session, e *envelope.Envelope) *keys.Session {
	for _, sl := range s.Expected() {
		if sl.Tag == e.Tag {
			next, _, err := s.Open(e, sl, p0)
			if err != nil {
				b.Fatal(err)
			}
			return next
		}
	}
	b.Fatal("tag not expected")
	return nil
}

// BenchmarkEd25519 measures the signature alone, which dominates a group
// message's cost (SPEC §15.5): sign on seal, verify on open.
func BenchmarkEd25519(b *testing.B) {
	g := newGroup(b, "sig", "Alice")
	msg := []byte(hundred)
	sig := ed25519.Sign(g.people[0].rk, msg)
	pub := g.people[0].rk.Public().(ed25519.PublicKey)
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(g.people[0].rk, msg)
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
}

// BenchmarkRecognise: a node in 1, 10 and 100 groups of 10 members finds
// the room of an arriving envelope by one lookup in its Index; the time per
// recognition stays flat (SPEC §15.6). Half the envelopes looked up are a
// group's, half are others' (not found).
func BenchmarkRecognise(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			x := NewIndex()
			var tags [][16]byte
			for i := range n {
				g := newGroup(b, fmt.Sprintf("recognise %d", i), "Alice", "Bob", "M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8")
				x.Update(g.by("Bob").room)
				tags = append(tags, seal(b, g, g.by("Alice"), "x").Tag)
			}
			r := newRand("strangers")
			for range len(tags) {
				var t [16]byte
				r.Read(t[:])
				tags = append(tags, t)
			}
			found, i := 0, 0
			for b.Loop() {
				if _, ok := x.Lookup(tags[i%len(tags)]); ok {
					found++
				}
				i++
			}
			if found == 0 {
				b.Fatal("no group envelope recognised")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/recognition")
			b.ReportMetric(float64(x.Len()), "tags")
		})
	}
}

// BenchmarkEpoch250 measures what a member of a 250-member group does when
// a welcome arrives: deriving the new epoch's 249 sender chains and the
// watch windows. It reports the tags one epoch of such a group adds to the
// index.
func BenchmarkEpoch250(b *testing.B) {
	alice := alice250(b)
	s := alice.room.Head()
	var e *Epoch
	for b.Loop() {
		e = newEpoch(s, [32]byte{1}, alice.ed())
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/epoch")
	b.ReportMetric(float64(len(e.watch)), "tags/epoch")
}

// BenchmarkStore250 measures storing (Marshal) and loading (Unmarshal) a
// 250-member group's record as its creator holds it (4 epochs). The node
// stores it after every message it seals or opens in the group, and keeps
// it decoded between messages (internal/node's roomCache), so loading is
// paid once.
func BenchmarkStore250(b *testing.B) {
	alice := alice250(b)
	rec, err := alice.room.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := alice.room.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rec)), "record-bytes")
	})
	b.Run("unmarshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := Unmarshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// alice250 is Alice in a 250-member group she created and filled, one add
// (one epoch) at a time.
func alice250(b *testing.B) *person {
	g := newGroup(b, "250", "Alice")
	alice := g.by("Alice")
	for i := range 249 {
		p := newPerson(b, fmt.Sprintf("M%d", i))
		rk, _ := NewRoomKey(g.rand)
		g.commit(b, alice, &Change{Kind: KindAdd, Member: NewMember(p.id, alice.room.Group, rk.Public().(ed25519.PublicKey))})
	}
	return alice
}
