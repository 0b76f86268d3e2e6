package keys

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// KEMInterval is how often, in periods, a side announces a fresh ML-KEM key
// when it opens an epoch (the sparse post-quantum refresh, SPEC §4.4).
const KEMInterval = 1

// SaltSize is the random salt at the start of every pairwise body: mixed
// into the envelope's keys, so a counter used twice never repeats a key.
const SaltSize = 8

// The prefix a sending epoch's envelopes carry, masked, until the peer is
// known to hold the epoch's ratchet key (SPEC §5.2):
//
//	flags (1)  bit 0: an ML-KEM ciphertext follows; bit 1: an ML-KEM key follows
//	pub  (32)  the epoch's ratchet public key
//	age   (2)  periods from the epoch's start to this envelope's period
//	pn    (4)  how many counters my previous epoch used
//	ct (1088)  if bit 0
//	ek (1184)  if bit 1
const (
	prefixBase = 1 + 32 + 2 + 4
	flagCT     = 1
	flagEK     = 2
)

func prefixLen(flags byte) int {
	n := prefixBase
	if flags&flagCT != 0 {
		n += kemCTSize
	}
	if flags&flagEK != 0 {
		n += kemEKSize
	}
	return n
}

func (se *SendEpoch) prefix(p Period) []byte {
	var flags byte
	if se.CT != nil {
		flags |= flagCT
	}
	if se.EK != nil {
		flags |= flagEK
	}
	b := make([]byte, 0, prefixLen(flags))
	b = append(b, flags)
	b = append(b, se.Pub[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(min(p-se.Start, 0xffff)))
	b = binary.BigEndian.AppendUint32(b, se.PN)
	b = append(b, se.CT...)
	return append(b, se.EK...)
}

type parsedPrefix struct {
	flags byte
	pub   [32]byte
	age   Period
	pn    uint32
	ct    []byte
	ek    []byte
}

// unmaskPrefix reads the prefix after the salt of a body, if there is one.
func unmaskPrefix(body []byte, tk tagKeys, tag [16]byte) (parsedPrefix, int, bool) {
	var pp parsedPrefix
	if len(body) < SaltSize+prefixBase+envelope.Overhead {
		return pp, 0, false
	}
	salt := body[:SaltSize]
	pp.flags = body[SaltSize] ^ tk.maskFor(tag, salt, 1)[0]
	if pp.flags&^(flagCT|flagEK) != 0 || pp.flags == flagCT|flagEK {
		return pp, 0, false
	}
	n := prefixLen(pp.flags)
	if len(body) < SaltSize+n+envelope.Overhead {
		return pp, 0, false
	}
	pre := tk.maskFor(tag, salt, n)
	subtle.XORBytes(pre, pre, body[SaltSize:SaltSize+n])
	copy(pp.pub[:], pre[1:33])
	pp.age = Period(binary.BigEndian.Uint16(pre[33:35]))
	pp.pn = binary.BigEndian.Uint32(pre[35:39])
	rest := pre[39:]
	if pp.flags&flagCT != 0 {
		pp.ct, rest = rest[:kemCTSize], rest[kemCTSize:]
	}
	if pp.flags&flagEK != 0 {
		pp.ek = rest[:kemEKSize]
	}
	return pp, n, true
}

// Sent describes a sealed envelope to the caller, who keeps it to match
// the receipt: a receipt of a prefixed envelope acknowledges the epoch.
type Sent struct {
	Epoch    uint64
	Prefixed bool
	Secret   [envelope.SecretSize]byte
}

// Seal seals content as the next envelope of this session at period p,
// opening a new epoch first if the peer's newest key is unanswered. It
// changes s: the caller stores s before the envelope leaves the node.
func (s *Session) Seal(p Period, content []byte, expiry uint32, hops uint8, r io.Reader) (*envelope.Envelope, Sent, error) {
	if s.Answer || s.Send == nil {
		if err := s.step(p, r); err != nil {
			return nil, Sent{}, err
		}
	}
	se := s.Send
	tp := max(p, se.Tags.Period)
	tagKey, ok := se.Tags.At(tp)
	if !ok {
		return nil, Sent{}, fmt.Errorf("failed to seal: period %d is too far from the chain's %d", tp, se.Tags.Period)
	}
	se.Tags = PeriodChain{Period: tp, Key: tagKey}
	tk := tagKeysOf(tagKey)
	salt := make([]byte, SaltSize, SaltSize+prefixLen(flagEK))
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, Sent{}, fmt.Errorf("failed to draw salt: %w", err)
	}
	n := se.Chain.Next
	mk := se.Chain.step()
	tag := tk.Tag(n)
	body := salt
	if !se.Acked {
		pre := se.prefix(tp)
		subtle.XORBytes(pre, pre, tk.maskFor(tag, salt, len(pre)))
		body = append(body, pre...)
	}
	secret := receiptSecretOf(mk, salt)
	e, err := envelope.Seal(envelope.Sealing{
		Key: sealKeyOf(mk, salt), Tag: tag, Commit: envelope.Commitment(secret),
		Expiry: expiry, Hops: hops, Prefix: body,
	}, content)
	if err != nil {
		return nil, Sent{}, fmt.Errorf("failed to seal: %w", err)
	}
	return e, Sent{Epoch: se.N, Prefixed: !se.Acked, Secret: secret}, nil
}

// step opens my next sending epoch at period p: a fresh ratchet key, a DH
// with the peer's newest key (and an ML-KEM encapsulation if the peer
// announced a key), one root step.
func (s *Session) step(p Period, r io.Reader) error {
	if s.Mine == nil || !s.Answer {
		return errors.New("failed to open an epoch: no new key of the peer's to answer")
	}
	kp, err := newRatchetKey(r)
	if err != nil {
		return err
	}
	dh, err := x25519(kp.Priv, s.Peer)
	if err != nil {
		return err
	}
	var kss, ct []byte
	if s.PeerEK != nil {
		if kss, ct, err = encapsulate(s.PeerEK, r); err != nil {
			return err
		}
	}
	rk, es, ts := rootStep(s.RK, dh, kss, kp.Pub, s.Peer, ct)
	start := max(p, s.Mine.Tags.Period)
	se := &SendEpoch{N: s.Mine.N, Pub: kp.Pub, Start: start, Tags: s.Mine.Tags, Chain: newMsgChain(es[:]), CT: ct}
	if s.Send != nil {
		se.PN = s.Send.Chain.Next
	}
	if ct != nil {
		s.KEMPeriod = start
	} else if s.DK == nil && start >= s.KEMPeriod+KEMInterval {
		if s.DK, se.EK, err = newKEM(r); err != nil {
			return err
		}
	}
	s.RK, s.Self, s.Answer, s.PeerEK = rk, kp, false, nil
	s.Send, s.Mine = se, nil
	s.Next = newNextEpoch(se.N+1, ts, start)
	s.pushLink(linkChainOf(rk, start))
	return nil
}

func (s *Session) pushLink(c PeriodChain) {
	s.Links = append([]PeriodChain{c}, s.Links...)
	if len(s.Links) > 2 {
		s.Links = s.Links[:2]
	}
}

// Slot is one envelope a session expects.
type Slot struct {
	Epoch   uint64
	Next    bool // the peer's next epoch: its ratchet key is still unknown
	Period  Period
	Counter uint32
	Tag     [16]byte
}

// Expected lists the tags the session watches for in periods [from, to]:
// for each of the peer's epochs it watches, the counters it has not opened
// (Window of them past the highest, and the skipped ones below), and
// NextWindow counters of the peer's next epoch.
func (s *Session) Expected(from, to Period) []Slot {
	var out []Slot
	for _, r := range s.Recv {
		var counters []uint32
		for _, k := range r.Skipped {
			counters = append(counters, k.N)
		}
		for n := r.Chain.Next; n < r.Chain.Next+Window && (!r.Closed || n < r.Limit); n++ {
			counters = append(counters, n)
		}
		out = appendSlots(out, r.Tags, from, to, r.N, false, counters)
	}
	if s.Next != nil {
		counters := make([]uint32, NextWindow)
		for i := range counters {
			counters[i] = uint32(i)
		}
		out = appendSlots(out, s.Next.Tags, from, to, s.Next.N, true, counters)
	}
	return out
}

func appendSlots(out []Slot, tags PeriodChain, from, to Period, epoch uint64, next bool, counters []uint32) []Slot {
	if len(counters) == 0 {
		return out
	}
	from = max(from, tags.Period)
	key, ok := tags.At(from)
	for p := from; ok && p <= to; p++ {
		tk := tagKeysOf(key)
		for _, n := range counters {
			out = append(out, Slot{Epoch: epoch, Next: next, Period: p, Counter: n, Tag: tk.Tag(n)})
		}
		copy(key[:], kdf(key[:], "grapevine v2 period next", 32))
	}
	return out
}

// Opened is what Open found in an envelope.
type Opened struct {
	Content []byte
	Secret  [envelope.SecretSize]byte // the receipt secret
	Epoch   uint64
	Stepped bool // it opened a new epoch of the peer's
}

// Open authenticates and decrypts an envelope that bears slot's tag. It
// returns the session as it must be stored once the envelope is accepted;
// s itself is not changed, so a failure changes nothing (SPEC §6: an
// envelope that does not authenticate must not burn its counter).
func (s *Session) Open(e *envelope.Envelope, sl Slot) (*Session, Opened, error) {
	if len(e.Body) < SaltSize+envelope.Overhead {
		return nil, Opened{}, ErrNotMine
	}
	c := s.Clone()
	if sl.Next {
		return c.openNext(e, sl)
	}
	for i := range c.Recv {
		if c.Recv[i].N == sl.Epoch {
			return c.openKnown(&c.Recv[i], e, sl)
		}
	}
	return nil, Opened{}, ErrNotMine
}

// openNext opens the first envelope to arrive of the peer's next epoch and
// mirrors the peer's root step: at most one X25519 and one ML-KEM
// decapsulation per envelope bearing a watched tag.
func (c *Session) openNext(e *envelope.Envelope, sl Slot) (*Session, Opened, error) {
	nx := c.Next
	tagKey, ok := nx.Tags.At(sl.Period)
	if !ok {
		return nil, Opened{}, ErrNotMine
	}
	tk := tagKeysOf(tagKey)
	pp, plen, ok := unmaskPrefix(e.Body, tk, e.Tag)
	// The epoch answers my key, so it cannot have started before my epoch did.
	if !ok || pp.age > sl.Period-nx.Anchor {
		return nil, Opened{}, ErrNotMine
	}
	if (pp.ct != nil) != (c.DK != nil) { // my ML-KEM key must be answered, and only it
		return nil, Opened{}, ErrDowngrade
	}
	dh, err := x25519(c.Self.Priv, pp.pub)
	if err != nil {
		return nil, Opened{}, ErrNotMine
	}
	var kss []byte
	if pp.ct != nil {
		if kss, err = decapsulate(c.DK, pp.ct); err != nil {
			return nil, Opened{}, ErrNotMine
		}
	}
	rk, es, ts := rootStep(c.RK, dh, kss, pp.pub, c.Self.Pub, pp.ct)
	start := sl.Period - pp.age
	r := RecvEpoch{N: nx.N, Pub: pp.pub, Tags: nx.Tags, Chain: newMsgChain(es[:])}
	mk, ok := r.keyFor(sl.Counter, sl.Period)
	if !ok {
		return nil, Opened{}, ErrNotMine
	}
	salt := e.Body[:SaltSize]
	content, err := envelope.Open(sealKeyOf(mk, salt), e, SaltSize+plen)
	if err != nil {
		return nil, Opened{}, ErrNotMine
	}
	// Authentic: the peer stepped. Everything below is the mirror of step.
	for i := range c.Recv {
		if c.Recv[i].N+2 == nx.N { // the peer's previous epoch used pn counters
			c.Recv[i].Limit, c.Recv[i].Closed = pp.pn, true
		}
	}
	c.Recv = append(c.Recv, r)
	c.RK, c.Peer, c.Answer = rk, pp.pub, true
	c.PeerEK = nil
	if pp.ek != nil {
		c.PeerEK = append([]byte(nil), pp.ek...)
	}
	if pp.ct != nil {
		c.DK, c.KEMPeriod = nil, start
	}
	c.Acked(nx.N - 1) // it answers my key
	c.Next = nil
	c.Mine = newNextEpoch(nx.N+1, ts, start)
	c.pushLink(linkChainOf(rk, start))
	c.prune()
	return c, Opened{Content: content, Secret: receiptSecretOf(mk, salt), Epoch: r.N, Stepped: true}, nil
}

// openKnown opens an envelope of a peer epoch whose key is known: without a
// prefix (the peer knew I had its key), else with one naming that key.
func (c *Session) openKnown(r *RecvEpoch, e *envelope.Envelope, sl Slot) (*Session, Opened, error) {
	mk, ok := r.keyFor(sl.Counter, sl.Period)
	if !ok {
		return nil, Opened{}, ErrNotMine
	}
	salt := e.Body[:SaltSize]
	key := sealKeyOf(mk, salt)
	content, err := envelope.Open(key, e, SaltSize)
	if err != nil {
		tagKey, ok := r.Tags.At(sl.Period)
		if !ok {
			return nil, Opened{}, ErrNotMine
		}
		pp, plen, ok := unmaskPrefix(e.Body, tagKeysOf(tagKey), e.Tag)
		if !ok || pp.pub != r.Pub {
			return nil, Opened{}, ErrNotMine
		}
		if content, err = envelope.Open(key, e, SaltSize+plen); err != nil {
			return nil, Opened{}, ErrNotMine
		}
	}
	return c, Opened{Content: content, Secret: receiptSecretOf(mk, salt), Epoch: r.N}, nil
}

// keyFor returns the message key of counter n and moves the epoch past it:
// a skipped key is used up, or the chain is advanced to n, keeping the keys
// of the counters it passes over. ok is false for a counter already opened
// or too far ahead.
func (r *RecvEpoch) keyFor(n uint32, p Period) (mk [32]byte, ok bool) {
	for i, k := range r.Skipped {
		if k.N == n {
			r.Skipped = append(r.Skipped[:i:i], r.Skipped[i+1:]...)
			return k.Key, true
		}
	}
	if n < r.Chain.Next || n-r.Chain.Next >= Window || (r.Closed && n >= r.Limit) {
		return mk, false
	}
	for r.Chain.Next < n {
		m := r.Chain.Next
		r.Skipped = append(r.Skipped, skippedKey{N: m, Key: r.Chain.step(), Period: p})
	}
	if over := len(r.Skipped) - MaxSkipped; over > 0 {
		r.Skipped = r.Skipped[over:] // the oldest skipped go first
	}
	return r.Chain.step(), true
}

// done reports whether nothing of a closed epoch can still arrive.
func (r *RecvEpoch) done() bool {
	if !r.Closed || r.Chain.Next < r.Limit {
		return false
	}
	for _, k := range r.Skipped {
		if k.N < r.Limit {
			return false
		}
	}
	return true
}

// prune drops finished epochs, then the oldest closed ones over MaxRecv.
func (s *Session) prune() {
	kept := s.Recv[:0]
	for _, r := range s.Recv {
		if !r.done() {
			kept = append(kept, r)
		}
	}
	s.Recv = kept
	for len(s.Recv) > MaxRecv && s.Recv[0].Closed {
		s.Recv = s.Recv[1:]
	}
}

// Forget deletes what the retention window no longer needs: tag keys of
// periods before oldest, message keys skipped before it, epochs that have
// nothing left to arrive; link keys before now−1. Envelopes sealed under
// what it deletes can no longer be opened or recognised here.
func (s *Session) Forget(oldest, now Period) {
	for i := range s.Recv {
		r := &s.Recv[i]
		r.Tags.AdvanceTo(oldest)
		kept := r.Skipped[:0]
		for _, k := range r.Skipped {
			if k.Period >= oldest {
				kept = append(kept, k)
			}
		}
		r.Skipped = kept
	}
	if s.Send != nil {
		s.Send.Tags.AdvanceTo(oldest)
	}
	if s.Next != nil {
		s.Next.Tags.AdvanceTo(oldest)
	}
	if s.Mine != nil {
		s.Mine.Tags.AdvanceTo(oldest)
	}
	for i := range s.Links {
		if now > 0 {
			s.Links[i].AdvanceTo(now - 1)
		}
	}
	s.prune()
}

// ProofKey is the key this side proves itself with on a link in period p
// (SPEC §12.6): the newest root the peer is known to hold.
func (s *Session) ProofKey(p Period) ([]byte, bool) {
	i := 0
	if s.Send != nil && !s.Send.Acked && s.Send.N > 0 && len(s.Links) > 1 {
		if n, _ := s.latestN(); n == s.Send.N { // my own step, not yet acknowledged
			i = 1
		}
	}
	if i >= len(s.Links) {
		return nil, false
	}
	return linkKey(s.Links[i], p)
}

// CheckKeys are the keys a peer's proof may be made with in periods p−1 to
// p+1 (clock skew), under the newest root and the one before it.
func (s *Session) CheckKeys(p Period) [][]byte {
	var out [][]byte
	for _, l := range s.Links {
		for q := max(p, 1) - 1; q <= p+1; q++ {
			if k, ok := linkKey(l, q); ok {
				out = append(out, k)
			}
		}
	}
	return out
}

func linkKey(c PeriodChain, p Period) ([]byte, bool) {
	k, ok := c.At(p)
	if !ok {
		return nil, false
	}
	return prf(k[:], []byte("link")), true
}

// LinkProofWith is the proof for one link under a recognition key (SPEC
// §12.6): HMAC-SHA256(key, role || side || binding)[:16], role 'I' from the
// side that dialled the link and 'R' from the other, side 'L' from the
// member of the pair whose fingerprint sorts first and 'H' from the other.
// The key is the pair's, so role and side keep a proof reflected back to
// its sender from matching anything; binding is the link's handshake hash.
func LinkProofWith(key []byte, dialled, low bool, binding []byte) (proof [16]byte) {
	role := []byte{'R', 'H'}
	if dialled {
		role[0] = 'I'
	}
	if low {
		role[1] = 'L'
	}
	copy(proof[:], prf(key, role, binding))
	return proof
}
