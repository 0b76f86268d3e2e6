package room

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// fuzzGroup is a small group whose changes and welcomes seed the corpora.
func fuzzGroup(f *testing.F) (*group, [][]byte) {
	g := newGroup(f, "fuzz", "Alice", "Bob", "Carol")
	alice := g.by("Alice")
	g.commit(f, alice, &Change{Kind: KindAdmin, Target: g.by("Bob").ed()})
	g.commit(f, alice, &Change{Kind: KindRename, Name: "Fuzzed"})
	g.commit(f, alice, &Change{Kind: KindLeave, Target: g.by("Carol").ed(), Leave: LeaveStatement(g.by("Carol").rk, alice.room.Group)})
	g.commit(f, alice, &Change{Kind: KindRemove, Target: g.by("Bob").ed()})
	var out [][]byte
	for _, h := range alice.room.Chain() {
		c, _ := alice.room.Change(h)
		out = append(out, c.Marshal())
	}
	return g, out
}

// FuzzParseChange: any input either fails to parse or parses to a change
// that encodes back to exactly the input (one valid encoding per change).
func FuzzParseChange(f *testing.F) {
	_, changes := fuzzGroup(f)
	for _, c := range changes {
		f.Add(c)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChange(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatal("a change does not encode back to its input")
		}
		c2, err := ParseChange(c.Marshal())
		if err != nil || c2.Hash() != c.Hash() {
			t.Fatalf("a change does not parse back: %v", err)
		}
	})
}

// FuzzParseWelcome: round trip, as above.
func FuzzParseWelcome(f *testing.F) {
	g, _ := fuzzGroup(f)
	alice := g.by("Alice")
	for _, history := range []bool{true, false} {
		w, err := alice.room.Welcome(alice.room.Head().Hash, history)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(w.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWelcome(b)
		if err != nil {
			return
		}
		if !bytes.Equal(w.Marshal(), b) {
			t.Fatal("a welcome does not encode back to its input")
		}
	})
}

// FuzzAdd feeds a member's room hostile changes: nothing panics, and
// nothing unsigned by an admin moves the head.
func FuzzAdd(f *testing.F) {
	_, changes := fuzzGroup(f)
	for _, c := range changes[1:] {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g := newGroup(t, "fuzz add", "Alice", "Bob")
		bob := g.by("Bob")
		before := bob.room.Head().Hash
		c, err := bob.room.Add(b)
		if err != nil {
			if bob.room.Head().Hash != before {
				t.Fatal("a refused change moved the head")
			}
			return
		}
		if bob.room.Head().Hash != before {
			// Only a change signed by Alice, the one admin, can move it.
			if c.Signer != [32]byte(g.by("Alice").rk.Public().(ed25519.PublicKey)) {
				t.Fatal("a change not signed by an admin moved the head")
			}
		}
	})
}

// FuzzOpen feeds a member hostile bodies under a tag it expects, as a relay
// that edits copies would. Open must never panic, whatever fails must
// leave the room's window as it was, and the genuine envelope then opens.
func FuzzOpen(f *testing.F) {
	g := newGroup(f, "fuzz open", "Alice", "Bob")
	e := seal(f, g, g.by("Alice"), "genuine")
	f.Add(e.Body, e.Expiry, e.Commit[:])
	f.Add([]byte{}, uint32(0), []byte{})
	f.Fuzz(func(t *testing.T, body []byte, exp uint32, commit []byte) {
		g := newGroup(t, "fuzz open", "Alice", "Bob")
		genuine := seal(t, g, g.by("Alice"), "genuine")
		bob := g.by("Bob")
		hostile := &envelope.Envelope{Kind: envelope.KindSealed, Expiry: exp, Tag: genuine.Tag, Body: body}
		copy(hostile.Commit[:], commit)
		ep := bob.room.epochs[bob.room.Head().Hash]
		watched := len(ep.watch)
		if _, err := bob.room.Open(hostile, p0); err == nil {
			if !bytes.Equal(hostile.Body, genuine.Body) || hostile.Expiry != genuine.Expiry || hostile.Commit != genuine.Commit {
				t.Fatal("an edited envelope opened")
			}
			return
		}
		if len(ep.watch) != watched {
			t.Fatal("a failed open changed the watch window")
		}
		mustOpen(t, bob, genuine, "genuine")
	})
}

// FuzzUnmarshal feeds the store's room decoder damaged records: it never
// panics, and what it accepts encodes to a record that decodes to the same
// head and the same watched tags.
func FuzzUnmarshal(f *testing.F) {
	g := newGroup(f, "fuzz store", "Alice", "Bob", "Carol")
	mustOpen(f, g.by("Bob"), seal(f, g, g.by("Alice"), "x"), "x")
	for _, p := range g.people {
		b, err := p.room.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			return
		}
		b2, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("a re-encoded room does not load: %v", err)
		}
		if r2.Head().Hash != r.Head().Hash || len(r2.Expected()) != len(r.Expected()) {
			t.Fatal("a room does not survive a second round trip")
		}
	})
}
