package keys

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// First contact (X3DH-like, without a server). The initiator A holds B's
// invite: identity IK_B and one-time prekey PK_B. A draws an ephemeral key
// EK_A and computes
//
//	IDK = HKDF(DH(EK_A, IK_B) || DH(EK_A, PK_B), "grapevine v2 intro identity" ||
//	      X_B || PK_B || EK_A)                                          (seals A's identity)
//	IKM = DH(IK_A, PK_B) || DH(EK_A, IK_B) || DH(EK_A, PK_B) || DH(IK_A, IK_B)
//	SK  = HKDF(IKM, "grapevine v2 first contact" || Ed_A || X_A || Ed_B || X_B || PK_B || EK_A)
//
// A's identity travels sealed under IDK with a signature of its Ed25519 key
// over its X25519 key, so B knows the two belong together (identity
// binding); the signature names neither B nor the session, so it proves
// nothing about whom A wrote to. The request also carries A's first ratchet
// key and an ML-KEM-768 encapsulation key: B's first epoch answers both, so
// the conversation is forward-secret against the prekey and hybrid
// post-quantum from B's first envelope on (SPEC §3).

// SenderSize is the sealed identity of a request: Ed || X || signature.
const SenderSize = 32 + 32 + ed25519.SignatureSize

const bindingLabel = "grapevine v2 identity binding"

// Binding is the initiator's sealed identity: its public keys and its
// Ed25519 signature over its X25519 key.
func (id *Identity) Binding() []byte {
	p := id.Public()
	b := append(p.Bytes(), ed25519.Sign(id.Sign, append([]byte(bindingLabel), p.DH[:]...))...)
	return b
}

// ParseBinding checks an initiator's sealed identity.
func ParseBinding(b []byte) (Public, error) {
	var p Public
	if len(b) != SenderSize {
		return p, fmt.Errorf("identity of %d bytes, want %d", len(b), SenderSize)
	}
	p.Sign = ed25519.PublicKey(append([]byte(nil), b[:32]...))
	copy(p.DH[:], b[32:64])
	if !ed25519.Verify(p.Sign, append([]byte(bindingLabel), p.DH[:]...), b[64:]) {
		return p, errors.New("the sender's signing key does not vouch for its key agreement key")
	}
	return p, nil
}

// FirstContact is the initiator's result.
type FirstContact struct {
	SK          [32]byte // the first-contact key both sides derive
	IdentityKey [32]byte // IDK: seals the initiator's identity in the request
	EK          [32]byte // the ephemeral public key; its private key is already gone
	Ratchet     [32]byte // the initiator's first ratchet public key (in the request)
	KEMKey      []byte   // its ML-KEM-768 encapsulation key (in the request)
	Session     *Session // the initiator's session, epoch 0 ready to send
}

// Initiate runs the initiator's side at period p0 with fresh keys from rand.
func Initiate(self *Identity, inv *Invite, p0 Period, rand io.Reader) (*FirstContact, error) {
	eph, err := NewX25519(rand)
	if err != nil {
		return nil, fmt.Errorf("failed to generate ephemeral key: %w", err)
	}
	return InitiateWith(self, inv, p0, eph, rand)
}

// InitiateWith is Initiate with a given ephemeral key (test vectors); the
// ratchet and ML-KEM keys still come from rand.
func InitiateWith(self *Identity, inv *Invite, p0 Period, eph *ecdh.PrivateKey, rand io.Reader) (*FirstContact, error) {
	fc := &FirstContact{}
	copy(fc.EK[:], eph.PublicKey().Bytes())
	ikB, err1 := ecdh.X25519().NewPublicKey(inv.Identity.DH[:])
	pkB, err2 := ecdh.X25519().NewPublicKey(inv.Prekey[:])
	if err1 != nil || err2 != nil {
		return nil, errors.New("invalid key in invite")
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
	if err := fc.startSession(p0, rand); err != nil {
		return nil, err
	}
	return fc, nil
}

func (fc *FirstContact) startSession(p0 Period, rand io.Reader) error {
	kp, err := newRatchetKey(rand)
	if err != nil {
		return err
	}
	seed, ek, err := newKEM(rand)
	if err != nil {
		return err
	}
	fc.Ratchet, fc.KEMKey = kp.Pub, ek
	fc.Session = NewInitiatorSession(fc.SK, p0, kp, seed)
	return nil
}

// RespondIdentityKey is the invite owner's first step: the key that opens the
// initiator's identity.
func RespondIdentityKey(self *Identity, prekey *ecdh.PrivateKey, ek [32]byte) ([32]byte, error) {
	ekA, err := ecdh.X25519().NewPublicKey(ek[:])
	if err != nil {
		return [32]byte{}, errors.New("invalid ephemeral key in first-contact envelope")
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
		return sk, errors.New("invalid key in first-contact envelope")
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
	copy(k[:], kdf(ephDH, "grapevine v2 intro identity"+string(ikB[:])+string(pk[:])+string(ek[:]), 32))
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
	info := "grapevine v2 first contact" + string(a.Bytes()) + string(b.Bytes()) + string(pk[:]) + string(ek[:])
	var sk [32]byte
	copy(sk[:], kdf(ikm, info, 32))
	return sk
}

// Sessions from a first-contact key SK (SPEC §4.1):
//
//	RK_0        = HKDF(SK, "grapevine v2 root")
//	session ID  = HKDF(SK, "grapevine v2 session id", 8)
//	epoch 0     (the initiator's) ES = HKDF(SK, "grapevine v2 epoch 0"),
//	            TS = HKDF(SK, "grapevine v2 epoch 0 tags")
//	epoch 1     (the responder's) TS = HKDF(SK, "grapevine v2 epoch 1 tags");
//	            its ES comes from the responder's first root step
func sessionBase(sk [32]byte, p0 Period) *Session {
	s := &Session{KEMPeriod: p0}
	copy(s.RK[:], kdf(sk[:], "grapevine v2 root", 32))
	copy(s.ID[:], kdf(sk[:], "grapevine v2 session id", 8))
	s.Links = [][32]byte{linkBase(s.RK)}
	return s
}

func epochZero(sk [32]byte, p0 Period) (mask [32]byte, c chain, periods PeriodChain) {
	ts, es := kdf(sk[:], "grapevine v2 epoch 0 tags", 32), kdf(sk[:], "grapevine v2 epoch 0", 32)
	return maskKeyOf(ts), newChain(es, ts), newPeriodChain(ts, p0)
}

func epochOne(sk [32]byte, p0 Period) *NextEpoch {
	var ts [32]byte
	copy(ts[:], kdf(sk[:], "grapevine v2 epoch 1 tags", 32))
	return newNextEpoch(1, ts, p0)
}

// NewInitiatorSession is the initiator's session: epoch 0 needs no prefix
// (its ratchet key travels in the request), and it watches the responder's
// epoch 1. kemSeed is the ML-KEM key whose encapsulation key the request
// carries; p0 is the period of the first contact.
func NewInitiatorSession(sk [32]byte, p0 Period, self ratchetKP, kemSeed []byte) *Session {
	s := sessionBase(sk, p0)
	mask, c, periods := epochZero(sk, p0)
	s.Self, s.DK = self, kemSeed
	s.Send = &SendEpoch{N: 0, Pub: self.Pub, Start: p0, Mask: mask, Chain: c, Periods: periods, Acked: true}
	s.Next = epochOne(sk, p0)
	return s
}

// NewResponderSession is the invite owner's session after opening a request
// that carried the initiator's ratchet key and ML-KEM key: it receives
// epoch 0, and its first envelope opens epoch 1.
func NewResponderSession(sk [32]byte, p0 Period, peerRatchet [32]byte, peerKEM []byte) (*Session, error) {
	if len(peerKEM) != kemEKSize {
		return nil, fmt.Errorf("ML-KEM key of %d bytes, want %d", len(peerKEM), kemEKSize)
	}
	s := sessionBase(sk, p0)
	mask, c, periods := epochZero(sk, p0)
	s.Peer, s.Answer, s.PeerEK = peerRatchet, true, append([]byte(nil), peerKEM...)
	s.Recv = []RecvEpoch{{N: 0, Pub: peerRatchet, Start: p0, Mask: mask, Chain: c, Periods: periods}}
	s.Mine = epochOne(sk, p0)
	return s, nil
}

// IntroSlots is how many tags each outstanding invite accepts first-contact
// envelopes under. The initiator picks one at random, so two strangers'
// requests to one invite rarely share a tag.
const IntroSlots = 256

// IntroTag is the tag of a first-contact envelope sent to an invite:
// HMAC-SHA256(HKDF(secret, "grapevine v2 intro tag"), be16(slot))[:16].
func IntroTag(secret [SecretSize]byte, slot uint16) [16]byte {
	return introTag(kdf(secret[:], "grapevine v2 intro tag", 32), slot)
}

// IntroTags lists the tags of all IntroSlots slots of an invite.
func IntroTags(secret [SecretSize]byte) [][16]byte {
	key := kdf(secret[:], "grapevine v2 intro tag", 32)
	out := make([][16]byte, IntroSlots)
	for s := range out {
		out[s] = introTag(key, uint16(s))
	}
	return out
}

func introTag(key []byte, slot uint16) (t [16]byte) {
	copy(t[:], prf(key, binary.BigEndian.AppendUint16(nil, slot)))
	return t
}

// IntroMask hides EK_A in a first-contact envelope, so the body is uniformly
// random to anyone without the invite: prefix = EK_A XOR mask with
// mask = HMAC-SHA256(HKDF(secret, "grapevine v2 intro mask"), tag).
func IntroMask(secret [SecretSize]byte, tag [16]byte) [32]byte {
	var m [32]byte
	copy(m[:], prf(kdf(secret[:], "grapevine v2 intro mask", 32), tag[:]))
	return m
}

// IntroSealKey and IntroReceiptSecret key the first-contact envelope itself.
func IntroSealKey(sk [32]byte) [32]byte {
	var k [32]byte
	copy(k[:], kdf(sk[:], "grapevine v2 intro message", 32))
	return k
}

func IntroReceiptSecret(sk [32]byte) [16]byte {
	var s [16]byte
	copy(s[:], kdf(sk[:], "grapevine v2 intro receipt", 16))
	return s
}

// MaskEK applies IntroMask (the mask is its own inverse).
func MaskEK(ek [32]byte, secret [SecretSize]byte, tag [16]byte) [32]byte {
	return xor32(ek, IntroMask(secret, tag))
}

func xor32(a, b [32]byte) [32]byte {
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}
