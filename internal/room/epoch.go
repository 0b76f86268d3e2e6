package room

import (
	"cmp"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// An epoch's key schedule (SPEC §15.4), from its secret GS and hash EH:
//
//	base   = HKDF(GS, "grapevine room epoch keys" || group ID || EH)
//	mask   = HKDF(base, "grapevine room header mask")
//	P_s    = HKDF(base, "grapevine room period chain")   at the epoch's start period s;
//	         P_{p+1} = HKDF(P_p, "grapevine v2 period next") as in SPEC §4.3
//	for each member m, by its room key R_m:
//	C_0    = HKDF(base, "grapevine room sender chain" || R_m)
//	T_0    = HKDF(base, "grapevine room tag chain" || R_m)
//	C_{n+1} = HMAC(C_n, "next"), ck_n = HMAC(C_n, "message")
//	T_{n+1} = HMAC(T_n, "next"), tag_n = HMAC(T_n, "tag")[0:16]
//
// Every epoch's secret is fresh: its signer draws it and sends it to each
// member pairwise (Welcome). Only the signer keeps it, until its welcomes
// are sent (ForgetSecret); every other member derives the chains and drops
// it, so a device seized later cannot rebuild the keys of messages it
// already opened.
type Epoch struct {
	Hash   Hash
	Number uint64
	group  [32]byte

	secret  [32]byte // only while I am its signer and have not forgotten it
	hasSec  bool
	mask    [32]byte
	periods keys.PeriodChain // receiving: at the oldest period kept

	me          *chain // my sending chain, nil if I am not a member
	sendPeriods keys.PeriodChain

	senders map[[32]byte]*sender // the others, by room key
	watch   map[[16]byte]slot
	skipped int
	order   uint64     // ages skipped keys, oldest evicted first
	opened  [][16]byte // recently opened tags, to name replays
}

// chain is one sender's hash chains, at counter N.
type chain struct {
	N   uint32
	Msg [32]byte
	Tag [32]byte
}

func (c *chain) peek() (ck [32]byte, tag [16]byte) {
	ck = prf(c.Msg[:], []byte("message"))
	t := prf(c.Tag[:], []byte("tag"))
	copy(tag[:], t[:16])
	return ck, tag
}

func (c *chain) step() (ck [32]byte, tag [16]byte) {
	ck, tag = c.peek()
	c.Msg = prf(c.Msg[:], []byte("next"))
	c.Tag = prf(c.Tag[:], []byte("next"))
	c.N++
	return ck, tag
}

// stepTag returns the tag of counter c.N and moves only the tag chain on:
// what the watch window needs (Msg is left behind and must not be used).
func (c *chain) stepTag() (tag [16]byte) {
	t := prf(c.Tag[:], []byte("tag"))
	copy(tag[:], t[:16])
	c.Tag = prf(c.Tag[:], []byte("next"))
	c.N++
	return tag
}

type sender struct {
	ed      [32]byte // identity key, what a reader is told
	x       [32]byte // identity X25519 key, for its fingerprint
	key     [32]byte // room key, what signatures verify under
	ch      chain    // at the next counter not yet opened
	ahead   chain    // the tag chain at the first counter past the watched window
	skipped map[uint32]skippedKey
}

type skippedKey struct {
	ck    [32]byte
	tag   [16]byte
	order uint64
}

type slot struct {
	s *sender
	n uint32
}

func epochBase(gs, group [32]byte, h Hash) [32]byte {
	return kdf(gs[:], "grapevine room epoch keys"+string(group[:])+string(h[:]))
}

func senderChain(base, roomKey [32]byte) chain {
	return chain{
		Msg: kdf(base[:], "grapevine room sender chain"+string(roomKey[:])),
		Tag: kdf(base[:], "grapevine room tag chain"+string(roomKey[:])),
	}
}

func newEpoch(s *State, gs [32]byte, self [32]byte) *Epoch {
	base := epochBase(gs, s.Group, s.Hash)
	e := &Epoch{
		Hash: s.Hash, Number: s.Epoch, group: s.Group,
		mask:    kdf(base[:], "grapevine room header mask"),
		periods: keys.PeriodChain{Period: s.Start, Key: kdf(base[:], "grapevine room period chain")},
		senders: map[[32]byte]*sender{}, watch: map[[16]byte]slot{},
	}
	e.sendPeriods = e.periods
	for _, m := range s.members {
		c := senderChain(base, m.Key)
		if m.Ed == self {
			e.me = &c
			continue
		}
		sd := &sender{ed: m.Ed, x: m.X, key: m.Key, ch: c, skipped: map[uint32]skippedKey{}}
		e.senders[m.Key] = sd
		e.rewatch(sd)
	}
	return e
}

// rewatch lists the tags of sender sd's next Window counters.
func (e *Epoch) rewatch(sd *sender) {
	sd.ahead = chain{N: sd.ch.N, Tag: sd.ch.Tag}
	for range Window {
		tag := sd.ahead.stepTag()
		e.watch[tag] = slot{s: sd, n: sd.ahead.N - 1}
	}
}

func (r *Room) setSecret(h Hash, gs [32]byte) error {
	s, ok := r.stateAt(h)
	if !ok {
		return fmt.Errorf("failed to set the secret of epoch %x...: %w", h[:4], ErrInvalid)
	}
	e := newEpoch(s, gs, r.self)
	if s.SignerEd == r.self {
		e.secret, e.hasSec = gs, true
	}
	r.epochs[h] = e
	r.prune()
	return nil
}

// prune keeps MaxEpochs epochs and deletes the others with their keys:
// those on the canonical chain first, newest first, then the newest of
// forks that lost (a long losing branch must not push out the head).
func (r *Room) prune() {
	if len(r.epochs) <= MaxEpochs {
		return
	}
	hs := slices.Collect(keysOf(r.epochs))
	slices.SortFunc(hs, func(a, b Hash) int {
		if ca, cb := r.Canonical(a), r.Canonical(b); ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return cmp.Compare(r.epochs[b].Number, r.epochs[a].Number)
	})
	for _, h := range hs[MaxEpochs:] {
		delete(r.epochs, h)
		r.dropped[h] = true
	}
}

// ForgetSecret deletes epoch h's secret once its welcomes are sent.
func (r *Room) ForgetSecret(h Hash) {
	if e := r.epochs[h]; e != nil {
		e.secret, e.hasSec = [32]byte{}, false
	}
}

// Epoch returns the epoch h if I hold its keys.
func (r *Room) Epoch(h Hash) (*Epoch, bool) {
	e, ok := r.epochs[h]
	return e, ok
}

// Expected lists every tag the room watches: for each epoch held and each
// other member, the next Window counters and the skipped ones.
func (r *Room) Expected() [][16]byte {
	var out [][16]byte
	for _, e := range r.epochs {
		for t := range e.watch {
			out = append(out, t)
		}
	}
	return out
}

// Recognises reports whether tag is one the room watches.
func (r *Room) Recognises(tag [16]byte) bool {
	for _, e := range r.epochs {
		if _, ok := e.watch[tag]; ok {
			return true
		}
	}
	return false
}

// A group body (SPEC §15.5), after the 38-byte envelope header:
//
//	0   8  salt, random
//	8   1  period the envelope was sealed in, modulo 256, masked:
//	       XOR HKDF-Expand(mask, "grapevine room header mask" || tag || salt, 1)
//	9   n  AEAD(seal key, ad = H || salt || masked period, padded(signature (64) || content))
//
//	mk             = HMAC(ck_n, "period" || P_p)
//	seal key       = HMAC(mk, "seal" || salt)
//	commitment     = Commitment(16 random bytes the sender draws and deletes):
//	                 no one, member or not, can write the receipt that would
//	                 purge the envelope from every relay
//	signature      = Ed25519(sender's room key, "grapevine room message v1" || group ID || EH
//	                 || be32(expiry) || tag || commitment || salt || masked period || content)
const (
	saltSize   = 8
	prefixSize = saltSize + 1
	sigSize    = 64
)

func maskByte(key [32]byte, tag [16]byte, salt []byte) byte {
	m, err := hkdf.Expand(sha256.New, key[:], "grapevine room header mask"+string(tag[:])+string(salt), 1)
	if err != nil {
		panic(err) // only for lengths above 255*32
	}
	return m[0]
}

func messageKeys(ck, pk [32]byte, salt []byte) (seal [32]byte) {
	mk := prf(ck[:], []byte("period"), pk[:])
	return prf(mk[:], []byte("seal"), salt)
}

func signed(group [32]byte, eh Hash, expiry uint32, tag [16]byte, commit [16]byte, prefix, content []byte) []byte {
	b := make([]byte, 0, len(messageLabel)+32+32+4+16+16+prefixSize+len(content))
	b = append(b, messageLabel...)
	b = append(b, group[:]...)
	b = append(b, eh[:]...)
	b = binary.BigEndian.AppendUint32(b, expiry)
	b = append(b, tag[:]...)
	b = append(b, commit[:]...)
	b = append(b, prefix...)
	return append(b, content...)
}

// Seal seals content (SPEC §5.3: type, time, payload) as my next message
// in the canonical head's epoch: one envelope that every member opens. It
// draws the 8-byte salt, then the commitment's 16-byte secret, from rand. now is the trusted period; a clock gone
// back never takes the sending chain back.
func (r *Room) Seal(now keys.Period, content []byte, expiry uint32, hops uint8, rand io.Reader) (*envelope.Envelope, error) {
	return r.SealIn(r.head.Hash, now, content, expiry, hops, rand)
}

// SealIn seals in epoch h, which need not be the head: sealed welcomes of
// a new epoch travel in its parent (SealWelcomes).
func (r *Room) SealIn(h Hash, now keys.Period, content []byte, expiry uint32, hops uint8, rand io.Reader) (*envelope.Envelope, error) {
	e := r.epochs[h]
	switch {
	case e == nil:
		return nil, fmt.Errorf("failed to seal: %w for epoch %x...", ErrNoKey, h[:4])
	case e.me == nil:
		return nil, fmt.Errorf("failed to seal: %w of epoch %d", ErrNotMember, e.Number)
	}
	p := max(now, e.sendPeriods.Period)
	pk, ok := e.sendPeriods.At(p)
	if !ok {
		return nil, fmt.Errorf("failed to seal: period %d is too far from the chain's %d", p, e.sendPeriods.Period)
	}
	e.sendPeriods = keys.PeriodChain{Period: p, Key: pk}
	prefix := make([]byte, prefixSize)
	if _, err := io.ReadFull(rand, prefix[:saltSize]); err != nil {
		return nil, fmt.Errorf("failed to draw salt: %w", err)
	}
	ck, tag := e.me.step()
	prefix[saltSize] = byte(p) ^ maskByte(e.mask, tag, prefix[:saltSize])
	key := messageKeys(ck, pk, prefix[:saltSize])
	var secret [envelope.SecretSize]byte
	if _, err := io.ReadFull(rand, secret[:]); err != nil {
		return nil, fmt.Errorf("failed to draw the commitment's secret: %w", err)
	}
	commit := envelope.Commitment(secret)
	clear(secret[:])
	sig := ed25519.Sign(r.roomKey, signed(r.Group, e.Hash, expiry, tag, commit, prefix, content))
	env, err := envelope.Seal(envelope.Sealing{Key: key, Tag: tag, Commit: commit, Expiry: expiry, Hops: hops, Prefix: prefix},
		append(sig, content...))
	if err != nil {
		return nil, fmt.Errorf("failed to seal: %w", err)
	}
	return env, nil
}

// Message is an opened group message.
type Message struct {
	Epoch   Hash
	Number  uint64
	Sender  [32]byte // identity key
	X       [32]byte // the sender's identity X25519 key (with Sender, its fingerprint)
	Counter uint32
	Period  keys.Period
	Content []byte
	// Canonical is false for an epoch on a fork that lost (SPEC §15.3):
	// the message is genuine but was sent while its sender saw another
	// member list.
	Canonical bool
}

// Open recognises and opens a group envelope at the trusted period now. It
// changes nothing unless the envelope authenticates and its signature
// verifies under the room key of the sender whose chain its tag belongs
// to, so a forged or edited copy never burns the genuine one's counter.
func (r *Room) Open(env *envelope.Envelope, now keys.Period) (*Message, error) {
	var e *Epoch
	var sl slot
	for _, x := range r.epochs {
		if s, ok := x.watch[env.Tag]; ok {
			e, sl = x, s
			break
		}
		if slices.Contains(x.opened, env.Tag) {
			return nil, fmt.Errorf("failed to open group envelope: %w", ErrReplay)
		}
	}
	if e == nil {
		return nil, fmt.Errorf("failed to open group envelope: %w", ErrUnknown)
	}
	if len(env.Body) < prefixSize+envelope.Overhead {
		return nil, fmt.Errorf("failed to open group envelope: %w: body of %d bytes", ErrOpen, len(env.Body))
	}
	prefix := env.Body[:prefixSize]
	latest := uint64(now) + 1 // a sender's clock may run a period ahead
	d := (latest - uint64(prefix[saltSize]^maskByte(e.mask, env.Tag, prefix[:saltSize]))) & 0xff
	if latest < d {
		return nil, fmt.Errorf("failed to open group envelope: %w: period before 0", ErrOpen)
	}
	p := keys.Period(latest - d)
	pk, ok := e.periods.At(p)
	if !ok {
		return nil, fmt.Errorf("failed to open group envelope of period %d: %w", p, ErrExpired)
	}
	ck := e.counterKey(sl)
	key := messageKeys(ck, pk, prefix[:saltSize])
	plain, err := envelope.Open(key, env, prefixSize)
	if err != nil {
		return nil, fmt.Errorf("failed to open group envelope: %w", ErrOpen)
	}
	if len(plain) < sigSize {
		return nil, fmt.Errorf("failed to open group envelope: %w: no signature", ErrOpen)
	}
	sig, content := plain[:sigSize], plain[sigSize:]
	if !ed25519.Verify(sl.s.key[:], signed(r.Group, e.Hash, env.Expiry, env.Tag, env.Commit, prefix, content), sig) {
		return nil, fmt.Errorf("failed to open group envelope: %w: not by the sender whose chain it uses", ErrSignature)
	}
	e.consume(sl, env.Tag)
	return &Message{Epoch: e.Hash, Number: e.Number, Sender: sl.s.ed, X: sl.s.x, Counter: sl.n, Period: p,
		Content: content, Canonical: r.Canonical(e.Hash)}, nil
}

// counterKey returns ck of slot sl without changing anything.
func (e *Epoch) counterKey(sl slot) [32]byte {
	if k, ok := sl.s.skipped[sl.n]; ok {
		return k.ck
	}
	c := sl.s.ch
	for c.N < sl.n {
		c.step()
	}
	ck, _ := c.peek()
	return ck
}

// consume records that slot sl was opened: counters passed over become
// skipped keys (bounded, their tags stay watched), the sender's chain moves
// past sl, and the watch window moves with it, one new tag per counter.
func (e *Epoch) consume(sl slot, tag [16]byte) {
	sd := sl.s
	delete(e.watch, tag)
	e.opened = append(e.opened, tag)
	if len(e.opened) > 4*Window {
		e.opened = e.opened[1:]
	}
	if _, ok := sd.skipped[sl.n]; ok {
		delete(sd.skipped, sl.n)
		e.skipped--
		return
	}
	for sd.ch.N < sl.n {
		ck, t := sd.ch.step()
		e.order++
		sd.skipped[sd.ch.N-1] = skippedKey{ck: ck, tag: t, order: e.order}
		e.skipped++
	}
	sd.ch.step()
	for sd.ahead.N < sd.ch.N+Window {
		t := sd.ahead.stepTag()
		e.watch[t] = slot{s: sd, n: sd.ahead.N - 1}
	}
	for e.skipped > MaxSkipped {
		e.evictOldest()
	}
}

func (e *Epoch) evictOldest() {
	var oldest *sender
	var n uint32
	var best uint64
	for _, sd := range e.senders {
		for k, v := range sd.skipped {
			if oldest == nil || v.order < best {
				oldest, n, best = sd, k, v.order
			}
		}
	}
	delete(e.watch, oldest.skipped[n].tag)
	delete(oldest.skipped, n)
	e.skipped--
}

// Advance deletes the period keys before now - Retention in every epoch,
// so what never arrived cannot be opened once it has expired.
func (r *Room) Advance(now keys.Period) {
	if now >= Retention {
		r.ForgetBefore(now - Retention)
	}
}

// ForgetBefore deletes the period keys before oldest in every epoch: the
// node calls it with the oldest period of its own retention window.
func (r *Room) ForgetBefore(oldest keys.Period) {
	for _, e := range r.epochs {
		e.periods.AdvanceTo(oldest)
	}
}
