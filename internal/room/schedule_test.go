package room

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestRandomSchedule runs a group through 400 random steps — posts,
// changes by two admins who see each other late (so they fork), welcomes
// and envelopes delivered in random order and late — and then delivers
// everything. It checks what must hold whatever the schedule: nobody opens
// a post of an epoch it was not a member of, everyone still in the group
// ends on one head, and every member of the head epoch reads every post
// sealed in it.
func TestRandomSchedule(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomSchedule(t, seed) })
	}
}

type post struct {
	env    *envelope.Envelope
	from   *person
	epoch  Hash
	opened map[*person]bool
}

type delivery struct {
	to   *person
	w    *Welcome
	from [32]byte
}

func randomSchedule(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	g := newGroup(t, fmt.Sprint("schedule ", seed), "Alice", "Bob", "Carol", "Dave")
	alice, bob := g.by("Alice"), g.by("Bob")
	g.welcome(t, alice, g.commit(t, alice, &Change{Kind: KindAdmin, Target: bob.ed()}))
	var posts []*post
	var queue []delivery
	outsiders := 0
	// send queues epoch h's welcome from admin to every member of h but admin.
	send := func(admin *person, h Hash, newcomer *person) {
		s, _ := admin.room.stateAt(h)
		for _, m := range s.Members() {
			p := findPerson(g, m.Ed)
			if p == nil || p == admin {
				continue
			}
			w, err := admin.room.Welcome(h, p == newcomer)
			if err != nil {
				t.Fatal(err)
			}
			queue = append(queue, delivery{to: p, w: w, from: admin.ed()})
		}
	}
	deliver := func(d delivery) {
		var err error
		if d.to.room == nil {
			if d.to.room, err = Join(d.w, d.to.id, d.to.rk, d.from); err != nil {
				d.to.room = nil // a part without the create: it comes again below
				queue = append(queue, d)
			}
			return
		}
		if err := d.to.room.AcceptWelcome(d.w, d.from); err != nil && !errors.Is(err, ErrNotMember) {
			t.Fatalf("%s: %v", d.to.name, err)
		}
	}
	tryOpen := func(p *person, po *post) {
		if p.room == nil || p == po.from || po.opened[p] {
			return
		}
		m, err := p.room.Open(po.env, p0)
		if err != nil {
			return
		}
		s, _ := p.room.stateAt(po.epoch)
		if _, member := s.Member(p.ed()); !member || m.Epoch != po.epoch {
			t.Fatalf("%s opened a post of an epoch it is not in", p.name)
		}
		po.opened[p] = true
	}
	for step := range 400 {
		switch x := rng.IntN(10); {
		case x < 4: // someone posts
			p := g.people[rng.IntN(len(g.people))]
			if p.room == nil {
				continue
			}
			e, err := p.room.Seal(p0, text(fmt.Sprint("post ", step)), expiry, 12, g.rand)
			if err != nil {
				continue // not in the head epoch, or its key not here yet
			}
			posts = append(posts, &post{env: e, from: p, epoch: p.room.Head().Hash, opened: map[*person]bool{}})
		case x < 6: // an admin changes something
			admin := []*person{alice, bob}[rng.IntN(2)]
			head := admin.room.Head()
			if m, ok := head.Member(admin.ed()); !ok || !m.Admin {
				continue
			}
			var c *Change
			var newcomer *person
			switch rng.IntN(3) {
			case 0:
				outsiders++
				newcomer = newPerson(t, fmt.Sprint("New", outsiders))
				newcomer.rk, _ = NewRoomKey(g.rand)
				c = &Change{Kind: KindAdd, Member: NewMember(newcomer.id, head.Group, newcomer.rk.Public().(ed25519.PublicKey))}
				g.people = append(g.people, newcomer)
			case 1:
				c = &Change{Kind: KindRename, Name: fmt.Sprint("Name ", step)}
			case 2:
				var targets [][32]byte
				for _, m := range head.Members() {
					if !m.Admin {
						targets = append(targets, m.Ed)
					}
				}
				if len(targets) == 0 {
					continue
				}
				c = &Change{Kind: KindRemove, Target: targets[rng.IntN(len(targets))]}
			}
			h, err := admin.room.Commit(c, p0, g.rand)
			if err != nil {
				t.Fatal(err)
			}
			send(admin, h, newcomer)
		default: // something arrives
			if len(queue) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(queue))
				d := queue[i]
				queue = append(queue[:i], queue[i+1:]...)
				deliver(d)
			} else if len(posts) > 0 {
				po := posts[rng.IntN(len(posts))]
				tryOpen(g.people[rng.IntN(len(g.people))], po)
			}
		}
	}
	// Everything arrives; the admins exchange what they committed, and
	// whatever made a head moves its welcomes too.
	for round := 0; round < 5; round++ {
		for _, a := range []*person{alice, bob} {
			for _, b := range []*person{alice, bob} {
				for _, c := range a.room.changes {
					if _, err := b.room.Add(c.Marshal()); err != nil && !errors.Is(err, ErrDuplicate) {
						t.Fatal(err)
					}
				}
			}
		}
		for len(queue) > 0 {
			d := queue[0]
			queue = queue[1:]
			if d.to.room == nil {
				if r, err := Join(d.w, d.to.id, d.to.rk, d.from); err == nil {
					d.to.room = r
				}
				continue
			}
			deliver(d)
		}
		// The head's signer welcomes its members again (a node would
		// resend when a fork resolved elsewhere than it expected).
		for _, a := range []*person{alice, bob} {
			h := a.room.Head().Hash
			if a.room.Head().SignerEd == a.ed() {
				if _, err := a.room.Welcome(h, false); err == nil {
					s := a.room.Head()
					for _, m := range s.Members() {
						if p := findPerson(g, m.Ed); p != nil && p != a {
							w, _ := a.room.Welcome(h, p.room == nil)
							queue = append(queue, delivery{to: p, w: w, from: a.ed()})
						}
					}
				}
			}
		}
	}
	head := alice.room.Head()
	forks := len(alice.room.changes) - len(alice.room.chain)
	defer func() {
		opened := 0
		for _, po := range posts {
			opened += len(po.opened)
		}
		t.Logf("%d posts, %d openings, %d changes off the chain, epoch %d, %d members", len(posts), opened, forks, head.Epoch, len(head.Members()))
	}()
	for _, m := range head.Members() {
		p := findPerson(g, m.Ed)
		if p.room == nil || p.room.Head().Hash != head.Hash {
			t.Fatalf("%s is not on the head (epoch %d)", p.name, head.Epoch)
		}
	}
	for _, m := range head.Members() { // everyone still in posts once more
		p := findPerson(g, m.Ed)
		e, err := p.room.Seal(p0, text("at the end"), expiry, 12, g.rand)
		if err != nil {
			t.Fatalf("%s cannot post on the head: %v", p.name, err)
		}
		posts = append(posts, &post{env: e, from: p, epoch: head.Hash, opened: map[*person]bool{}})
	}
	for _, po := range posts {
		for _, p := range g.people {
			tryOpen(p, po)
		}
		if po.epoch != head.Hash {
			continue
		}
		for _, m := range head.Members() {
			if p := findPerson(g, m.Ed); p != po.from && !po.opened[p] {
				t.Fatalf("%s did not read a post of the head epoch", p.name)
			}
		}
	}
}

func findPerson(g *group, ed [32]byte) *person {
	for _, p := range g.people {
		if p.ed() == ed {
			return p
		}
	}
	return nil
}
