package keys

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// An invite is what `grapevine id` shows as a link and a QR code. Layout,
// version 2 (integers big-endian):
//
//	0     1   version (2)
//	1    32   Ed25519 public key
//	33   32   X25519 identity public key
//	65   32   X25519 one-time prekey
//	97   16   invite secret (keys the tags of first-contact envelopes)
//	113   4   expiry of the prekey, Unix seconds
//	117   1   name length n (1..64)
//	118   n   name, UTF-8
//	118+n 64  Ed25519 signature over "grapevine invite v2" || bytes [0, 118+n)
//
// The link is "grapevine:" followed by the lower-case, unpadded base32 of those bytes.
const (
	InviteVersion = 2
	SecretSize    = 16
	inviteFixed   = 118
	inviteLabel   = "grapevine invite v2"
	LinkScheme    = "grapevine:"
)

// Invite is a decoded, signature-checked invite.
type Invite struct {
	Identity Public
	Prekey   [32]byte
	Secret   [SecretSize]byte
	Expiry   uint32
	Name     string
	Sig      [64]byte
}

// Prekey is the private side of an invite, kept by its owner until it expires.
type Prekey struct {
	Priv   *ecdh.PrivateKey
	Secret [SecretSize]byte
	Expiry uint32
}

// Pub returns the prekey's public key.
func (pk *Prekey) Pub() [32]byte {
	var p [32]byte
	copy(p[:], pk.Priv.PublicKey().Bytes())
	return p
}

// NewInvite signs an invite for id carrying prekey pk.
func NewInvite(id *Identity, pk *Prekey) *Invite {
	inv := &Invite{Identity: id.Public(), Prekey: pk.Pub(), Secret: pk.Secret, Expiry: pk.Expiry, Name: id.Name}
	sig := ed25519.Sign(id.Sign, append([]byte(inviteLabel), inv.signed()...))
	copy(inv.Sig[:], sig)
	return inv
}

func (inv *Invite) signed() []byte {
	b := make([]byte, 0, inviteFixed+len(inv.Name))
	b = append(b, InviteVersion)
	b = append(b, inv.Identity.Sign...)
	b = append(b, inv.Identity.DH[:]...)
	b = append(b, inv.Prekey[:]...)
	b = append(b, inv.Secret[:]...)
	b = binary.BigEndian.AppendUint32(b, inv.Expiry)
	b = append(b, byte(len(inv.Name)))
	return append(b, inv.Name...)
}

// Marshal encodes the invite.
func (inv *Invite) Marshal() []byte { return append(inv.signed(), inv.Sig[:]...) }

// Link is the invite as a grapevine: link.
func (inv *Invite) Link() string {
	return LinkScheme + strings.ToLower(b32.EncodeToString(inv.Marshal()))
}

// ErrNotInvite is wrapped by every ParseLink and ParseInvite failure.
var ErrNotInvite = errors.New("not a valid grapevine invite")

// ParseLink decodes a grapevine: link (either case; surrounding space ignored).
func ParseLink(s string) (*Invite, error) {
	s = strings.TrimSpace(s)
	if len(s) < len(LinkScheme) || !strings.EqualFold(s[:len(LinkScheme)], LinkScheme) {
		shown := s
		if len(shown) > 24 {
			shown = shown[:24] + "…"
		}
		return nil, fmt.Errorf("%w: %q does not start with %q — copy the whole link your contact's grapevine shows (grapevine id), or scan their QR code", ErrNotInvite, shown, LinkScheme)
	}
	raw, err := b32.DecodeString(strings.ToUpper(s[len(LinkScheme):]))
	if err != nil {
		return nil, fmt.Errorf("%w: the link holds characters an invite never has (after %q only the letters a–z and the digits 2–7): was it copied whole and unchanged?", ErrNotInvite, LinkScheme)
	}
	return ParseInvite(raw)
}

// ParseInvite decodes and verifies the binary form. It does not check expiry.
func ParseInvite(b []byte) (*Invite, error) {
	if len(b) < inviteFixed+64 {
		return nil, fmt.Errorf("%w: the link is cut short (it holds %d bytes, an invite at least %d): copy all of it", ErrNotInvite, len(b), inviteFixed+1+64)
	}
	if b[0] != InviteVersion {
		return nil, fmt.Errorf("%w: it is an invite of version %d, and this grapevine reads version %d: one of you needs another grapevine (grapevine version)", ErrNotInvite, b[0], InviteVersion)
	}
	n := int(b[117])
	if len(b) != inviteFixed+n+64 {
		return nil, fmt.Errorf("%w: the link is cut short or has extra characters (%d bytes where its name says %d): copy all of it, and nothing more", ErrNotInvite, len(b), inviteFixed+n+64)
	}
	inv := &Invite{Identity: Public{Sign: ed25519.PublicKey(append([]byte(nil), b[1:33]...))}}
	copy(inv.Identity.DH[:], b[33:65])
	copy(inv.Prekey[:], b[65:97])
	copy(inv.Secret[:], b[97:113])
	inv.Expiry = binary.BigEndian.Uint32(b[113:117])
	inv.Name = string(b[inviteFixed : inviteFixed+n])
	copy(inv.Sig[:], b[inviteFixed+n:])
	if err := CheckName(inv.Name); err != nil {
		return nil, fmt.Errorf("%w: the name in it is not acceptable: %v", ErrNotInvite, err)
	}
	if !ed25519.Verify(inv.Identity.Sign, append([]byte(inviteLabel), b[:inviteFixed+n]...), inv.Sig[:]) {
		return nil, fmt.Errorf("%w: it was altered or mistyped (its signature does not match what it says): ask your contact for the link again", ErrNotInvite)
	}
	return inv, nil
}

// ExpiresAt is the prekey expiry as a time.
func (inv *Invite) ExpiresAt() time.Time { return time.Unix(int64(inv.Expiry), 0).UTC() }
