package room

import (
	"bytes"
	"testing"
)

func TestGroupMessagesOpenForEveryMember(t *testing.T) {
	g := newGroup(t, "basic", "Alice", "Bob", "Carol", "Dave")
	for _, from := range g.people {
		e := seal(t, g, from, "hello from "+from.name)
		for _, to := range g.people {
			if to == from {
				if _, err := to.room.Open(e, p0); err == nil {
					t.Fatalf("%s opened its own envelope", to.name)
				}
				continue
			}
			m := mustOpen(t, to, e, "hello from "+from.name)
			if m.Sender != from.ed() || !m.Canonical || m.Number != g.people[0].room.Head().Epoch {
				t.Fatalf("%s: message says sender %x, epoch %d, canonical %v", to.name, m.Sender[:4], m.Number, m.Canonical)
			}
		}
	}
	want := g.people[0].room.Head()
	for _, p := range g.people {
		if p.room.Head().Hash != want.Hash || len(p.room.Head().Members()) != 4 {
			t.Fatalf("%s disagrees on the head", p.name)
		}
	}
}

func TestOutOfOrderWithinTheWindow(t *testing.T) {
	g := newGroup(t, "order", "Alice", "Bob")
	a, b := g.by("Alice"), g.by("Bob")
	var es [][]byte
	for i := range Window {
		es = append(es, seal(t, g, a, string(rune('a'+i))).Marshal())
	}
	// Last first, then the rest backwards: each opens once.
	for i := Window - 1; i >= 0; i-- {
		e := parse(t, es[i])
		mustOpen(t, b, e, string(rune('a'+i)))
		_, err := b.room.Open(parse(t, es[i]), p0)
		wantErr(t, err, ErrReplay)
	}
	if n := b.room.epochs[b.room.Head().Hash].skipped; n != 0 {
		t.Fatalf("%d skipped keys left after every envelope opened", n)
	}
}

func TestReplayedMessageIsDetected(t *testing.T) {
	g := newGroup(t, "replay", "Alice", "Bob", "Carol")
	e := seal(t, g, g.by("Alice"), "once")
	raw := e.Marshal()
	mustOpen(t, g.by("Bob"), parse(t, raw), "once")
	_, err := g.by("Bob").room.Open(parse(t, raw), p0)
	wantErr(t, err, ErrReplay)
	// A relay that re-dates the copy makes a different envelope, which
	// neither authenticates nor matches a kept counter.
	raw2 := bytes.Clone(raw)
	raw2[5] ^= 1
	if _, err := g.by("Carol").room.Open(parse(t, raw2), p0); err == nil {
		t.Fatal("a re-dated copy opened")
	}
	mustOpen(t, g.by("Carol"), parse(t, raw), "once")
}

// TestRoomSurvivesMarshal: a room stored and loaded mid-conversation —
// with a skipped key, an opened tag, a held secret's absence — behaves as
// the one that was stored: it refuses the replay, opens the skipped
// message and the next, and seals on from where it was.
func TestRoomSurvivesMarshal(t *testing.T) {
	g := newGroup(t, "persist", "Alice", "Bob", "Carol")
	alice, bob := g.by("Alice"), g.by("Bob")
	first := seal(t, g, alice, "first")
	skipped := seal(t, g, alice, "skipped")
	third := seal(t, g, alice, "third")
	mustOpen(t, bob, first, "first")
	mustOpen(t, bob, third, "third")
	for _, p := range []*person{alice, bob} {
		b, err := p.room.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if p.room, err = Unmarshal(b); err != nil {
			t.Fatal(err)
		}
	}
	_, err := bob.room.Open(parse(t, first.Marshal()), p0)
	wantErr(t, err, ErrReplay)
	mustOpen(t, bob, skipped, "skipped")
	mustOpen(t, bob, seal(t, g, alice, "after the reload"), "after the reload")
	mustOpen(t, g.by("Carol"), seal(t, g, bob, "Bob after the reload"), "Bob after the reload")
	if _, err := alice.room.Welcome(alice.room.Head().Hash, true); err != nil {
		t.Fatalf("the signer lost its secret in the store: %v", err)
	}
	// A record whose changes were tampered with is refused.
	b, _ := bob.room.Marshal()
	bad := bytes.Replace(b, []byte(`"changes":["`), []byte(`"changes":["AQ`), 1)
	if _, err := Unmarshal(bad); err == nil {
		t.Fatal("a tampered record loaded")
	}
}
