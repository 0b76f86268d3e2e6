package room

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const (
	p0     = keys.Period(20000)
	expiry = 2000000000
)

// detRand is deterministic "randomness": SHA-256(label || be64(i)) blocks.
type detRand struct {
	label string
	i     uint64
	buf   []byte
}

func newRand(label string) *detRand { return &detRand{label: label} }

func (d *detRand) Read(p []byte) (int, error) {
	for len(d.buf) < len(p) {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(d.label), d.i))
		d.i++
		d.buf = append(d.buf, h[:]...)
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}

// person is a test identity with its room key for the group under test.
type person struct {
	name string
	id   *keys.Identity
	rk   ed25519.PrivateKey
	room *Room
}

func newPerson(t testing.TB, name string) *person {
	t.Helper()
	id, err := keys.IdentityFromSeeds(name, testkit.Stream(name+" sign", 32), testkit.Stream(name+" dh", 32))
	if err != nil {
		t.Fatal(err)
	}
	return &person{name: name, id: id}
}

func (p *person) ed() (ed [32]byte) { return selfOf(p.id) }

// group is a room under test: people[0] created it; everyone in people
// is a member of the head epoch and holds its keys.
type group struct {
	people []*person
	rand   *detRand
}

func newGroup(t testing.TB, label string, names ...string) *group {
	t.Helper()
	g := &group{rand: newRand(label)}
	creator := newPerson(t, names[0])
	r, err := Create(creator.id, "Group "+label, p0, g.rand)
	if err != nil {
		t.Fatal(err)
	}
	creator.room, creator.rk = r, r.roomKey
	g.people = append(g.people, creator)
	for _, n := range names[1:] {
		g.add(t, creator, newPerson(t, n))
	}
	return g
}

// add makes p a member: admin commits the add and welcomes everyone.
func (g *group) add(t testing.TB, admin, p *person) Hash {
	t.Helper()
	rk, err := NewRoomKey(g.rand)
	if err != nil {
		t.Fatal(err)
	}
	p.rk = rk
	m := NewMember(p.id, admin.room.Group, rk.Public().(ed25519.PublicKey))
	h, err := admin.room.Commit(&Change{Kind: KindAdd, Member: m}, p0, g.rand)
	if err != nil {
		t.Fatal(err)
	}
	w, err := admin.room.Welcome(h, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.room, err = Join(roundTrip(t, w), p.id, rk, admin.ed()); err != nil {
		t.Fatal(err)
	}
	g.welcome(t, admin, h, p)
	g.people = append(g.people, p)
	return h
}

// welcome sends epoch h's welcome (without history) from admin to every
// member but admin and except.
func (g *group) welcome(t testing.TB, admin *person, h Hash, except ...*person) {
	t.Helper()
	w, err := admin.room.Welcome(h, false)
	if err != nil {
		t.Fatal(err)
	}
next:
	for _, q := range g.people {
		if q == admin {
			continue
		}
		for _, x := range except {
			if q == x {
				continue next
			}
		}
		if err := q.room.AcceptWelcome(roundTrip(t, w), admin.ed()); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
	}
}

func roundTrip(t testing.TB, w *Welcome) *Welcome {
	t.Helper()
	w2, err := ParseWelcome(w.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return w2
}

func (g *group) commit(t testing.TB, admin *person, c *Change) Hash {
	t.Helper()
	h, err := admin.room.Commit(c, p0, g.rand)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (g *group) by(name string) *person {
	for _, p := range g.people {
		if p.name == name {
			return p
		}
	}
	panic("no " + name)
}

func text(s string) []byte {
	c := []byte{1, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(c[1:], 1700000000)
	return append(c, s...)
}

func seal(t testing.TB, g *group, p *person, s string) *envelope.Envelope {
	t.Helper()
	e, err := p.room.Seal(p0, text(s), expiry, 12, g.rand)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	// What travels is bytes: parse what was marshalled.
	pe, err := envelope.Parse(e.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return pe
}

func mustOpen(t testing.TB, p *person, e *envelope.Envelope, want string) *Message {
	t.Helper()
	m, err := p.room.Open(e, p0)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	if string(m.Content[5:]) != want {
		t.Fatalf("%s opened %q, want %q", p.name, m.Content[5:], want)
	}
	return m
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func parse(t testing.TB, raw []byte) *envelope.Envelope {
	t.Helper()
	e, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
