package keys

import (
	"encoding/binary"
	"time"
)

// Pairwise keys rotate every period. A chain holds the key of one period;
// the next period's key is HKDF(K_p, "grapevine period next v1"), so a node
// that deletes K_p can never recompute it, nor any period before it.
//
// From each period key:
//
//	tag key      = HKDF(K_p, "grapevine tag v1")
//	message key  = HKDF(K_p, "grapevine message v1")
//	receipt key  = HKDF(K_p, "grapevine receipt key v1")
//
// and for the n-th envelope of the period (n counts from 0):
//
//	tag            = HMAC-SHA256(tag key, be32(n))[:16]
//	AEAD key       = HMAC-SHA256(message key, be32(n))
//	receipt secret = HMAC-SHA256(receipt key, be32(n))[:16]
const PeriodLength = 24 * time.Hour

// PeriodOf returns the period number of t: whole periods since the Unix epoch.
func PeriodOf(t time.Time) uint32 { return uint32(t.Unix() / int64(PeriodLength/time.Second)) }

// Chain is one direction's key at a period.
type Chain struct {
	Period uint32
	Key    [32]byte
}

// keyAt is K_p for p >= c.Period.
func (c Chain) keyAt(p uint32) [32]byte {
	k := c.Key
	for q := c.Period; q < p; q++ {
		copy(k[:], kdf(k[:], "grapevine period next v1", 32))
	}
	return k
}

// At derives the keys of period p >= c.Period without changing c.
func (c Chain) At(p uint32) PeriodKeys {
	k := c.keyAt(p)
	var pk PeriodKeys
	pk.Period = p
	copy(pk.tag[:], kdf(k[:], "grapevine tag v1", 32))
	copy(pk.msg[:], kdf(k[:], "grapevine message v1", 32))
	copy(pk.receipt[:], kdf(k[:], "grapevine receipt key v1", 32))
	return pk
}

// AdvanceTo moves the chain to period p, forgetting every earlier key. It
// does nothing if the chain is already at or past p.
func (c *Chain) AdvanceTo(p uint32) {
	for c.Period < p {
		copy(c.Key[:], kdf(c.Key[:], "grapevine period next v1", 32))
		c.Period++
	}
}

// PeriodKeys are the working keys of one period of one chain.
type PeriodKeys struct {
	Period            uint32
	tag, msg, receipt [32]byte
}

func be32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// Tag is the tag of the n-th envelope of the period.
func (k PeriodKeys) Tag(n uint32) [16]byte {
	var t [16]byte
	copy(t[:], prf(k.tag[:], be32(n)))
	return t
}

// SealKey is the AEAD key of the n-th envelope of the period.
func (k PeriodKeys) SealKey(n uint32) [32]byte {
	var s [32]byte
	copy(s[:], prf(k.msg[:], be32(n)))
	return s
}

// ReceiptSecret is the secret the n-th envelope's receipt reveals.
func (k PeriodKeys) ReceiptSecret(n uint32) [16]byte {
	var s [16]byte
	copy(s[:], prf(k.receipt[:], be32(n)))
	return s
}

// SendChain is the sender's side of a chain: its current period and the
// next unused counter there. A sender never goes back to an earlier period.
type SendChain struct {
	Chain
	Next uint32
}

// Take reserves the next (period, counter) for an envelope sent at now and
// returns its period keys. The caller must persist the chain before the
// envelope leaves the node, so a counter is never used twice.
func (s *SendChain) Take(now time.Time) (PeriodKeys, uint32) {
	if p := PeriodOf(now); p > s.Period {
		s.AdvanceTo(p)
		s.Next = 0
	}
	n := s.Next
	s.Next++
	return s.At(s.Period), n
}

// Window is how many unseen counters per period a receiver watches for.
const Window = 32

// RecvChain is the receiver's side of a chain: the key of the oldest period
// still retained and, per period, which counters have arrived.
type RecvChain struct {
	Chain
	Seen []PeriodSeen
}

// PeriodSeen records arrivals in one period: every counter below Next has
// arrived, and bit i of Mask says whether Next+1+i has.
type PeriodSeen struct {
	Period uint32
	Next   uint32
	Mask   uint64
}

// Slot is one expected envelope.
type Slot struct {
	Period  uint32
	Counter uint32
	Tag     [16]byte
}

// Expected lists the tags the receiver watches for in periods [from, to]:
// Window unseen counters from the lowest unseen one, per period.
func (r *RecvChain) Expected(from, to uint32) []Slot {
	if from < r.Period {
		from = r.Period
	}
	var out []Slot
	for p := from; p <= to; p++ {
		seen := r.seen(p)
		pk := r.At(p)
		for i := uint32(0); i < Window; i++ {
			n := seen.Next + i
			if i > 0 && seen.Mask&(1<<(i-1)) != 0 {
				continue
			}
			out = append(out, Slot{Period: p, Counter: n, Tag: pk.Tag(n)})
		}
	}
	return out
}

func (r *RecvChain) seen(p uint32) PeriodSeen {
	for _, s := range r.Seen {
		if s.Period == p {
			return s
		}
	}
	return PeriodSeen{Period: p}
}

// MarkSeen records the arrival of counter n in period p.
func (r *RecvChain) MarkSeen(p, n uint32) {
	i := -1
	for j, s := range r.Seen {
		if s.Period == p {
			i = j
		}
	}
	if i < 0 {
		r.Seen = append(r.Seen, PeriodSeen{Period: p})
		i = len(r.Seen) - 1
	}
	s := &r.Seen[i]
	switch {
	case n < s.Next:
		return
	case n == s.Next:
		s.Next++
		for s.Mask&1 != 0 { // slide over counters that already arrived
			s.Mask >>= 1
			s.Next++
		}
		s.Mask >>= 1
	case n-s.Next-1 < 64:
		s.Mask |= 1 << (n - s.Next - 1)
	}
}

// Forget advances the chain to period p, deleting the keys of every earlier
// period and what was recorded about them: envelopes sealed then can no
// longer be opened here.
func (r *RecvChain) Forget(p uint32) {
	r.AdvanceTo(p)
	kept := r.Seen[:0]
	for _, s := range r.Seen {
		if s.Period >= p {
			kept = append(kept, s)
		}
	}
	r.Seen = kept
}

// LinkProof proves, bound to one link, knowledge of this chain's key in
// period p, so that two contacts who link recognise each other and nobody
// else learns anything (SPEC §12.6):
//
//	recognition key = HKDF(K_p, "grapevine link recognition v1")
//	proof           = HMAC-SHA256(recognition key, role || binding)[:16]
//
// role is 'I' from the side that dialled the link and 'R' from the other, so
// a proof reflected back to its sender matches nothing; binding is the
// link's handshake hash. ok is false when p is before the chain's period
// (that key is gone).
func (c Chain) LinkProof(p uint32, dialled bool, binding []byte) (proof [16]byte, ok bool) {
	key, ok := c.LinkKey(p)
	if !ok {
		return proof, false
	}
	return LinkProofWith(key, dialled, binding), true
}

// LinkKey is the recognition key of period p, for callers that prove or
// check many links in one period (LinkProof in two steps).
func (c Chain) LinkKey(p uint32) (key []byte, ok bool) {
	if p < c.Period {
		return nil, false
	}
	k := c.keyAt(p)
	return kdf(k[:], "grapevine link recognition v1", 32), true
}

// LinkProofWith is the proof for one link under a recognition key.
func LinkProofWith(key []byte, dialled bool, binding []byte) (proof [16]byte) {
	role := []byte{'R'}
	if dialled {
		role[0] = 'I'
	}
	copy(proof[:], prf(key, role, binding))
	return proof
}
