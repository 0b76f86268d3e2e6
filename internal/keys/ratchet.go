package keys

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// KEMInterval is how often, in periods, a side announces a fresh ML-KEM key
// when it opens an epoch (the sparse post-quantum refresh, SPEC §4.4).
const KEMInterval = 1

// SaltSize is the random salt at the start of every pairwise body: mixed
// into the envelope's keys, so a counter used twice never repeats a key.
const SaltSize = 8

// Every pairwise body starts with the salt and a masked header (SPEC §5.2):
//
//	period (1)  the period the envelope was sealed in, modulo 256
//	flags  (1)  bit 2: the epoch's key follows; bit 0: an ML-KEM ciphertext
//	            follows it; bit 1: an ML-KEM key follows it
//	pub   (32)  the epoch's ratchet public key      } the prefix, carried until
//	age    (2)  periods since the epoch started      } the peer is known to hold
//	pn     (4)  how many counters my previous epoch used   } the key
//	ct  (1088)  if bit 0
//	ek  (1184)  if bit 1
//
// masked with HKDF(mask key, "grapevine v2 prefix mask" || tag || salt).
const (
	headerBase = 2
	prefixBase = 32 + 2 + 4
	flagCT     = 1
	flagEK     = 2
	flagKey    = 4
)

func headerLen(flags byte) int {
	n := headerBase
	if flags&flagKey != 0 {
		n += prefixBase
	}
	if flags&flagCT != 0 {
		n += kemCTSize
	}
	if flags&flagEK != 0 {
		n += kemEKSize
	}
	return n
}

func validFlags(f byte) bool {
	return f&^(flagCT|flagEK|flagKey) == 0 && f&(flagCT|flagEK) != flagCT|flagEK &&
		(f&flagKey != 0 || f&(flagCT|flagEK) == 0)
}

func (se *SendEpoch) header(p Period) []byte {
	flags := byte(0)
	if !se.Acked {
		flags |= flagKey
		if se.CT != nil {
			flags |= flagCT
		}
		if se.EK != nil {
			flags |= flagEK
		}
	}
	b := make([]byte, 0, headerLen(flags))
	b = append(b, byte(p), flags)
	if flags&flagKey == 0 {
		return b
	}
	b = append(b, se.Pub[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(min(p-se.Start, 0xffff)))
	b = binary.BigEndian.AppendUint32(b, se.PN)
	b = append(b, se.CT...)
	return append(b, se.EK...)
}

type header struct {
	period Period
	flags  byte
	pub    [32]byte
	age    Period
	pn     uint32
	ct     []byte
	ek     []byte
	len    int
}

// readHeader unmasks the header after the salt of a body. The period byte
// is resolved to the one period at most a period after now that it names.
func readHeader(body []byte, mask [32]byte, tag [16]byte, now Period) (header, bool) {
	var h header
	if len(body) < SaltSize+headerBase+envelope.Overhead {
		return h, false
	}
	salt := body[:SaltSize]
	m := maskFor(mask, tag, salt, headerBase)
	pb, flags := body[SaltSize]^m[0], body[SaltSize+1]^m[1]
	if !validFlags(flags) {
		return h, false
	}
	h.flags, h.len = flags, headerLen(flags)
	latest := uint64(now) + 1
	d := (latest - uint64(pb)) & 0xff
	if latest < d || len(body) < SaltSize+h.len+envelope.Overhead {
		return h, false
	}
	h.period = Period(latest - d)
	if flags&flagKey == 0 {
		return h, true
	}
	pre := maskFor(mask, tag, salt, h.len)
	subtle.XORBytes(pre, pre, body[SaltSize:SaltSize+h.len])
	copy(h.pub[:], pre[2:34])
	h.age = Period(binary.BigEndian.Uint16(pre[34:36]))
	h.pn = binary.BigEndian.Uint32(pre[36:40])
	rest := pre[40:]
	if flags&flagCT != 0 {
		h.ct, rest = rest[:kemCTSize], rest[kemCTSize:]
	}
	if flags&flagEK != 0 {
		h.ek = rest[:kemEKSize]
	}
	return h, h.age <= h.period
}

// Sent describes a sealed envelope to the caller, who keeps it to match
// the receipt: a receipt of a prefixed envelope acknowledges the epoch.
type Sent struct {
	Epoch    uint64
	Prefixed bool
	Secret   [envelope.SecretSize]byte
}

// Seal seals content as the next envelope of this session, opening a new
// epoch first if the peer's newest key is unanswered. p, the period now, only
// decides whether the epoch announces a fresh ML-KEM key. Seal changes s:
// the caller stores s before the envelope leaves the node.
func (s *Session) Seal(p Period, content []byte, expiry uint32, hops uint8, r io.Reader) (*envelope.Envelope, Sent, error) {
	if s.Answer || s.Send == nil {
		if err := s.step(p, r); err != nil {
			return nil, Sent{}, err
		}
	}
	se := s.Send
	sp := max(p, se.Periods.Period) // a clock gone back does not take the chain back
	pk, ok := se.Periods.At(sp)
	if !ok {
		return nil, Sent{}, fmt.Errorf("failed to seal: period %d is too far from the chain's %d", sp, se.Periods.Period)
	}
	se.Periods = PeriodChain{Period: sp, Key: pk}
	salt := make([]byte, SaltSize, SaltSize+headerLen(flagKey|flagEK))
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, Sent{}, fmt.Errorf("failed to draw salt: %w", err)
	}
	ck, tag := se.Chain.step()
	mk := messageKey(ck, pk)
	hdr := se.header(sp)
	subtle.XORBytes(hdr, hdr, maskFor(se.Mask, tag, salt, len(hdr)))
	secret := receiptSecretOf(mk, salt)
	e, err := envelope.Seal(envelope.Sealing{
		Key: sealKeyOf(mk, salt), Tag: tag, Commit: envelope.Commitment(secret),
		Expiry: expiry, Hops: hops, Prefix: append(salt, hdr...),
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
	start := max(p, s.Mine.Anchor)
	se := &SendEpoch{N: s.Mine.N, Pub: kp.Pub, Start: start, Mask: s.Mine.Mask, CT: ct, Periods: s.Mine.Periods}
	se.Chain = s.Mine.Tags
	copy(se.Chain.Msg[:], kdf(es[:], "grapevine v2 message chain", 32))
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
	s.pushLink(linkBase(rk))
	return nil
}

func (s *Session) pushLink(b [32]byte) {
	s.Links = append([][32]byte{b}, s.Links...)
	if len(s.Links) > 2 {
		s.Links = s.Links[:2]
	}
}

// Slot is one envelope a session expects.
type Slot struct {
	Epoch   uint64
	Next    bool // the peer's next epoch: its ratchet key is still unknown
	Counter uint32
	Tag     [16]byte
}

// Expected lists the tags the session watches for: for each of the peer's
// epochs it watches, the counters it has not opened (Window of them past the
// highest, and the skipped ones below), and NextWindow counters of the
// peer's next epoch. Tags do not depend on the time: a wrong clock cannot
// stop them matching.
func (s *Session) Expected() []Slot {
	var out []Slot
	for _, r := range s.Recv {
		for _, k := range r.Skipped {
			out = append(out, Slot{Epoch: r.N, Counter: k.N, Tag: k.Tag})
		}
		w := uint32(Window)
		if r.Closed {
			w = min(w, r.Limit-min(r.Limit, r.Chain.Next))
		}
		for i, t := range r.Chain.tags(w) {
			out = append(out, Slot{Epoch: r.N, Counter: r.Chain.Next + uint32(i), Tag: t})
		}
	}
	if s.Next != nil {
		for i, t := range s.Next.Tags.tags(NextWindow) {
			out = append(out, Slot{Epoch: s.Next.N, Next: true, Counter: uint32(i), Tag: t})
		}
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

// Open authenticates and decrypts an envelope that bears slot's tag, at
// period now. It returns the session as it must be stored once the
// envelope is accepted; s itself is not changed, so a failure changes
// nothing (SPEC §6: an envelope that does not authenticate must not burn
// its counter).
func (s *Session) Open(e *envelope.Envelope, sl Slot, now Period) (*Session, Opened, error) {
	if len(e.Body) < SaltSize+envelope.Overhead {
		return nil, Opened{}, ErrNotMine
	}
	c := s.Clone()
	if sl.Next {
		if c.Next == nil || c.Next.N != sl.Epoch {
			return nil, Opened{}, ErrNotMine
		}
		return c.openNext(e, sl, now)
	}
	for i := range c.Recv {
		if c.Recv[i].N == sl.Epoch {
			return c.openKnown(&c.Recv[i], e, sl, now)
		}
	}
	return nil, Opened{}, ErrNotMine
}

// openNext opens the first envelope to arrive of the peer's next epoch and
// mirrors the peer's root step: at most one X25519 and one ML-KEM
// decapsulation per envelope bearing a watched tag.
func (c *Session) openNext(e *envelope.Envelope, sl Slot, now Period) (*Session, Opened, error) {
	nx := c.Next
	h, ok := readHeader(e.Body, nx.Mask, e.Tag, now)
	if !ok || h.flags&flagKey == 0 {
		return nil, Opened{}, ErrNotMine
	}
	if (h.ct != nil) != (c.DK != nil) { // my ML-KEM key must be answered, and only it
		return nil, Opened{}, ErrDowngrade
	}
	dh, err := x25519(c.Self.Priv, h.pub)
	if err != nil {
		return nil, Opened{}, ErrNotMine
	}
	var kss []byte
	if h.ct != nil {
		if kss, err = decapsulate(c.DK, h.ct); err != nil {
			return nil, Opened{}, ErrNotMine
		}
	}
	rk, es, ts := rootStep(c.RK, dh, kss, h.pub, c.Self.Pub, h.ct)
	start := h.period - h.age
	r := RecvEpoch{N: nx.N, Pub: h.pub, Start: start, Mask: nx.Mask, Chain: nx.Tags, Periods: nx.Periods}
	copy(r.Chain.Msg[:], kdf(es[:], "grapevine v2 message chain", 32))
	content, secret, ok := r.open(e, sl.Counter, h, now)
	if !ok {
		return nil, Opened{}, ErrNotMine
	}
	// Authentic: the peer stepped. Everything below is the mirror of step.
	for i := range c.Recv {
		if c.Recv[i].N+2 == nx.N { // the peer's previous epoch used pn counters
			c.Recv[i].close(h.pn, now)
		}
	}
	c.Recv = append(c.Recv, r)
	c.RK, c.Peer, c.Answer = rk, h.pub, true
	c.PeerEK = nil
	if h.ek != nil {
		c.PeerEK = append([]byte(nil), h.ek...)
	}
	if h.ct != nil {
		c.DK, c.KEMPeriod = nil, now
	}
	c.Acked(nx.N - 1) // it answers my key
	c.Next = nil
	c.Mine = newNextEpoch(nx.N+1, ts, start)
	c.pushLink(linkBase(rk))
	c.prune()
	return c, Opened{Content: content, Secret: secret, Epoch: r.N, Stepped: true}, nil
}

// openKnown opens an envelope of a peer epoch whose key is known: its
// header may still carry that key, which must then be the same.
func (c *Session) openKnown(r *RecvEpoch, e *envelope.Envelope, sl Slot, now Period) (*Session, Opened, error) {
	h, ok := readHeader(e.Body, r.Mask, e.Tag, now)
	if !ok || (h.flags&flagKey != 0 && h.pub != r.Pub) {
		return nil, Opened{}, ErrNotMine
	}
	content, secret, ok := r.open(e, sl.Counter, h, now)
	if !ok {
		return nil, Opened{}, ErrNotMine
	}
	c.prune()
	return c, Opened{Content: content, Secret: secret, Epoch: r.N}, nil
}

// open derives the key of counter n sealed in the header's period and
// opens e, moving r past n. r belongs to a copy of the session that the
// caller drops if open fails.
func (r *RecvEpoch) open(e *envelope.Envelope, n uint32, h header, now Period) ([]byte, [envelope.SecretSize]byte, bool) {
	var secret [envelope.SecretSize]byte
	pk, ok := r.Periods.At(h.period) // gone once the period left the retention window
	if !ok {
		return nil, secret, false
	}
	ck, ok := r.keyFor(n, now)
	if !ok {
		return nil, secret, false
	}
	mk := messageKey(ck, pk)
	salt := e.Body[:SaltSize]
	content, err := envelope.Open(sealKeyOf(mk, salt), e, SaltSize+h.len)
	if err != nil {
		return nil, secret, false
	}
	return content, receiptSecretOf(mk, salt), true
}

// close records that the epoch used limit counters: those below it never
// opened nor skipped yet become skipped keys (as of now), so they are
// forgotten with the retention window rather than kept with the chain.
func (r *RecvEpoch) close(limit uint32, now Period) {
	r.Limit, r.Closed = limit, true
	for r.Chain.Next < limit && len(r.Skipped) < MaxSkipped {
		m := r.Chain.Next
		k, t := r.Chain.step()
		r.Skipped = append(r.Skipped, skippedKey{N: m, Key: k, Tag: t, Period: now})
	}
	r.Chain = chain{Next: max(r.Chain.Next, limit)} // the chain itself is no longer needed
}

// keyFor returns the counter key of counter n and moves the epoch past it:
// a skipped key is used up, or the chains are advanced to n, keeping the
// keys and tags of the counters passed over (as of period now). ok is
// false for a counter already opened or too far ahead.
func (r *RecvEpoch) keyFor(n uint32, now Period) (mk [32]byte, ok bool) {
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
		k, t := r.Chain.step()
		r.Skipped = append(r.Skipped, skippedKey{N: m, Key: k, Tag: t, Period: now})
	}
	if over := len(r.Skipped) - MaxSkipped; over > 0 {
		r.Skipped = r.Skipped[over:] // the oldest skipped go first
	}
	mk, _ = r.Chain.step()
	return mk, true
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

// Forget deletes what the retention window no longer needs: the period
// keys before oldest, and the keys of counters skipped before it. Envelopes
// sealed in those periods can no longer be opened here.
func (s *Session) Forget(oldest Period) {
	if s.Send != nil {
		s.Send.Periods.AdvanceTo(oldest)
	}
	for _, nx := range []*NextEpoch{s.Next, s.Mine} {
		if nx != nil {
			nx.Periods.AdvanceTo(oldest)
		}
	}
	for i := range s.Recv {
		r := &s.Recv[i]
		r.Periods.AdvanceTo(oldest)
		kept := r.Skipped[:0]
		for _, k := range r.Skipped {
			if k.Period >= oldest {
				kept = append(kept, k)
			}
		}
		r.Skipped = kept
	}
	s.prune()
}

// ProofKey is the key this side proves itself with on a link in period p
// (SPEC §12.6): under the newest root the peer is known to hold.
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
	return linkKey(s.Links[i], p), true
}

// CheckKeys are the keys a peer's proof may be made with in periods p−1 to
// p+1 (clock skew), under the newest root and the one before it.
func (s *Session) CheckKeys(p Period) [][]byte {
	var out [][]byte
	for _, l := range s.Links {
		for q := max(p, 1) - 1; q <= p+1; q++ {
			out = append(out, linkKey(l, q))
		}
	}
	return out
}

// LinkProofWith is the proof for one link under a recognition key (SPEC
// §12.6): HMAC-SHA256(key, role || side || binding)[:16], role 'I' from the
// side that dialled the link and 'R' from the other, side 'L' from the
// member of the pair whose fingerprint sorts first and 'H' from the other.
// The key is the pair's, so role and side keep a proof reflected back to
// its sender from matching anything; binding is the link's handshake hash.
func LinkProofWith(key []byte, dialled, low bool, binding []byte) (proof [16]byte) {
	role := linkRole(dialled, low)
	sum := prfSum(key, role[:], binding)
	copy(proof[:], sum[:])
	return proof
}

func linkRole(dialled, low bool) [2]byte {
	role := [2]byte{'R', 'H'}
	if dialled {
		role[0] = 'I'
	}
	if low {
		role[1] = 'L'
	}
	return role
}

// A LinkProver computes LinkProofWith for one recognition key with the
// HMAC key schedule done once: a node checks every Hello of a period
// against the same keys, and the schedule is half the cost of a proof.
//
// It keeps only what the schedule ends in, the SHA-256 chaining values after
// the key's inner and outer pad blocks (64 bytes; crypto/hmac keeps two
// digests and their marshalled copies, ~640), and each proof resumes a
// digest of its own from them: a node keeps one prover per recognition key
// of the period, and a simulated city every node's. Proof changes nothing
// in the prover, so it is safe for concurrent use.
type LinkProver struct {
	inner, outer [sha256.Size]byte
}

// NewLinkProver returns a LinkProver for key.
func NewLinkProver(key []byte) *LinkProver {
	var pad [sha256.BlockSize]byte
	if len(key) > len(pad) {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	p := &LinkProver{}
	copy(pad[:], key)
	for i := range pad {
		pad[i] ^= 0x36
	}
	p.inner = chainAfter(pad)
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	p.outer = chainAfter(pad)
	return p
}

// Proof is LinkProofWith(key, dialled, low, binding).
func (p *LinkProver) Proof(dialled, low bool, binding []byte) (proof [16]byte) {
	r := resumers.Get().(*resumer)
	r.role = linkRole(dialled, low)
	r.resume(p.inner)
	r.d.Write(r.role[:])
	r.d.Write(binding)
	inner := r.d.Sum(r.sum[:0])
	r.resume(p.outer)
	r.d.Write(inner)
	copy(proof[:], r.d.Sum(r.sum[:0]))
	resumers.Put(r)
	return proof
}

// A resumer is a SHA-256 digest that Proof resumes from a chaining value,
// with room for what passes through its interface (which would otherwise
// go to the heap on every proof). resumers keeps one for each proof under
// way, not one per prover.
type resumer struct {
	d     hash.Hash
	u     encoding.BinaryUnmarshaler // d
	state []byte
	role  [2]byte
	sum   [sha256.Size]byte
}

var resumers = sync.Pool{New: func() any {
	d := sha256.New()
	return &resumer{d: d, u: d.(encoding.BinaryUnmarshaler), state: bytes.Clone(afterBlock)}
}}

// resume sets the digest to have hashed one block, ending in chain (state
// is afterBlock's but for the chaining value).
func (r *resumer) resume(chain [sha256.Size]byte) {
	copy(r.state[chainAt:], chain[:])
	if err := r.u.UnmarshalBinary(r.state); err != nil {
		panic(fmt.Sprintf("failed to resume SHA-256 state: %v", err))
	}
}

// afterBlock is crypto/sha256's marshalled state after one block; the state
// after any one block differs from it only in the chaining value, at
// chainAt. chainAfter checks this of every state it reads, so a change of
// the format stops a prover from being made rather than giving wrong
// proofs.
var afterBlock = marshalAfter([sha256.BlockSize]byte{})

const chainAt = len("sha\x03") // after the format's magic

func marshalAfter(block [sha256.BlockSize]byte) []byte {
	d := sha256.New()
	d.Write(block[:])
	state, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("failed to marshal SHA-256 state: %v", err))
	}
	return state
}

// chainAfter is SHA-256's chaining value after block, the first.
func chainAfter(block [sha256.BlockSize]byte) (chain [sha256.Size]byte) {
	state := marshalAfter(block)
	end := chainAt + len(chain)
	if len(state) != len(afterBlock) || len(state) < end ||
		!bytes.Equal(state[:chainAt], afterBlock[:chainAt]) || !bytes.Equal(state[end:], afterBlock[end:]) {
		panic("crypto/sha256's marshalled state is not laid out as LinkProver expects")
	}
	return [sha256.Size]byte(state[chainAt:end])
}
