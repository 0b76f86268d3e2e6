package room

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// Room is one member's view of one private group: every change it knows
// (the canonical chain, forks that lost, and changes whose parent has not
// arrived), the epoch secrets it holds, and the epochs it can seal and open
// in. Its methods are not safe for concurrent use.
type Room struct {
	Group   [32]byte
	Genesis Hash

	self    [32]byte           // my identity key
	roomKey ed25519.PrivateKey // my room key for this group

	changes  map[Hash]*Change
	children map[Hash][]Hash
	valid    map[Hash]bool // checked against its parent's state
	chain    []Hash        // canonical, from the genesis
	head     *State
	root     *State // the genesis state, checked once

	epochs  map[Hash]*Epoch
	dropped map[Hash]bool // epochs pruned: their keys must never return
	held    map[Hash]heldSecret
}

// heldSecret is a welcome's secret for an epoch whose change (or one of its
// ancestors) has not arrived yet: kept, bounded, until it has.
type heldSecret struct {
	secret [32]byte
	from   [32]byte
}

// NewRoomKey makes the Ed25519 key a member signs with in one group, from
// 32 bytes of rand.
func NewRoomKey(rand io.Reader) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("failed to draw a room key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Create starts a group named name with id as its only member and admin.
// It draws the group ID (32 bytes), the creator's room key (32) and the
// first epoch secret (32) from rand, in that order.
func Create(id *keys.Identity, name string, start keys.Period, rand io.Reader) (*Room, error) {
	if err := keys.CheckName(name); err != nil {
		return nil, fmt.Errorf("failed to create a group: %w", err)
	}
	var group [32]byte
	if _, err := io.ReadFull(rand, group[:]); err != nil {
		return nil, fmt.Errorf("failed to draw a group ID: %w", err)
	}
	rk, err := NewRoomKey(rand)
	if err != nil {
		return nil, err
	}
	c := &Change{Kind: KindCreate, Group: group, Start: start, Name: name,
		Member: NewMember(id, group, rk.Public().(ed25519.PublicKey))}
	c.Sign(rk)
	r, err := open(c, selfOf(id), rk)
	if err != nil {
		return nil, err
	}
	var gs [32]byte
	if _, err := io.ReadFull(rand, gs[:]); err != nil {
		return nil, fmt.Errorf("failed to draw an epoch secret: %w", err)
	}
	return r, r.setSecret(r.Genesis, gs)
}

func selfOf(id *keys.Identity) (ed [32]byte) {
	copy(ed[:], id.Public().Sign)
	return ed
}

func open(create *Change, self [32]byte, roomKey ed25519.PrivateKey) (*Room, error) {
	s, err := genesis(create)
	if err != nil {
		return nil, err
	}
	h := create.Hash()
	return &Room{
		Group: create.Group, Genesis: h, self: self, roomKey: roomKey,
		changes: map[Hash]*Change{h: create}, children: map[Hash][]Hash{},
		valid: map[Hash]bool{h: true}, chain: []Hash{h}, head: s, root: s.clone(),
		epochs: map[Hash]*Epoch{}, dropped: map[Hash]bool{}, held: map[Hash]heldSecret{},
	}, nil
}

// Head is the state of the canonical chain's last epoch.
func (r *Room) Head() *State { return r.head }

// Chain lists the canonical chain's epoch hashes from the genesis.
func (r *Room) Chain() []Hash { return slices.Clone(r.chain) }

// Canonical reports whether epoch h is on the canonical chain.
func (r *Room) Canonical(h Hash) bool { return slices.Contains(r.chain, h) }

// Change returns the change that opened epoch h, if known.
func (r *Room) Change(h Hash) (*Change, bool) {
	c, ok := r.changes[h]
	return c, ok
}

// Pending counts changes held until their parent arrives.
func (r *Room) Pending() int { return len(r.changes) - len(r.valid) }

// Add takes one encoded change that arrived (in a welcome or a group
// message), in any order. A change whose parent is known is checked at once
// and refused with an error naming the problem; one whose parent is not is
// held (its signature checked) until the parent arrives, then checked. The
// canonical chain is recomputed: it is a function of the set of valid
// changes only, so every member that holds the same changes agrees on it
// (SPEC §15.3).
func (r *Room) Add(b []byte) (*Change, error) {
	c, err := ParseChange(b)
	if err != nil {
		return nil, fmt.Errorf("failed to add change: %w", err)
	}
	h := c.Hash()
	switch {
	case c.Group != r.Group:
		return nil, fmt.Errorf("failed to add change: %w", ErrOtherRoom)
	case r.changes[h] != nil:
		return nil, fmt.Errorf("failed to add %s change for epoch %d: %w", c.Kind, c.Epoch, ErrDuplicate)
	case c.Kind == KindCreate:
		return nil, fmt.Errorf("failed to add change: %w: a second create", ErrInvalid)
	case len(r.changes) >= MaxChanges:
		return nil, fmt.Errorf("failed to add change: %w: %d changes kept", ErrFull, MaxChanges)
	}
	if parent, ok := r.stateAt(c.Parent); ok {
		if err := parent.check(c); err != nil {
			return nil, fmt.Errorf("failed to add change: %w", err)
		}
		r.store(c, h)
		r.valid[h] = true
		parent.apply(c)
		r.settle(h, parent)
	} else {
		if r.Pending() >= MaxPending {
			return nil, fmt.Errorf("failed to hold change: %w: %d pending", ErrFull, MaxPending)
		}
		if !c.verifySig() {
			return nil, fmt.Errorf("failed to hold %s change: %w", c.Kind, ErrSignature)
		}
		r.store(c, h)
	}
	r.recompute()
	r.releaseHeld()
	return c, nil
}

func (r *Room) store(c *Change, h Hash) {
	r.changes[h] = c
	r.children[c.Parent] = append(r.children[c.Parent], h)
}

// settle checks the held children of h, whose state s just became known,
// and theirs in turn; those that fail are dropped.
func (r *Room) settle(h Hash, s *State) {
	for _, k := range slices.Clone(r.children[h]) {
		if r.valid[k] {
			continue
		}
		c := r.changes[k]
		if err := s.check(c); err != nil {
			delete(r.changes, k)
			r.children[h] = slices.DeleteFunc(r.children[h], func(x Hash) bool { return x == k })
			continue
		}
		r.valid[k] = true
		next := s.clone()
		next.apply(c)
		r.settle(k, next)
	}
}

// stateAt computes the state of epoch h, if h and all its ancestors are
// known and valid.
func (r *Room) stateAt(h Hash) (*State, bool) {
	var path []*Change
	for x := h; x != r.Genesis; {
		c, ok := r.changes[x]
		if !ok || !r.valid[x] {
			return nil, false
		}
		path = append(path, c)
		x = c.Parent
	}
	s := r.root.clone()
	for i := len(path) - 1; i >= 0; i-- {
		s.apply(path[i])
	}
	return s, true
}

// recompute walks the canonical chain from the genesis: at every epoch the
// valid child that wins (better) is next, leaving out the changes of a
// member some valid change removed that are not ancestors of that removal
// (SPEC §15.3): a removed admin cannot fork history from before its
// removal to undo it.
func (r *Room) recompute() {
	revoked := r.revocations()
	s := r.root.clone()
	chain := []Hash{r.Genesis}
	for {
		var best *Change
		for _, k := range r.children[s.Hash] {
			c := r.changes[k]
			if !r.valid[k] || r.outlawed(revoked, c, k) {
				continue
			}
			if best == nil || better(s, c, best) {
				best = c
			}
		}
		if best == nil {
			break
		}
		s.apply(best)
		chain = append(chain, s.Hash)
	}
	r.chain, r.head = chain, s
}

// revocations maps the room key of every member that a valid remove or
// leave takes out to the ancestors (and itself) of each such change.
func (r *Room) revocations() map[[32]byte][]map[Hash]bool {
	out := map[[32]byte][]map[Hash]bool{}
	for h, c := range r.changes {
		if !r.valid[h] || (c.Kind != KindRemove && c.Kind != KindLeave) {
			continue
		}
		parent, ok := r.stateAt(c.Parent)
		if !ok {
			continue
		}
		target := parent.members[c.Target]
		ancestors := map[Hash]bool{}
		for x := h; ; x = r.changes[x].Parent {
			ancestors[x] = true
			if x == r.Genesis {
				break
			}
		}
		out[target.Key] = append(out[target.Key], ancestors)
	}
	return out
}

// outlawed reports whether change c (hash h) is signed by a removed member
// and is not an ancestor of every change that removed it.
func (r *Room) outlawed(revoked map[[32]byte][]map[Hash]bool, c *Change, h Hash) bool {
	for _, ancestors := range revoked[c.Signer] {
		if !ancestors[h] {
			return true
		}
	}
	return false
}

// Commit makes c (its Kind and payload filled in) the next change on the
// canonical head, signed with my room key, and applies it here. It draws
// the new epoch's secret (32 bytes) from rand; the caller then sends
// Welcome(hash, …) to every member of the new epoch but itself (with the
// history to a member the change adds) and then calls ForgetSecret.
func (r *Room) Commit(c *Change, start keys.Period, rand io.Reader) (Hash, error) {
	// The secret is drawn first, so that a failure leaves the room as it was.
	var gs [32]byte
	if _, err := io.ReadFull(rand, gs[:]); err != nil {
		return Hash{}, fmt.Errorf("failed to draw an epoch secret: %w", err)
	}
	c.Group, c.Epoch, c.Parent, c.Start = r.Group, r.head.Epoch+1, r.head.Hash, start
	c.Sign(r.roomKey)
	if _, err := r.Add(c.Marshal()); err != nil {
		return Hash{}, fmt.Errorf("failed to commit: %w", err)
	}
	h := c.Hash()
	return h, r.setSecret(h, gs)
}

// AcceptWelcome takes a welcome that arrived over the pairwise session with
// the identity from: its changes, then its secret, which is accepted only
// from the signer of the change that opened the epoch (the one who drew or
// derived it) and only for an epoch whose members include me.
func (r *Room) AcceptWelcome(w *Welcome, from [32]byte) error {
	if w.Group != r.Group {
		return fmt.Errorf("failed to accept welcome: %w", ErrOtherRoom)
	}
	for _, b := range w.Changes {
		if _, err := r.Add(b); err != nil && !errors.Is(err, ErrDuplicate) {
			return fmt.Errorf("failed to accept welcome: %w", err)
		}
	}
	return r.acceptSecret(w.Epoch, w.Secret, from)
}

func (r *Room) acceptSecret(h Hash, gs [32]byte, from [32]byte) error {
	s, ok := r.stateAt(h)
	switch {
	case !ok && len(r.held) >= MaxPending:
		return fmt.Errorf("failed to hold the secret of epoch %x...: %w: %d held", h[:4], ErrFull, len(r.held))
	case !ok:
		r.held[h] = heldSecret{secret: gs, from: from}
		return nil
	case s.SignerEd != from:
		return fmt.Errorf("failed to accept the secret of epoch %d: %w: it came from someone other than the change's signer", s.Epoch, ErrInvalid)
	}
	if _, member := s.members[r.self]; !member {
		return fmt.Errorf("failed to accept the secret of epoch %d: %w", s.Epoch, ErrNotMember)
	}
	if r.epochs[h] != nil || r.dropped[h] {
		return nil // already held (sent twice), or dropped: never again
	}
	return r.setSecret(h, gs)
}

// LeaveStatement signs my leave statement for this room (SPEC §15.2).
func (r *Room) LeaveStatement() ([64]byte, error) {
	if r.roomKey == nil {
		return [64]byte{}, fmt.Errorf("failed to leave: %w: no room key", ErrNotMember)
	}
	return LeaveStatement(r.roomKey, r.Group), nil
}

// HeldSecrets counts welcome secrets waiting for their epoch's change.
func (r *Room) HeldSecrets() int { return len(r.held) }

// releaseHeld accepts the held secrets whose epoch became known; one that
// fails its checks then is dropped.
func (r *Room) releaseHeld() {
	for h, hs := range r.held {
		if _, ok := r.stateAt(h); ok {
			delete(r.held, h)
			_ = r.acceptSecret(h, hs.secret, hs.from)
		}
	}
}

// Join makes the room a welcome describes for a new member: the welcome's
// changes must start with the create, and the secret must be accepted.
func Join(w *Welcome, id *keys.Identity, roomKey ed25519.PrivateKey, from [32]byte) (*Room, error) {
	if len(w.Changes) == 0 {
		return nil, fmt.Errorf("failed to join: %w: a welcome without changes", ErrInvalid)
	}
	create, err := ParseChange(w.Changes[0])
	if err != nil {
		return nil, fmt.Errorf("failed to join: %w", err)
	}
	r, err := open(create, selfOf(id), roomKey)
	if err != nil {
		return nil, fmt.Errorf("failed to join: %w", err)
	}
	if err := r.AcceptWelcome(w, from); err != nil {
		return nil, fmt.Errorf("failed to join: %w", err)
	}
	return r, nil
}

// Welcome builds the payload that gives a member epoch h's secret over its
// pairwise session: with history, every change from the genesis to h (for
// a new member); without, only the change that opened h.
func (r *Room) Welcome(h Hash, history bool) (*Welcome, error) {
	e := r.epochs[h]
	if e == nil || !e.hasSec {
		return nil, fmt.Errorf("failed to build a welcome: %w: the epoch's secret is not held", ErrNoKey)
	}
	w := &Welcome{Group: r.Group, Epoch: h, Secret: e.secret}
	for x := h; ; {
		c := r.changes[x]
		w.Changes = append(w.Changes, c.Marshal())
		if !history || x == r.Genesis {
			break
		}
		x = c.Parent
	}
	slices.Reverse(w.Changes)
	return w, nil
}
