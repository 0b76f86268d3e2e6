package room

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// MemberState is a member as an epoch sees it.
type MemberState struct {
	Member
	Admin bool
	// Rank orders admins at a fork (SPEC §15.3): the epoch of the change
	// that made the member an admin; the creator's is 0. Lower wins.
	Rank uint64
}

// State is the group as one epoch sees it: what the change that opened the
// epoch and all its ancestors made of it. A State is never changed once a
// Room has handed it out.
type State struct {
	Group  [32]byte
	Epoch  uint64
	Hash   Hash
	Start  keys.Period
	Name   string
	Kind   Kind     // of the change that opened the epoch
	Signer [32]byte // its signer's room key
	// SignerEd is the signer's identity key: the one identity a welcome
	// for this epoch is accepted from.
	SignerEd [32]byte

	members map[[32]byte]*MemberState // by identity key
	byKey   map[[32]byte][32]byte     // room key -> identity key
}

// Members lists the members sorted by identity key.
func (s *State) Members() []MemberState {
	out := make([]MemberState, 0, len(s.members))
	for _, k := range slices.SortedFunc(maps.Keys(s.members), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }) {
		out = append(out, *s.members[k])
	}
	return out
}

// Member returns the member with identity key ed.
func (s *State) Member(ed [32]byte) (MemberState, bool) {
	m, ok := s.members[ed]
	if !ok {
		return MemberState{}, false
	}
	return *m, true
}

// ByKey returns the member whose room key is key.
func (s *State) ByKey(key [32]byte) (MemberState, bool) {
	ed, ok := s.byKey[key]
	if !ok {
		return MemberState{}, false
	}
	return s.Member(ed)
}

func (s *State) clone() *State {
	c := *s
	c.members = make(map[[32]byte]*MemberState, len(s.members))
	for k, m := range s.members {
		mm := *m
		c.members[k] = &mm
	}
	c.byKey = maps.Clone(s.byKey)
	return &c
}

// genesis checks a create and returns the state of epoch 0.
func genesis(c *Change) (*State, error) {
	switch {
	case c.Kind != KindCreate:
		return nil, fmt.Errorf("%w: a room starts with a create, not %s", ErrInvalid, c.Kind)
	case c.Signer != c.Member.Key:
		return nil, fmt.Errorf("%w: a create must be signed by its creator's room key", ErrInvalid)
	case !c.verifySig():
		return nil, fmt.Errorf("failed to verify create: %w", ErrSignature)
	case !c.Member.verify(c.Group):
		return nil, fmt.Errorf("failed to verify the creator's join statement: %w", ErrSignature)
	}
	s := &State{Group: c.Group, members: map[[32]byte]*MemberState{}, byKey: map[[32]byte][32]byte{}}
	s.apply(c)
	return s, nil
}

// check reports whether c may follow s: it names s as its parent, an admin
// of s signed it, and what it does is possible in s.
func (s *State) check(c *Change) error {
	if c.Group != s.Group {
		return fmt.Errorf("%s change: %w", c.Kind, ErrOtherRoom)
	}
	if c.Parent != s.Hash || c.Epoch != s.Epoch+1 {
		return fmt.Errorf("%s change for epoch %d: %w (epoch %d %x...)", c.Kind, c.Epoch, ErrParent, s.Epoch, s.Hash[:4])
	}
	signer, ok := s.ByKey(c.Signer)
	if !ok || !signer.Admin {
		return fmt.Errorf("%s change: %w in epoch %d", c.Kind, ErrNotAdmin, s.Epoch)
	}
	if !c.verifySig() {
		return fmt.Errorf("failed to verify %s change: %w", c.Kind, ErrSignature)
	}
	target, isMember := s.members[c.Target]
	switch c.Kind {
	case KindAdd:
		if _, dup := s.members[c.Member.Ed]; dup {
			return fmt.Errorf("%w: add of someone already a member", ErrInvalid)
		}
		if _, dup := s.byKey[c.Member.Key]; dup {
			return fmt.Errorf("%w: add with a room key already in use", ErrInvalid)
		}
		if len(s.members) >= MaxMembers {
			return fmt.Errorf("%w: add beyond %d members", ErrInvalid, MaxMembers)
		}
		if !c.Member.verify(s.Group) {
			return fmt.Errorf("failed to verify the join statement of an add: %w", ErrSignature)
		}
	case KindRemove:
		switch {
		case !isMember:
			return fmt.Errorf("%w: remove of a non-member", ErrInvalid)
		case c.Target == signer.Ed:
			return fmt.Errorf("%w: an admin removes itself by a leave", ErrInvalid)
		case target.Admin && target.Rank <= signer.Rank:
			return fmt.Errorf("%w: an admin removes only admins of a later rank", ErrInvalid)
		}
	case KindAdmin:
		if !isMember || target.Admin {
			return fmt.Errorf("%w: admin grant to a non-member or an admin", ErrInvalid)
		}
	case KindLeave:
		if !isMember {
			return fmt.Errorf("%w: leave of a non-member", ErrInvalid)
		}
		if !ed25519.Verify(target.Key[:], append([]byte(leaveLabel), s.Group[:]...), c.Leave[:]) {
			return fmt.Errorf("failed to verify a leave statement: %w", ErrSignature)
		}
		if target.Admin && s.admins() == 1 {
			return fmt.Errorf("%w: the last admin cannot leave", ErrInvalid)
		}
	case KindRename:
	default:
		return fmt.Errorf("%w: %s after epoch 0", ErrInvalid, c.Kind)
	}
	return nil
}

func (s *State) admins() int {
	n := 0
	for _, m := range s.members {
		if m.Admin {
			n++
		}
	}
	return n
}

// apply moves s to the epoch c opens; c has passed check (or genesis).
func (s *State) apply(c *Change) {
	if signer, ok := s.ByKey(c.Signer); ok {
		s.SignerEd = signer.Ed
	} else {
		s.SignerEd = c.Member.Ed // the create: its signer is its creator
	}
	s.Epoch, s.Hash, s.Start, s.Kind, s.Signer = c.Epoch, c.Hash(), c.Start, c.Kind, c.Signer
	switch c.Kind {
	case KindCreate:
		s.Name = c.Name
		s.members[c.Member.Ed] = &MemberState{Member: c.Member, Admin: true, Rank: 0}
		s.byKey[c.Member.Key] = c.Member.Ed
	case KindAdd:
		s.members[c.Member.Ed] = &MemberState{Member: c.Member}
		s.byKey[c.Member.Key] = c.Member.Ed
	case KindRemove, KindLeave:
		delete(s.byKey, s.members[c.Target].Key)
		delete(s.members, c.Target)
	case KindAdmin:
		s.members[c.Target].Admin = true
		s.members[c.Target].Rank = c.Epoch
	case KindRename:
		s.Name = c.Name
	}
}

// better reports whether change a wins over b at a fork whose parent state
// is s: the signer of the lower rank, then the lower epoch hash.
func better(s *State, a, b *Change) bool {
	ra, _ := s.ByKey(a.Signer)
	rb, _ := s.ByKey(b.Signer)
	if ra.Rank != rb.Rank {
		return ra.Rank < rb.Rank
	}
	ha, hb := a.Hash(), b.Hash()
	return bytes.Compare(ha[:], hb[:]) < 0
}
