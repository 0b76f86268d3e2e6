package keys

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A re-key starts a new session with an existing contact without meeting
// again (SPEC §3.3): after a restored backup, a clock error, or whenever a
// user wants fresh keys. It is a first contact addressed by the two
// identities instead of an invite. With A the sender and B the contact:
//
//	base = HKDF(DH(X_A, X_B), "grapevine v2 rekey" || lo || hi)   (lo, hi: the 64-byte public forms, sorted)
//	tag  = HMAC(HKDF(base, "grapevine v2 rekey tags" || Ed_A || X_A || be64(p)), be16(slot))[:16]
//	mask = HMAC(HKDF(base, "grapevine v2 rekey mask"), tag)       (hides EK_A)
//	SK   = HKDF(DH(EK_A, X_B) || DH(X_A, X_B), "grapevine v2 rekey key" || Ed_A || X_A || Ed_B || X_B || EK_A)
//
// Only A and B can compute base, so no one else recognises a re-key request
// or learns whose it is; its content (A's new ratchet and ML-KEM keys, no
// text) is as safe as B's identity key, and the session is forward-secret
// and post-quantum from B's first answer, as after a first contact.

// RekeySlots is how many tags per period a contact's re-key requests use.
// Re-keys are rare: two in one period share a tag (which shows a relay that
// they belong together) only if the sender re-keys twice that day.
const RekeySlots = 1

// RekeyBase is the secret of the pair that keys re-key requests.
func RekeyBase(self *Identity, peer Public) ([32]byte, error) {
	var base [32]byte
	pk, err := ecdh.X25519().NewPublicKey(peer.DH[:])
	if err != nil {
		return base, errors.New("invalid key agreement key")
	}
	dh, err := dhs(self.DH, pk)
	if err != nil {
		return base, err
	}
	lo, hi := self.Public().Bytes(), peer.Bytes()
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	copy(base[:], kdf(dh, "grapevine v2 rekey"+string(lo)+string(hi), 32))
	return base, nil
}

// RekeyTag is the tag of a re-key request written by sender in period p.
func RekeyTag(base [32]byte, sender Public, p Period, slot uint16) [16]byte {
	info := "grapevine v2 rekey tags" + string(sender.Bytes()) + string(binary.BigEndian.AppendUint64(nil, uint64(p)))
	var t [16]byte
	copy(t[:], prf(kdf(base[:], info, 32), binary.BigEndian.AppendUint16(nil, slot)))
	return t
}

// RekeyMask hides EK_A in a re-key request.
func RekeyMask(base [32]byte, tag [16]byte) [32]byte {
	var m [32]byte
	copy(m[:], prf(kdf(base[:], "grapevine v2 rekey mask", 32), tag[:]))
	return m
}

// InitiateRekey starts a new session with peer at period p0.
func InitiateRekey(self *Identity, peer Public, p0 Period, rand io.Reader) (*FirstContact, error) {
	eph, err := NewX25519(rand)
	if err != nil {
		return nil, fmt.Errorf("failed to generate ephemeral key: %w", err)
	}
	fc := &FirstContact{}
	copy(fc.EK[:], eph.PublicKey().Bytes())
	if fc.SK, err = rekeyKey(eph, self.DH, self.Public(), peer, fc.EK, true); err != nil {
		return nil, err
	}
	if err := fc.startSession(p0, rand); err != nil {
		return nil, err
	}
	return fc, nil
}

// RespondRekey is the contact's side: the key of the request with
// ephemeral key ek from sender.
func RespondRekey(self *Identity, sender Public, ek [32]byte) ([32]byte, error) {
	return rekeyKey(self.DH, self.DH, sender, self.Public(), ek, false)
}

// rekeyKey computes SK; a is the side holding the first private key
// (EK_A for the sender, X_B for the contact), st the one for DH(X_A, X_B).
func rekeyKey(a, st *ecdh.PrivateKey, from, to Public, ek [32]byte, sender bool) ([32]byte, error) {
	var sk [32]byte
	xb, err1 := ecdh.X25519().NewPublicKey(to.DH[:])
	xa, err2 := ecdh.X25519().NewPublicKey(from.DH[:])
	ekp, err3 := ecdh.X25519().NewPublicKey(ek[:])
	if err1 != nil || err2 != nil || err3 != nil {
		return sk, errors.New("invalid key in re-key request")
	}
	var ikm []byte
	if sender {
		ikm, err1 = dhs(a, xb, st, xb)
	} else {
		ikm, err1 = dhs(a, ekp, st, xa)
	}
	if err1 != nil {
		return sk, err1
	}
	info := "grapevine v2 rekey key" + string(from.Bytes()) + string(to.Bytes()) + string(ek[:])
	copy(sk[:], kdf(ikm, info, 32))
	return sk, nil
}
