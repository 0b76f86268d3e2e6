package keys

import (
	"encoding/binary"
	"time"
)

// PeriodLength is the length of one key period. Tags, link proofs and the
// receiver's windows rotate per period (SPEC §4).
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

// MaxAdvance bounds how many periods a chain is ever moved forward in one
// step (about eleven years): a chain is only asked to move by what a sane
// clock allows, and a hostile field or a wild clock must not cost hours of
// HKDF (SPEC §4).
const MaxAdvance = 4096

// PeriodChain is a one-way chain of per-period keys: the key of period p+1 is
// HKDF(K_p, "grapevine v2 period next"). Whoever deletes K_p can derive
// neither it nor any earlier key.
type PeriodChain struct {
	Period Period   `json:"p"`
	Key    [32]byte `json:"k"`
}

// newPeriodChain starts a chain at period p from a seed.
func newPeriodChain(seed []byte, label string, p Period) PeriodChain {
	c := PeriodChain{Period: p}
	copy(c.Key[:], kdf(seed, label, 32))
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
// does nothing if the chain is at or past p, or if p is beyond MaxAdvance
// (a wild clock: keep the keys rather than lose them).
func (c *PeriodChain) AdvanceTo(p Period) {
	if k, ok := c.At(p); ok {
		c.Key, c.Period = k, p
	}
}

// A message chain gives every envelope of an epoch its own key, one after
// the other (the symmetric ratchet of the Double Ratchet): C_{n+1} =
// HMAC(C_n, "next") and the message key of counter n is HMAC(C_n,
// "message"). A holder of C_n can derive the keys of counters n and later,
// never earlier ones: whoever opened an envelope and moved on cannot open it
// again.
type msgChain struct {
	Next uint32   `json:"n"` // the counter Key belongs to
	Key  [32]byte `json:"k"`
}

func newMsgChain(seed []byte) msgChain {
	var c msgChain
	copy(c.Key[:], kdf(seed, "grapevine v2 message chain", 32))
	return c
}

// step returns the message key of c.Next and moves c on by one.
func (c *msgChain) step() (mk [32]byte) {
	copy(mk[:], prf(c.Key[:], []byte("message")))
	copy(c.Key[:], prf(c.Key[:], []byte("next")))
	c.Next++
	return mk
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

// Tags and prefix masks of one period of an epoch's tag chain (SPEC §4):
//
//	tag key  = HMAC(T_p, "tag");   tag of counter n = HMAC(tag key, be32(n))[:16]
//	mask key = HMAC(T_p, "mask");  mask = HKDF(mask key, "grapevine v2 prefix mask" || tag || salt, len)
type tagKeys struct {
	tag, mask [32]byte
}

func tagKeysOf(tp [32]byte) tagKeys {
	var k tagKeys
	copy(k.tag[:], prf(tp[:], []byte("tag")))
	copy(k.mask[:], prf(tp[:], []byte("mask")))
	return k
}

func (k tagKeys) Tag(n uint32) (t [16]byte) {
	copy(t[:], prf(k.tag[:], binary.BigEndian.AppendUint32(nil, n)))
	return t
}

func (k tagKeys) maskFor(tag [16]byte, salt []byte, n int) []byte {
	return kdf(k.mask[:], "grapevine v2 prefix mask"+string(tag[:])+string(salt), n)
}
