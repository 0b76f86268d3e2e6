package keys

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"io"
)

// First contact (X3DH-like, without a server, modelled on Noise's X
// pattern). The initiator A holds B's invite: identity IK_B and one-time
// prekey PK_B. A draws an ephemeral key EK_A and computes
//
//	IDK = HKDF(DH(EK_A, IK_B) || DH(EK_A, PK_B), info = "grapevine intro identity v1" ||
//	      X_B || PK_B || EK_A)                                        (seals A's identity)
//	IKM = DH(IK_A, PK_B) || DH(EK_A, IK_B) || DH(EK_A, PK_B) || DH(IK_A, IK_B)
//	SK  = HKDF(IKM, info = "grapevine first contact v1" ||
//	      Ed_A || X_A || Ed_B || X_B || PK_B || EK_A)                  (everything after)
//
// B learns EK_A from the envelope, opens A's identity under IDK, then computes
// SK. The four DHs give mutual authentication (IK·IK, IK·PK), forward secrecy
// once EK_A and PK_B are deleted, and a distinct SK for every use of a reused
// prekey, because EK_A is fresh each time. A's identity never travels in clear.

// FirstContact is the initiator's result.
type FirstContact struct {
	SK          [32]byte // the session key both sides derive
	IdentityKey [32]byte // IDK: seals the initiator's identity in the intro
	EK          [32]byte // the ephemeral public key; its private key is already gone
}

// Initiate runs the initiator's side with a fresh ephemeral key.
func Initiate(self *Identity, inv *Invite, rand io.Reader) (*FirstContact, error) {
	eph, err := NewX25519(rand)
	if err != nil {
		return nil, fmt.Errorf("failed to generate ephemeral key: %w", err)
	}
	return InitiateWith(self, inv, eph)
}

// InitiateWith is Initiate with a given ephemeral key (test vectors).
func InitiateWith(self *Identity, inv *Invite, eph *ecdh.PrivateKey) (*FirstContact, error) {
	fc := &FirstContact{}
	copy(fc.EK[:], eph.PublicKey().Bytes())
	ikB, err1 := ecdh.X25519().NewPublicKey(inv.Identity.DH[:])
	pkB, err2 := ecdh.X25519().NewPublicKey(inv.Prekey[:])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("invalid key in invite")
	}
	ephDH, err := dhs(eph, ikB, eph, pkB)
	if err != nil {
		return nil, err
	}
	fc.IdentityKey = identityKey(ephDH, inv.Identity.DH, inv.Prekey, fc.EK)
	staticDH, err := dhs(self.DH, pkB, self.DH, ikB)
	if err != nil {
		return nil, err
	}
	ikm := append(append(staticDH[:32:32], ephDH...), staticDH[32:]...)
	fc.SK = firstContactKey(ikm, self.Public(), inv.Identity, inv.Prekey, fc.EK)
	return fc, nil
}

// RespondIdentityKey is the invite owner's first step: the key that opens the
// initiator's identity.
func RespondIdentityKey(self *Identity, prekey *ecdh.PrivateKey, ek [32]byte) ([32]byte, error) {
	ekA, err := ecdh.X25519().NewPublicKey(ek[:])
	if err != nil {
		return [32]byte{}, fmt.Errorf("invalid ephemeral key in first-contact envelope")
	}
	ephDH, err := dhs(self.DH, ekA, prekey, ekA)
	if err != nil {
		return [32]byte{}, err
	}
	return identityKey(ephDH, self.Public().DH, pub32(prekey), ek), nil
}

// Respond is the invite owner's second step, once it knows the initiator.
func Respond(self *Identity, prekey *ecdh.PrivateKey, initiator Public, ek [32]byte) ([32]byte, error) {
	var sk [32]byte
	ikA, err1 := ecdh.X25519().NewPublicKey(initiator.DH[:])
	ekA, err2 := ecdh.X25519().NewPublicKey(ek[:])
	if err1 != nil || err2 != nil {
		return sk, fmt.Errorf("invalid key in first-contact envelope")
	}
	ikm, err := dhs(prekey, ikA, self.DH, ekA, prekey, ekA, self.DH, ikA)
	if err != nil {
		return sk, err
	}
	return firstContactKey(ikm, initiator, self.Public(), pub32(prekey), ek), nil
}

func pub32(k *ecdh.PrivateKey) [32]byte {
	var p [32]byte
	copy(p[:], k.PublicKey().Bytes())
	return p
}

func identityKey(ephDH []byte, ikB, pk, ek [32]byte) [32]byte {
	var k [32]byte
	copy(k[:], kdf(ephDH, "grapevine intro identity v1"+string(ikB[:])+string(pk[:])+string(ek[:]), 32))
	return k
}

// dhs computes DH over consecutive (private, public) pairs and concatenates.
func dhs(pairs ...any) ([]byte, error) {
	var out []byte
	for i := 0; i < len(pairs); i += 2 {
		s, err := pairs[i].(*ecdh.PrivateKey).ECDH(pairs[i+1].(*ecdh.PublicKey))
		if err != nil { // an all-zero shared secret: a low-order point
			return nil, fmt.Errorf("failed key agreement: %w", err)
		}
		out = append(out, s...)
	}
	return out, nil
}

func firstContactKey(ikm []byte, a, b Public, pk, ek [32]byte) [32]byte {
	info := "grapevine first contact v1" + string(a.Bytes()) + string(b.Bytes()) + string(pk[:]) + string(ek[:])
	var sk [32]byte
	copy(sk[:], kdf(ikm, info, 32))
	return sk
}

// IntroSlots is how many tags each outstanding invite accepts first-contact
// envelopes under. The initiator picks one at random, so two strangers'
// requests to one invite rarely share a tag.
const IntroSlots = 256

// IntroTag is the tag of a first-contact envelope sent to an invite:
// HMAC-SHA256(HKDF(secret, "grapevine intro tag v1"), be16(slot))[:16].
func IntroTag(secret [SecretSize]byte, slot uint16) [16]byte {
	var s [2]byte
	binary.BigEndian.PutUint16(s[:], slot)
	var t [16]byte
	copy(t[:], prf(kdf(secret[:], "grapevine intro tag v1", 32), s[:]))
	return t
}

// IntroMask hides EK_A in a first-contact envelope, so the body is uniformly
// random to anyone without the invite: prefix = EK_A XOR mask with
// mask = HMAC-SHA256(HKDF(secret, "grapevine intro mask v1"), tag).
func IntroMask(secret [SecretSize]byte, tag [16]byte) [32]byte {
	var m [32]byte
	copy(m[:], prf(kdf(secret[:], "grapevine intro mask v1", 32), tag[:]))
	return m
}

// IntroSealKey and IntroReceiptSecret key the first-contact envelope itself.
func IntroSealKey(sk [32]byte) [32]byte {
	var k [32]byte
	copy(k[:], kdf(sk[:], "grapevine intro message v1", 32))
	return k
}

func IntroReceiptSecret(sk [32]byte) [16]byte {
	var s [16]byte
	copy(s[:], kdf(sk[:], "grapevine intro receipt v1", 16))
	return s
}

// Direction names one of the two chains a first contact creates.
type Direction byte

const (
	FromInitiator Direction = 1 // initiator → invite owner
	FromResponder Direction = 2 // invite owner → initiator
)

// NewChain derives the root of one direction's chain, starting at period p0
// (the initiator's period when it made first contact, carried in the intro).
func NewChain(sk [32]byte, dir Direction, p0 uint32) Chain {
	label := "grapevine chain initiator v1"
	if dir == FromResponder {
		label = "grapevine chain responder v1"
	}
	var c Chain
	c.Period = p0
	copy(c.Key[:], kdf(sk[:], label, 32))
	return c
}

// xor32 returns a XOR b.
func xor32(a, b [32]byte) [32]byte {
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}

// MaskEK and UnmaskEK apply IntroMask.
func MaskEK(ek [32]byte, secret [SecretSize]byte, tag [16]byte) [32]byte {
	return xor32(ek, IntroMask(secret, tag))
}
