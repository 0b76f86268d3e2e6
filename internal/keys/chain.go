package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// PeriodLength is the length of one key period: link proofs, re-key tags
// and the retention window count in periods (SPEC §4).
const PeriodLength = 24 * time.Hour

// Period numbers whole periods since the Unix epoch. It is 64 bits wide, so
// no clock reading wraps it; a time before 1970 is period 0.
type Period uint64

// PeriodOf returns the period of t.
func PeriodOf(t time.Time) Period {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return Period(s / int64(PeriodLength/time.Second))
}

// MaxAdvance bounds how many periods a period chain is ever moved forward
// in one step (about eleven years): a chain is only asked to move by what a
// trusted clock allows, and a hostile field must not cost hours of HKDF.
const MaxAdvance = 4096

// PeriodChain is a one-way chain of per-period keys: the key of period p+1
// is HKDF(K_p, "grapevine v2 period next"). Whoever deletes K_p can derive
// neither it nor any earlier key.
type PeriodChain struct {
	Period Period   `json:"p"`
	Key    [32]byte `json:"k"`
}

func newPeriodChain(seed []byte, p Period) PeriodChain {
	c := PeriodChain{Period: p}
	copy(c.Key[:], kdf(seed, "grapevine v2 period chain", 32))
	return c
}

// At returns the key of period p without changing c. ok is false if p is
// before the chain (that key is gone) or more than MaxAdvance after it.
func (c PeriodChain) At(p Period) (key [32]byte, ok bool) {
	if p < c.Period || p-c.Period > MaxAdvance {
		return key, false
	}
	key = c.Key
	for q := c.Period; q < p; q++ {
		copy(key[:], kdf(key[:], "grapevine v2 period next", 32))
	}
	return key, true
}

// AdvanceTo moves the chain to period p, deleting every earlier key. It
// does nothing if the chain is at or past p, or if p is beyond MaxAdvance.
func (c *PeriodChain) AdvanceTo(p Period) {
	if k, ok := c.At(p); ok {
		c.Key, c.Period = k, p
	}
}

// An epoch's chains give every envelope its own keys, one after the other
// (the symmetric ratchet of the Double Ratchet), SPEC §4.3:
//
//	counter chain  C_0 = HKDF(ES, "grapevine v2 message chain");  C_{n+1} = HMAC(C_n, "next")
//	               counter key of n: ck_n = HMAC(C_n, "message")
//	tag chain      T_0 = HKDF(TS, "grapevine v2 tag chain");      T_{n+1} = HMAC(T_n, "next")
//	               tag of counter n: HMAC(T_n, "tag")[:16]
//	period chain   P_a = HKDF(TS, "grapevine v2 period chain") at the anchor a
//	               (the start of the previous epoch); P_{p+1} = HKDF(P_p, "grapevine v2 period next")
//	message key    of counter n sealed in period p: mk = HMAC(ck_n, "period" || P_p)
//
// Whoever holds C_n and T_n derives the keys and tags of counters n and
// later, never earlier ones: a receiver that opened an envelope and moved
// on can neither open nor recognise it again. The period chain bounds what
// was never received: the receiver deletes its keys before the retention
// window — even for an epoch it has not seen yet — so an envelope that
// never arrived cannot be opened once it has expired. The tag and period
// chains come from an earlier root step than the counter chain (TS, not
// ES), so a receiver recognises an epoch's envelopes, and forgets its old
// periods, before it has seen the epoch's key; tags do not depend on the
// time, so a wrong clock cannot stop a receiver from recognising its mail.
type chain struct {
	Next uint32   `json:"n"` // the counter Msg and Tag belong to
	Msg  [32]byte `json:"m"` // zero while the epoch's key is unknown
	Tag  [32]byte `json:"t"`
}

func newChain(es, ts []byte) chain {
	var c chain
	if es != nil {
		copy(c.Msg[:], kdf(es, "grapevine v2 message chain", 32))
	}
	copy(c.Tag[:], kdf(ts, "grapevine v2 tag chain", 32))
	return c
}

// step returns the counter key and tag of counter c.Next and moves c on.
func (c *chain) step() (ck [32]byte, tag [16]byte) {
	copy(ck[:], prf(c.Msg[:], []byte("message")))
	copy(tag[:], prf(c.Tag[:], []byte("tag")))
	copy(c.Msg[:], prf(c.Msg[:], []byte("next")))
	copy(c.Tag[:], prf(c.Tag[:], []byte("next")))
	c.Next++
	return ck, tag
}

// messageKey combines a counter key with the key of the period it was sent in.
func messageKey(ck, pk [32]byte) (mk [32]byte) {
	copy(mk[:], prf(ck[:], []byte("period"), pk[:]))
	return mk
}

// tags lists the tags of counters c.Next to c.Next+w-1, leaving c as it is.
func (c chain) tags(w uint32) [][16]byte {
	out := make([][16]byte, w)
	t := c.Tag
	for i := range out {
		tag := prfSum(t[:], []byte("tag"))
		copy(out[i][:], tag[:])
		t = prfSum(t[:], []byte("next"))
	}
	return out
}

// Envelope keys from a message key and the envelope's random salt, so that
// a counter used twice (a restored backup) never gives the same AEAD key:
//
//	seal key       = HMAC(mk, "seal" || salt)
//	receipt secret = HMAC(mk, "receipt" || salt)[:16]
func sealKeyOf(mk [32]byte, salt []byte) (k [32]byte) {
	copy(k[:], prf(mk[:], []byte("seal"), salt))
	return k
}

func receiptSecretOf(mk [32]byte, salt []byte) (s [16]byte) {
	copy(s[:], prf(mk[:], []byte("receipt"), salt))
	return s
}

// maskKeyOf keys the masks of an epoch's headers:
// HKDF(TS, "grapevine v2 header mask"); the mask of one envelope is
// HKDF-Expand(mask key, "grapevine v2 header mask" || tag || salt, length)
// (the key is already uniform: no extract step, one HMAC for a short header).
func maskKeyOf(ts []byte) (k [32]byte) {
	copy(k[:], kdf(ts, "grapevine v2 header mask", 32))
	return k
}

func maskFor(key [32]byte, tag [16]byte, salt []byte, n int) []byte {
	m, err := hkdf.Expand(sha256.New, key[:], "grapevine v2 header mask"+string(tag[:])+string(salt), n)
	if err != nil {
		panic(err) // only for n > 255*32, which no header reaches
	}
	return m
}

// linkBase keys a root's link proofs (SPEC §12.6): HKDF(RK, "grapevine v2
// link recognition"); the key of period p is HMAC(base, be64(p)).
func linkBase(rk [32]byte) (b [32]byte) {
	copy(b[:], kdf(rk[:], "grapevine v2 link recognition", 32))
	return b
}

func linkKey(base [32]byte, p Period) []byte {
	return prf(base[:], binary.BigEndian.AppendUint64(nil, uint64(p)))
}
