package room

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// forkedHistory builds a history with forks: Alice (owner) and Bob (an
// admin since epoch 2) commit concurrently on the same parent twice, and
// Alice equivocates once. It returns every change either admin made and
// the head the rules say everyone must reach (SPEC §15.3).
func forkedHistory(t *testing.T) (g *group, all [][]byte, want *State) {
	g = newGroup(t, "forks", "Alice", "Bob")
	alice, bob := g.by("Alice"), g.by("Bob")
	g.commit(t, alice, &Change{Kind: KindAdmin, Target: bob.ed()})
	g.welcome(t, alice, alice.room.Head().Hash)
	g.add(t, alice, newPerson(t, "Carol"))
	g.add(t, alice, newPerson(t, "Dave"))

	// Fork 1 at epoch 4: Alice adds Erin while Bob, not knowing, adds Frank.
	erin, frank := newPerson(t, "Erin"), newPerson(t, "Frank")
	erinRK, _ := NewRoomKey(g.rand)
	frankRK, _ := NewRoomKey(g.rand)
	erinM := NewMember(erin.id, alice.room.Group, erinRK.Public().(ed25519.PublicKey))
	frankM := NewMember(frank.id, alice.room.Group, frankRK.Public().(ed25519.PublicKey))
	e5a := g.commit(t, alice, &Change{Kind: KindAdd, Member: erinM})
	e5b := g.commit(t, bob, &Change{Kind: KindAdd, Member: frankM})
	if !bob.room.Canonical(e5b) {
		t.Fatal("Bob's own change is not his head before he hears of Alice's")
	}
	exchange(t, alice, bob)
	if !bob.room.Canonical(e5a) || bob.room.Canonical(e5b) {
		t.Fatal("the owner's change does not win the fork at Bob")
	}
	// Bob re-issues his add on the winner; Alice removes Dave on top.
	g.commit(t, bob, &Change{Kind: KindAdd, Member: frankM})
	exchange(t, alice, bob)
	g.commit(t, alice, &Change{Kind: KindRemove, Target: g.by("Dave").ed()})
	exchange(t, alice, bob)

	// Fork 2 at epoch 7: both rename; Alice also signs a second rename on
	// the same parent (equal rank: the lower hash wins).
	parent := alice.room.Head()
	g.commit(t, alice, &Change{Kind: KindRename, Name: "Alpha"})
	g.commit(t, bob, &Change{Kind: KindRename, Name: "Beta"})
	gamma := &Change{Kind: KindRename, Name: "Gamma", Group: parent.Group, Epoch: parent.Epoch + 1, Parent: parent.Hash, Start: p0}
	gamma.Sign(alice.rk)
	if _, err := alice.room.Add(gamma.Marshal()); err != nil {
		t.Fatal(err)
	}
	exchange(t, alice, bob)
	if alice.room.Head().Hash != bob.room.Head().Hash {
		t.Fatal("the two admins disagree after exchanging everything")
	}
	want = alice.room.Head()
	if got := want.Name; got != "Alpha" && got != "Gamma" {
		t.Fatalf("name %q: Bob's rename won over the owner's", got)
	}
	for h, c := range alice.room.changes {
		if h != alice.room.Genesis {
			all = append(all, c.Marshal())
		}
	}
	return g, all, want
}

// exchange gives each admin every change the other holds.
func exchange(t *testing.T, a, b *person) {
	t.Helper()
	for _, pair := range [][2]*person{{a, b}, {b, a}} {
		for _, c := range pair[0].room.changes {
			if _, err := pair[1].room.Add(c.Marshal()); err != nil && !errors.Is(err, ErrDuplicate) {
				t.Fatal(err)
			}
		}
	}
}

func names(s *State) []string {
	var out []string
	for _, m := range s.Members() {
		out = append(out, string(m.Ed[:4]))
	}
	return out
}

// TestMembersConvergeInAnyOrder applies the forked history to a fresh room
// in 300 random orders: whatever the order — children before parents,
// losing forks before winners — the chain, member list, admins and name
// come out the same, and nothing stays pending.
func TestMembersConvergeInAnyOrder(t *testing.T) {
	g, all, want := forkedHistory(t)
	carol := g.by("Carol")
	genesis := carol.room.changes[carol.room.Genesis]
	wantMembers := []string{}
	for _, n := range []string{"Alice", "Bob", "Carol", "Erin", "Frank"} {
		ed := newPerson(t, n).ed()
		wantMembers = append(wantMembers, string(ed[:4]))
	}
	slices.Sort(wantMembers)
	if got := names(want); !slices.Equal(got, wantMembers) {
		t.Fatalf("final members are not Alice, Bob, Carol, Erin, Frank")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		order := slices.Clone(all)
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		r, err := open(genesis, carol.ed(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range order {
			if _, err := r.Add(b); err != nil {
				t.Fatalf("order %d: %v", i, err)
			}
		}
		head := r.Head()
		if head.Hash != want.Hash || head.Name != want.Name || r.Pending() != 0 {
			t.Fatalf("order %d: head epoch %d %q, %d pending; want epoch %d %q", i, head.Epoch, head.Name, r.Pending(), want.Epoch, want.Name)
		}
		if got := names(head); !slices.Equal(got, wantMembers) {
			t.Fatalf("order %d: members differ", i)
		}
		if bob, _ := head.Member(g.by("Bob").ed()); !bob.Admin {
			t.Fatalf("order %d: Bob lost his admin role", i)
		}
	}
}

// TestOfflineMemberConvergesAndReadsLateMessages: Carol is away during two
// changes (an add and a removal) and the messages sent after them; it all
// reaches her in reverse — the messages first, then the newest welcome,
// then the older one. She ends on the same head and opens every message
// of the epochs she belongs to once their keys are known.
func TestOfflineMemberConvergesAndReadsLateMessages(t *testing.T) {
	g := newGroup(t, "offline", "Alice", "Bob", "Carol", "Dave")
	alice, bob, carol := g.by("Alice"), g.by("Bob"), g.by("Carol")
	var welcomes []*Welcome
	var sent []*envelope.Envelope
	// Change 1: add Erin (Carol misses it).
	erin := newPerson(t, "Erin")
	rk, _ := NewRoomKey(g.rand)
	erin.rk = rk
	h1 := g.commit(t, alice, &Change{Kind: KindAdd, Member: NewMember(erin.id, alice.room.Group, rk.Public().(ed25519.PublicKey))})
	w, _ := alice.room.Welcome(h1, true)
	var err error
	if erin.room, err = Join(roundTrip(t, w), erin.id, rk, alice.ed()); err != nil {
		t.Fatal(err)
	}
	g.welcome(t, alice, h1, carol)
	g.people = append(g.people, erin)
	w1, _ := alice.room.Welcome(h1, false)
	welcomes = append(welcomes, w1)
	sent = append(sent, seal(t, g, bob, "after the add"))
	// Change 2: remove Dave (Carol misses it too).
	h2 := g.commit(t, alice, &Change{Kind: KindRemove, Target: g.by("Dave").ed()})
	g.welcome(t, alice, h2, carol, g.by("Dave"))
	w2, _ := alice.room.Welcome(h2, false)
	welcomes = append(welcomes, w2)
	sent = append(sent, seal(t, g, bob, "after the removal"), seal(t, g, erin, "Erin here"))

	for _, e := range sent {
		_, err := carol.room.Open(e, p0)
		wantErr(t, err, ErrUnknown)
	}
	slices.Reverse(welcomes)
	for _, w := range welcomes {
		if err := carol.room.AcceptWelcome(roundTrip(t, w), alice.ed()); err != nil {
			t.Fatal(err)
		}
	}
	if carol.room.Head().Hash != alice.room.Head().Hash || carol.room.HeldSecrets() != 0 {
		t.Fatalf("Carol is at epoch %d with %d secrets held; Alice at %d", carol.room.Head().Epoch, carol.room.HeldSecrets(), alice.room.Head().Epoch)
	}
	mustOpen(t, carol, sent[0], "after the add")
	mustOpen(t, carol, sent[1], "after the removal")
	mustOpen(t, carol, sent[2], "Erin here")
}

// TestLargeGroupWelcomeInParts: a newcomer to a group of 300 gets the
// history (about 100 KB) in parts of at most 16 KB, in a random order;
// it joins and reaches the admin's head.
func TestLargeGroupWelcomeInParts(t *testing.T) {
	g := newGroup(t, "large", "Alice")
	alice := g.by("Alice")
	var last *person
	var h Hash
	for i := range 299 {
		last = newPerson(t, fmt.Sprintf("M%d", i))
		rk, _ := NewRoomKey(g.rand)
		last.rk = rk
		h = g.commit(t, alice, &Change{Kind: KindAdd, Member: NewMember(last.id, alice.room.Group, rk.Public().(ed25519.PublicKey))})
	}
	w, _ := alice.room.Welcome(h, true)
	if n := len(w.Marshal()); n < 100000 {
		t.Fatalf("the history is only %d bytes", n)
	}
	parts := w.Split(16384)
	for _, p := range parts {
		if n := len(p.Marshal()); n > 16384 {
			t.Fatalf("a part of %d bytes", n)
		}
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(parts), func(a, b int) { parts[a], parts[b] = parts[b], parts[a] })
	// The part with the create first (as the node holds early parts), the
	// rest in the shuffled order.
	first := slices.IndexFunc(parts, func(p *Welcome) bool { c, _ := ParseChange(p.Changes[0]); return c.Kind == KindCreate })
	r, err := Join(roundTrip(t, parts[first]), last.id, last.rk, alice.ed())
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if i != first {
			if err := r.AcceptWelcome(roundTrip(t, p), alice.ed()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.Head().Hash != h || len(r.Head().Members()) != 300 || r.HeldSecrets() != 0 {
		t.Fatalf("the newcomer is at epoch %d with %d members", r.Head().Epoch, len(r.Head().Members()))
	}
	last.room = r
	mustOpen(t, last, seal(t, g, alice, "welcome, three hundredth"), "welcome, three hundredth")
}

// TestLongLosingForkKeepsTheHead: Bob, an admin cut off from Alice, makes
// five changes; Alice makes one on the same parent, which wins. Bob's node
// keeps the canonical head's keys (not his five newer-numbered epochs) and
// seals in it; Carol reads him.
func TestLongLosingForkKeepsTheHead(t *testing.T) {
	g := newGroup(t, "long fork", "Alice", "Bob", "Carol")
	alice, bob, carol := g.by("Alice"), g.by("Bob"), g.by("Carol")
	g.welcome(t, alice, g.commit(t, alice, &Change{Kind: KindAdmin, Target: bob.ed()}))
	for i := range 5 {
		g.commit(t, bob, &Change{Kind: KindRename, Name: fmt.Sprintf("Bob's %d", i)})
	}
	h := g.commit(t, alice, &Change{Kind: KindRename, Name: "Alice's"})
	g.welcome(t, alice, h)
	if bob.room.Head().Hash != h {
		t.Fatalf("Bob's head is epoch %d %q", bob.room.Head().Epoch, bob.room.Head().Name)
	}
	mustOpen(t, carol, seal(t, g, bob, "on the winning branch"), "on the winning branch")
}

// TestRemovedAdminCannotUndoItsRemoval: Bob, an admin, is removed by
// Alice. He forks history from before his removal twice: at the parent of
// his own last change, with a change ground to a lower hash (it would win
// the tie between his two changes), and at the parent of Dave's change
// (an admin of a later rank, whom Bob outranks). Neither fork wins, in any
// order the changes arrive: a removed member's changes count only as
// ancestors of its removal.
func TestRemovedAdminCannotUndoItsRemoval(t *testing.T) {
	g := newGroup(t, "undo", "Alice", "Bob", "Carol", "Dave")
	alice, bob, carol, dave := g.by("Alice"), g.by("Bob"), g.by("Carol"), g.by("Dave")
	g.welcome(t, alice, g.commit(t, alice, &Change{Kind: KindAdmin, Target: bob.ed()}))
	g.welcome(t, alice, g.commit(t, alice, &Change{Kind: KindAdmin, Target: dave.ed()}))
	beforeDave := alice.room.Head()
	d1 := g.commit(t, dave, &Change{Kind: KindRename, Name: "Dave's"})
	g.welcome(t, dave, d1)
	beforeBob := alice.room.Head()
	b1 := g.commit(t, bob, &Change{Kind: KindRename, Name: "Bob's"})
	g.welcome(t, bob, b1)
	removal := g.commit(t, alice, &Change{Kind: KindRemove, Target: bob.ed()})
	g.welcome(t, alice, removal, bob)

	fork := func(parent *State, name string, below *Hash) *Change {
		for i := range 200 {
			c := &Change{Kind: KindRename, Name: fmt.Sprintf("%s %d", name, i), Group: parent.Group,
				Epoch: parent.Epoch + 1, Parent: parent.Hash, Start: p0}
			c.Sign(bob.rk)
			if h := c.Hash(); below == nil || bytes.Compare(h[:], below[:]) < 0 {
				return c
			}
		}
		t.Fatal("no hash below the target in 200 tries")
		return nil
	}
	forks := []*Change{fork(beforeBob, "Bob again", &b1), fork(beforeDave, "Bob first", nil)}
	var all [][]byte
	for h, c := range alice.room.changes {
		if h != alice.room.Genesis {
			all = append(all, c.Marshal())
		}
	}
	for _, f := range forks {
		all = append(all, f.Marshal())
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 100 {
		rng.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
		r, err := open(carol.room.changes[carol.room.Genesis], carol.ed(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range all {
			if _, err := r.Add(b); err != nil {
				t.Fatalf("order %d: %v", i, err)
			}
		}
		if r.Head().Hash != removal {
			t.Fatalf("order %d: the head is epoch %d %q, not Bob's removal", i, r.Head().Epoch, r.Head().Name)
		}
		if _, still := r.Head().Member(bob.ed()); still {
			t.Fatalf("order %d: Bob is still a member", i)
		}
	}
}
