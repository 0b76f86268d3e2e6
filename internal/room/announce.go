package room

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// Announcements (SPEC §15.14): a channel only its owner, and delegates the
// owner signs, can post to; everyone can read and carry it, and every relay
// checks each post before storing it. So the owner's key, the signer's
// delegation and the content are in the clear (a relay must see the key to
// verify, and anyone who has the key can read): an announcement is public
// and names its channel to everyone.
//
//	tag   = SHA-256("grapevine announce tag" || O || be64(p))[0:16]       p: the period it was written in
//	body  = O (32) || flags (1) [|| K (32) || cert expiry (4) || cert (64)] || padded content || sig (64)
//	cert  = Ed25519(O, "grapevine announce delegate v1" || O || K || be32(cert expiry))
//	sig   = Ed25519(signer, "grapevine announce v1" || 0x23 || be32(expiry) || tag || body without sig)
//
// flags: bit 0 set when a delegate K signs (then the delegation follows);
// other bits zero. A delegate's post may not expire after its delegation.
const (
	announceLabel   = "grapevine announce v1"
	delegateLabel   = "grapevine announce delegate v1"
	flagDelegate    = 1
	delegationSize  = 32 + 4 + 64
	minAnnounceBody = 32 + 1 + 1 + sigSize
)

// Owner derives an announcement channel's owner key from an identity and
// a local name for the channel: HKDF(identity seed, "grapevine announce
// owner" || name) as an Ed25519 seed.
func Owner(id *keys.Identity, name string) ed25519.PrivateKey {
	seed := kdf(id.Sign.Seed(), "grapevine announce owner"+name)
	return ed25519.NewKeyFromSeed(seed[:])
}

// Delegation lets key K post to owner O's channel until Expiry.
type Delegation struct {
	Owner  [32]byte
	Key    [32]byte
	Expiry uint32
	Sig    [64]byte
}

func delegationMessage(o, k [32]byte, expiry uint32) []byte {
	b := append([]byte(delegateLabel), o[:]...)
	b = append(b, k[:]...)
	return binary.BigEndian.AppendUint32(b, expiry)
}

// Delegate signs a delegation of key to the owner's channel until expiry.
func Delegate(owner ed25519.PrivateKey, key ed25519.PublicKey, expiry uint32) Delegation {
	d := Delegation{Expiry: expiry}
	copy(d.Owner[:], owner.Public().(ed25519.PublicKey))
	copy(d.Key[:], key)
	copy(d.Sig[:], ed25519.Sign(owner, delegationMessage(d.Owner, d.Key, expiry)))
	return d
}

// AnnounceTag is owner O's tag in period p: anyone who knows O computes it.
func AnnounceTag(owner [32]byte, p keys.Period) (tag [16]byte) {
	h := sha256.New()
	h.Write([]byte("grapevine announce tag"))
	h.Write(owner[:])
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(p)))
	copy(tag[:], h.Sum(nil))
	return tag
}

func announceSigned(expiry uint32, tag [16]byte, body []byte) []byte {
	b := append([]byte(announceLabel), envelope.Version<<4|byte(envelope.KindAnnounce))
	b = binary.BigEndian.AppendUint32(b, expiry)
	b = append(b, tag[:]...)
	return append(b, body...)
}

// Announce writes an announcement of owner's channel signed by signer: the
// owner's key itself (d nil) or a delegate's key with its delegation. Not
// stamped yet: Mint does that.
func Announce(owner [32]byte, signer ed25519.PrivateKey, d *Delegation, now keys.Period, content []byte, expiry uint32, hops uint8) (*envelope.Envelope, error) {
	body := append([]byte{}, owner[:]...)
	if d != nil {
		if d.Owner != owner || !ed25519.PublicKey(d.Key[:]).Equal(signer.Public()) {
			return nil, fmt.Errorf("failed to announce: the delegation is not for this owner and signer")
		}
		if expiry > d.Expiry {
			return nil, fmt.Errorf("failed to announce: the post would expire after the delegation (%d > %d)", expiry, d.Expiry)
		}
		body = append(body, flagDelegate)
		body = append(body, d.Key[:]...)
		body = binary.BigEndian.AppendUint32(body, d.Expiry)
		body = append(body, d.Sig[:]...)
	} else {
		if !ed25519.PublicKey(owner[:]).Equal(signer.Public()) {
			return nil, fmt.Errorf("failed to announce: the signer is not the owner and has no delegation")
		}
		body = append(body, 0)
	}
	padded, err := padPublic(content, len(body)+sigSize)
	if err != nil {
		return nil, fmt.Errorf("failed to announce: %w", err)
	}
	body = append(body, padded...)
	tag := AnnounceTag(owner, now)
	body = append(body, ed25519.Sign(signer, announceSigned(expiry, tag, body))...)
	return &envelope.Envelope{Kind: envelope.KindAnnounce, Hops: hops, Expiry: expiry, Tag: tag, Body: body}, nil
}

// Announcement is a verified announcement.
type Announcement struct {
	Owner   [32]byte
	Signer  [32]byte // the owner, or a delegate
	Content []byte
}

// VerifyAnnouncement checks an announcement as every relay does before
// carrying it: its layout, the owner's delegation if a delegate signed,
// and the signature over the whole envelope but the hop budget and the
// stamp nonce. It needs no key but what the envelope carries.
func VerifyAnnouncement(e *envelope.Envelope) (*Announcement, error) {
	b := e.Body
	if e.Kind != envelope.KindAnnounce || len(b) < minAnnounceBody {
		return nil, fmt.Errorf("failed to verify announcement: %w: body of %d bytes", ErrMalformed, len(b))
	}
	a := &Announcement{}
	copy(a.Owner[:], b[:32])
	a.Signer = a.Owner
	flags, rest := b[32], b[33:len(b)-sigSize]
	switch flags {
	case 0:
	case flagDelegate:
		if len(rest) < delegationSize+1 {
			return nil, fmt.Errorf("failed to verify announcement: %w: truncated delegation", ErrMalformed)
		}
		var d Delegation
		d.Owner = a.Owner
		copy(d.Key[:], rest[:32])
		d.Expiry = binary.BigEndian.Uint32(rest[32:36])
		copy(d.Sig[:], rest[36:100])
		if !ed25519.Verify(a.Owner[:], delegationMessage(d.Owner, d.Key, d.Expiry), d.Sig[:]) {
			return nil, fmt.Errorf("failed to verify announcement: %w: the delegation is not the owner's", ErrSignature)
		}
		if e.Expiry > d.Expiry {
			return nil, fmt.Errorf("failed to verify announcement: %w: it expires after its delegation", ErrInvalid)
		}
		a.Signer = d.Key
		rest = rest[delegationSize:]
	default:
		return nil, fmt.Errorf("failed to verify announcement: %w: flags %#x", ErrMalformed, flags)
	}
	content, err := envelope.Unpad(rest)
	if err != nil {
		return nil, fmt.Errorf("failed to verify announcement: %w: %v", ErrMalformed, err)
	}
	if !ed25519.Verify(a.Signer[:], announceSigned(e.Expiry, e.Tag, b[:len(b)-sigSize]), b[len(b)-sigSize:]) {
		return nil, fmt.Errorf("failed to verify announcement: %w", ErrSignature)
	}
	a.Content = content
	return a, nil
}

// DelegationSize is the length of an encoded delegation.
const DelegationSize = 32 + 32 + 4 + 64

// Marshal encodes a delegation: owner (32) || key (32) || be32(expiry) ||
// signature (64), what an owner hands its delegate.
func (d Delegation) Marshal() []byte {
	b := append(append(make([]byte, 0, DelegationSize), d.Owner[:]...), d.Key[:]...)
	b = binary.BigEndian.AppendUint32(b, d.Expiry)
	return append(b, d.Sig[:]...)
}

// ParseDelegation decodes a delegation and checks the owner's signature.
func ParseDelegation(b []byte) (Delegation, error) {
	var d Delegation
	if len(b) != DelegationSize {
		return d, fmt.Errorf("failed to parse delegation: %w: %d bytes, want %d", ErrMalformed, len(b), DelegationSize)
	}
	copy(d.Owner[:], b)
	copy(d.Key[:], b[32:])
	d.Expiry = binary.BigEndian.Uint32(b[64:])
	copy(d.Sig[:], b[68:])
	if !ed25519.Verify(d.Owner[:], delegationMessage(d.Owner, d.Key, d.Expiry), d.Sig[:]) {
		return d, fmt.Errorf("failed to parse delegation: %w", ErrSignature)
	}
	return d, nil
}
