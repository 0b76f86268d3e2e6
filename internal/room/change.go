package room

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// Kind is what a membership change does.
type Kind uint8

const (
	KindCreate Kind = 1 // epoch 0: the creator, its room key and the name
	KindAdd    Kind = 2 // a member joins (with its signed join statement)
	KindRemove Kind = 3 // an admin removes a member
	KindAdmin  Kind = 4 // an admin makes a member an admin
	KindLeave  Kind = 5 // an admin records a member's signed leave
	KindRename Kind = 6 // a new group name
)

func (k Kind) String() string {
	switch k {
	case KindCreate:
		return "create"
	case KindAdd:
		return "add"
	case KindRemove:
		return "remove"
	case KindAdmin:
		return "admin"
	case KindLeave:
		return "leave"
	case KindRename:
		return "rename"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Hash names an epoch: SHA-256("grapevine room epoch v1" || change).
type Hash [32]byte

// Member is one member's entry, as an add (or the create) carries it:
//
//	0   32  identity Ed25519 key
//	32  32  identity X25519 key
//	64  32  room key: the member's Ed25519 key for this group, made when it joined
//	96  64  join statement: Ed25519(identity key, "grapevine room join v1" || group ID || room key)
//
// The join statement is the member's own consent and binds its room key to
// its identity, so no admin can add someone under a key the admin holds.
type Member struct {
	Ed   [32]byte
	X    [32]byte
	Key  [32]byte
	Join [64]byte
}

const memberSize = 160

const (
	joinLabel    = "grapevine room join v1"
	leaveLabel   = "grapevine room leave v1"
	changeLabel  = "grapevine room change v1"
	epochLabel   = "grapevine room epoch v1"
	messageLabel = "grapevine room message v1"
)

// NewMember makes id's entry for group: it signs the join statement over
// roomKey, the public half of the room key the member made for this group.
func NewMember(id *keys.Identity, group [32]byte, roomKey ed25519.PublicKey) Member {
	var m Member
	pub := id.Public()
	copy(m.Ed[:], pub.Sign)
	m.X = pub.DH
	copy(m.Key[:], roomKey)
	copy(m.Join[:], ed25519.Sign(id.Sign, joinStatement(group, m.Key)))
	return m
}

func joinStatement(group, key [32]byte) []byte {
	return append(append([]byte(joinLabel), group[:]...), key[:]...)
}

// verify checks the join statement against the member's identity key.
func (m Member) verify(group [32]byte) bool {
	return ed25519.Verify(m.Ed[:], joinStatement(group, m.Key), m.Join[:])
}

// LeaveStatement is what a member signs with its room key to leave group:
// Ed25519(room key, "grapevine room leave v1" || group ID). An admin
// records it in a leave change. It names no epoch, so the admin may commit
// it on any head; a member who rejoins has a new room key, so an old
// statement cannot remove it again.
func LeaveStatement(roomKey ed25519.PrivateKey, group [32]byte) [64]byte {
	var s [64]byte
	copy(s[:], ed25519.Sign(roomKey, append([]byte(leaveLabel), group[:]...)))
	return s
}

// Change is one membership change. Its layout (integers big-endian):
//
//	0    1  version = 1
//	1    1  kind
//	2   32  group ID
//	34   8  epoch number it opens (parent's + 1; 0 for create)
//	42  32  parent epoch hash (zero for create)
//	74   8  start period of the epoch it opens
//	82  32  signer's room key
//	114  2  payload length m
//	116  m  payload
//	116+m 64 Ed25519(signer's room key, "grapevine room change v1" || bytes[0:116+m])
//
// Payloads: create: member entry (160) || name length (1) || name; add:
// member entry (160); remove, admin: target's identity Ed25519 key (32);
// leave: target's identity key (32) || its leave statement (64); rename:
// name length (1) || name. Names are display names in normal form (SPEC §1).
type Change struct {
	Kind   Kind
	Group  [32]byte
	Epoch  uint64
	Parent Hash
	Start  keys.Period
	Signer [32]byte

	Member Member   // create, add
	Name   string   // create, rename
	Target [32]byte // remove, admin, leave
	Leave  [64]byte // leave

	Sig  [64]byte
	raw  []byte
	hash *Hash // cached once raw is final
}

const (
	changeVersion = 1
	changeHeader  = 116
	// MaxChangeSize bounds one encoded change: the largest payload is a
	// create with a 64-byte name.
	MaxChangeSize = changeHeader + memberSize + 1 + keys.MaxNameLen + 64
)

func (c *Change) payload() []byte {
	var p []byte
	switch c.Kind {
	case KindCreate:
		p = c.Member.append(p)
		p = append(p, byte(len(c.Name)))
		p = append(p, c.Name...)
	case KindAdd:
		p = c.Member.append(p)
	case KindRemove, KindAdmin:
		p = append(p, c.Target[:]...)
	case KindLeave:
		p = append(p, c.Target[:]...)
		p = append(p, c.Leave[:]...)
	case KindRename:
		p = append(p, byte(len(c.Name)))
		p = append(p, c.Name...)
	}
	return p
}

func (m Member) append(b []byte) []byte {
	b = append(b, m.Ed[:]...)
	b = append(b, m.X[:]...)
	b = append(b, m.Key[:]...)
	return append(b, m.Join[:]...)
}

// signed is the change without its signature.
func (c *Change) signed() []byte {
	p := c.payload()
	b := make([]byte, 0, changeHeader+len(p)+64)
	b = append(b, changeVersion, byte(c.Kind))
	b = append(b, c.Group[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Epoch)
	b = append(b, c.Parent[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Start))
	b = append(b, c.Signer[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...)
}

// Sign sets the signer and signs c with the signer's room key.
func (c *Change) Sign(roomKey ed25519.PrivateKey) {
	copy(c.Signer[:], roomKey.Public().(ed25519.PublicKey))
	msg := c.signed()
	copy(c.Sig[:], ed25519.Sign(roomKey, append([]byte(changeLabel), msg...)))
	c.raw, c.hash = append(msg, c.Sig[:]...), nil
}

// Marshal returns the encoded change (as signed).
func (c *Change) Marshal() []byte {
	if c.raw == nil {
		c.raw = append(c.signed(), c.Sig[:]...)
	}
	return c.raw
}

// Hash is the hash of the epoch the change opens.
func (c *Change) Hash() Hash {
	if c.hash != nil {
		return *c.hash
	}
	h := sha256.New()
	h.Write([]byte(epochLabel))
	h.Write(c.Marshal())
	var out Hash
	h.Sum(out[:0])
	c.hash = &out
	return out
}

// verifySig checks the signature under the signer's room key. Whether the
// signer may sign this change is the state's business (State.check).
func (c *Change) verifySig() bool {
	b := c.Marshal()
	return ed25519.Verify(c.Signer[:], append([]byte(changeLabel), b[:len(b)-64]...), c.Sig[:])
}

// ParseChange decodes one change strictly: known version and kind, the exact
// payload length for the kind, a name in normal form, a zero parent exactly
// for a create. It does not check the signature (see Room.Add).
func ParseChange(b []byte) (*Change, error) {
	if len(b) < changeHeader+64 || len(b) > MaxChangeSize {
		return nil, fmt.Errorf("%w change: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != changeVersion {
		return nil, fmt.Errorf("%w change: version %d", ErrMalformed, b[0])
	}
	c := &Change{Kind: Kind(b[1])}
	copy(c.Group[:], b[2:34])
	c.Epoch = binary.BigEndian.Uint64(b[34:42])
	copy(c.Parent[:], b[42:74])
	c.Start = keys.Period(binary.BigEndian.Uint64(b[74:82]))
	copy(c.Signer[:], b[82:114])
	m := int(binary.BigEndian.Uint16(b[114:116]))
	if len(b) != changeHeader+m+64 {
		return nil, fmt.Errorf("%w change: payload length %d in %d bytes", ErrMalformed, m, len(b))
	}
	p := b[changeHeader : changeHeader+m]
	copy(c.Sig[:], b[changeHeader+m:])
	if err := c.parsePayload(p); err != nil {
		return nil, fmt.Errorf("%w %s change: %w", ErrMalformed, c.Kind, err)
	}
	if (c.Kind == KindCreate) != (c.Parent == Hash{} && c.Epoch == 0) {
		return nil, fmt.Errorf("%w change: a create, and only a create, is epoch 0 with no parent", ErrMalformed)
	}
	c.raw = append([]byte(nil), b...)
	return c, nil
}

func (c *Change) parsePayload(p []byte) error {
	switch c.Kind {
	case KindCreate:
		if len(p) < memberSize+2 {
			return fmt.Errorf("payload of %d bytes", len(p))
		}
		c.Member = parseMember(p)
		return c.parseName(p[memberSize:])
	case KindAdd:
		if len(p) != memberSize {
			return fmt.Errorf("payload of %d bytes, want %d", len(p), memberSize)
		}
		c.Member = parseMember(p)
	case KindRemove, KindAdmin:
		if len(p) != 32 {
			return fmt.Errorf("payload of %d bytes, want 32", len(p))
		}
		copy(c.Target[:], p)
	case KindLeave:
		if len(p) != 96 {
			return fmt.Errorf("payload of %d bytes, want 96", len(p))
		}
		copy(c.Target[:], p)
		copy(c.Leave[:], p[32:])
	case KindRename:
		return c.parseName(p)
	default:
		return fmt.Errorf("unknown kind")
	}
	return nil
}

func parseMember(p []byte) Member {
	var m Member
	copy(m.Ed[:], p[0:32])
	copy(m.X[:], p[32:64])
	copy(m.Key[:], p[64:96])
	copy(m.Join[:], p[96:160])
	return m
}

func (c *Change) parseName(p []byte) error {
	if len(p) < 1 {
		return fmt.Errorf("no name")
	}
	if int(p[0]) != len(p)-1 {
		return fmt.Errorf("name length %d in %d bytes", p[0], len(p))
	}
	c.Name = string(p[1:])
	if err := keys.CheckName(c.Name); err != nil {
		return fmt.Errorf("invalid name: %w", err)
	}
	return nil
}
