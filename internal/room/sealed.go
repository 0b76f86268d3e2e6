package room

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// SealedWelcomes give an epoch's secret to members its signer has no
// pairwise session with — members another admin added — so that a removal
// never waits on who is whose contact (SPEC §15.4). They ride in one group
// message of the epoch's parent, which every member but a newcomer holds
// the keys of; the group message's signature (§15.5) is the signer's, so
// they need no signature of their own. Each box is the secret sealed with
// HPKE (RFC 9180, as MLS seals its welcomes: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, ChaCha20-Poly1305, base mode) to the member's identity
// X25519 key, with
//
//	info = "grapevine room sealed welcome v1" || G || EH || X_member
//
// Boxes name nobody: a member tries each (one X25519 each). Layout:
//
//	0   1  version = 1
//	1  32  group ID G
//	33 32  epoch hash EH
//	65  2  change length c
//	67  c  EH's change
//	…   2  number of boxes k, 1 ≤ k ≤ MaxSealedBoxes
//	…  k × 80  boxes: HPKE encapsulated key (32) || ciphertext of GS (48)
type SealedWelcomes struct {
	Group  [32]byte
	Epoch  Hash
	Change []byte
	Boxes  [][]byte
}

const (
	sealedVersion = 1
	sealedHeader  = 67
	sealedBoxSize = 32 + 32 + 16
	sealedLabel   = "grapevine room sealed welcome v1"
	// MaxSealedBoxes bounds the boxes of one SealedWelcomes: 200 boxes
	// keep the group message near 17 KB.
	MaxSealedBoxes = 200
)

// ErrNotForMe is returned by OpenSealed when no box opens with my key.
var ErrNotForMe = errors.New("no box for me")

func sealedSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()
}

func sealedInfo(group [32]byte, h Hash, x [32]byte) []byte {
	info := append([]byte(sealedLabel), group[:]...)
	info = append(info, h[:]...)
	return append(info, x[:]...)
}

// SealWelcomes seals epoch h's secret to each member X25519 key in to
// (at most MaxSealedBoxes); I must hold the secret, so be h's signer before
// ForgetSecret. HPKE draws its ephemeral keys from crypto/rand (Go's hpke
// takes no reader), the one randomness this package does not take from
// its caller. The boxes are sorted, so their order says nothing about to.
func (r *Room) SealWelcomes(h Hash, to [][32]byte) (*SealedWelcomes, error) {
	e := r.epochs[h]
	c := r.changes[h]
	switch {
	case e == nil || !e.hasSec || c == nil:
		return nil, fmt.Errorf("failed to seal welcomes: %w: the epoch's secret is not held", ErrNoKey)
	case len(to) == 0 || len(to) > MaxSealedBoxes:
		return nil, fmt.Errorf("failed to seal welcomes: %d members, want 1 to %d", len(to), MaxSealedBoxes)
	}
	kem, kdf, aead := sealedSuite()
	sw := &SealedWelcomes{Group: r.Group, Epoch: h, Change: c.Marshal()}
	for _, x := range to {
		pk, err := kem.NewPublicKey(x[:])
		if err != nil {
			return nil, fmt.Errorf("failed to seal a welcome: %w", err)
		}
		box, err := hpke.Seal(pk, kdf, aead, sealedInfo(r.Group, h, x), e.secret[:])
		if err != nil {
			return nil, fmt.Errorf("failed to seal a welcome: %w", err)
		}
		sw.Boxes = append(sw.Boxes, box)
	}
	slices.SortFunc(sw.Boxes, func(a, b []byte) int { return slices.Compare(a, b) })
	return sw, nil
}

// OpenSealed takes sealed welcomes that arrived in a group message sent by
// the identity from: it adds the epoch's change, then — if from signed it
// and a box opens with my identity key me — accepts the secret as from a
// welcome (AcceptWelcome's rules). ErrNotForMe says no box was mine.
func (r *Room) OpenSealed(sw *SealedWelcomes, from [32]byte, me *ecdh.PrivateKey) error {
	if sw.Group != r.Group {
		return fmt.Errorf("failed to open sealed welcomes: %w", ErrOtherRoom)
	}
	if c, err := ParseChange(sw.Change); err != nil {
		return fmt.Errorf("failed to open sealed welcomes: %w", err)
	} else if c.Hash() != sw.Epoch {
		return fmt.Errorf("failed to open sealed welcomes: %w: the change is not epoch %x...'s", ErrMalformed, sw.Epoch[:4])
	}
	if _, err := r.Add(sw.Change); err != nil && !errors.Is(err, ErrDuplicate) {
		return fmt.Errorf("failed to open sealed welcomes: %w", err)
	}
	kem, kdf, aead := sealedSuite()
	sk, err := kem.NewPrivateKey(me.Bytes())
	if err != nil {
		return fmt.Errorf("failed to open sealed welcomes: %w", err)
	}
	info := sealedInfo(r.Group, sw.Epoch, [32]byte(me.PublicKey().Bytes()))
	for _, box := range sw.Boxes {
		gs, err := hpke.Open(sk, kdf, aead, info, box)
		if err != nil {
			continue // another member's
		}
		return r.acceptSecret(sw.Epoch, [32]byte(gs), from)
	}
	return ErrNotForMe
}

// Marshal encodes sw.
func (sw *SealedWelcomes) Marshal() []byte {
	b := make([]byte, 0, sealedHeader+len(sw.Change)+2+len(sw.Boxes)*sealedBoxSize)
	b = append(b, sealedVersion)
	b = append(b, sw.Group[:]...)
	b = append(b, sw.Epoch[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sw.Change)))
	b = append(b, sw.Change...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sw.Boxes)))
	for _, box := range sw.Boxes {
		b = append(b, box...)
	}
	return b
}

// ParseSealedWelcomes decodes sealed welcomes strictly: known version, a
// change of a plausible size, 1 to MaxSealedBoxes boxes of 80 bytes, nothing
// after the last. The change is checked when applied (OpenSealed).
func ParseSealedWelcomes(b []byte) (*SealedWelcomes, error) {
	if len(b) < sealedHeader || len(b) > envelope.MaxSize {
		return nil, fmt.Errorf("%w sealed welcomes: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != sealedVersion {
		return nil, fmt.Errorf("%w sealed welcomes: version %d", ErrMalformed, b[0])
	}
	sw := &SealedWelcomes{}
	copy(sw.Group[:], b[1:33])
	copy(sw.Epoch[:], b[33:65])
	c := int(binary.BigEndian.Uint16(b[65:67]))
	rest := b[sealedHeader:]
	if c < changeHeader+64 || c > MaxChangeSize || len(rest) < c+2 {
		return nil, fmt.Errorf("%w sealed welcomes: a change of %d bytes in %d", ErrMalformed, c, len(rest))
	}
	sw.Change = append([]byte(nil), rest[:c]...)
	rest = rest[c:]
	k := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	switch {
	case k == 0 || k > MaxSealedBoxes:
		return nil, fmt.Errorf("%w sealed welcomes: %d boxes, want 1 to %d", ErrMalformed, k, MaxSealedBoxes)
	case len(rest) != k*sealedBoxSize:
		return nil, fmt.Errorf("%w sealed welcomes: %d bytes for %d boxes of %d", ErrMalformed, len(rest), k, sealedBoxSize)
	}
	for i := range k {
		sw.Boxes = append(sw.Boxes, append([]byte(nil), rest[i*sealedBoxSize:(i+1)*sealedBoxSize]...))
	}
	return sw, nil
}
