package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
)

// A Session is one pairwise conversation's key schedule (SPEC §4): a Double
// Ratchet laid over precomputable tags, for a mesh where envelopes arrive
// days late and out of order.
//
// Each side sends in epochs. A side opens a new sending epoch (a root step)
// the first time it sends after learning a new ratchet key of its peer, so
// epochs alternate between the two sides as in the Double Ratchet:
//
//	(RK', ES, TS) = HKDF(salt = RK, ikm = DH(new own key, peer key) [|| ML-KEM secret],
//	                     info = "grapevine v2 root step" || own pub || peer pub [|| KEM ciphertext], 96)
//
// ES seeds the new epoch's message chain (a key per envelope); TS seeds the
// tag chain of the peer's *next* epoch, so the peer recognises that epoch's
// envelopes before it has seen its ratchet key. The new key travels, masked,
// in a prefix of the epoch's envelopes until the peer is known to hold it (a
// receipt of such an envelope, or the peer's next epoch).
//
// Epoch 0 belongs to the initiator of first contact and is seeded from the
// first-contact key SK (it carries no DH of its own: what it seals is as
// safe as SK); every later epoch mixes a fresh DH into the root, and the
// first one, the responder's, also an ML-KEM-768 secret.
type Session struct {
	ID        [8]byte   `json:"id"`                // names the session among a contact's
	RK        [32]byte  `json:"rk"`                // root key
	Self      ratchetKP `json:"self"`              // my current ratchet key pair
	Peer      [32]byte  `json:"peer"`              // the peer's newest ratchet public key
	Answer    bool      `json:"answer,omitempty"`  // Peer not yet answered by a root step of mine
	PeerEK    []byte    `json:"peer_ek,omitempty"` // ML-KEM key the peer announced: my next step encapsulates to it
	DK        []byte    `json:"dk,omitempty"`      // seed of the ML-KEM key I announced, until answered
	KEMPeriod Period    `json:"kem_period"`        // when an ML-KEM secret last entered the root

	Send *SendEpoch  `json:"send,omitempty"` // nil until I have sent (a responder before accepting)
	Recv []RecvEpoch `json:"recv,omitempty"` // the peer's epochs I still watch, oldest first
	// Next watches for the peer's next epoch: tags seeded by my last root step.
	Next *NextEpoch `json:"next,omitempty"`
	// Mine seeds the tags of my next sending epoch (from the peer's last step).
	Mine *NextEpoch `json:"mine,omitempty"`
	// Links are the link recognition bases of the newest root and the one
	// before it (SPEC §12.6): the peer may not have the newest yet.
	Links [][32]byte `json:"links"`
}

type ratchetKP struct {
	Priv [32]byte `json:"priv"`
	Pub  [32]byte `json:"pub"`
}

// SendEpoch is my current sending epoch.
type SendEpoch struct {
	N       uint64      `json:"n"` // epoch number: 0 is the initiator's first, then +1 per root step
	Pub     [32]byte    `json:"pub"`
	Start   Period      `json:"start"`
	Mask    [32]byte    `json:"mask"` // keys the header masks
	Chain   chain       `json:"chain"`
	Periods PeriodChain `json:"periods"`         // at the period last sent in
	Acked   bool        `json:"acked,omitempty"` // the peer holds Pub: envelopes need no prefix
	PN      uint32      `json:"pn"`              // counters used in my previous epoch, told in the prefix
	CT      []byte      `json:"ct,omitempty"`    // ML-KEM ciphertext answering the peer, told until acked
	EK      []byte      `json:"ek,omitempty"`    // ML-KEM key I announce, told until acked
}

// RecvEpoch is one of the peer's epochs that I watch.
type RecvEpoch struct {
	N       uint64      `json:"n"`
	Pub     [32]byte    `json:"pub"`
	Start   Period      `json:"start"`
	Mask    [32]byte    `json:"mask"`
	Chain   chain       `json:"chain"`   // counters below Chain.Next were opened or skipped
	Periods PeriodChain `json:"periods"` // at the oldest period still kept
	// Skipped keeps the keys and tags of counters passed over on the way to
	// a later one, so they open when they arrive (at most MaxSkipped;
	// dropped a retention window after they were skipped).
	Skipped []skippedKey `json:"skipped,omitempty"`
	// Limit, once known (the peer's next epoch told it), is the number of
	// counters the epoch used: nothing at or above it is watched.
	Limit  uint32 `json:"limit,omitempty"`
	Closed bool   `json:"closed,omitempty"`
}

type skippedKey struct {
	N      uint32   `json:"n"`
	Key    [32]byte `json:"k"` // the counter key
	Tag    [16]byte `json:"t"`
	Period Period   `json:"p"` // when it was skipped
}

// NextEpoch is an epoch not yet opened: what its tag seed gives, anchored
// at the start of the epoch before it.
type NextEpoch struct {
	N       uint64      `json:"n"`
	Anchor  Period      `json:"anchor"`
	Mask    [32]byte    `json:"mask"`
	Tags    chain       `json:"tags"` // Msg unset
	Periods PeriodChain `json:"periods"`
}

func newNextEpoch(n uint64, ts [32]byte, anchor Period) *NextEpoch {
	return &NextEpoch{N: n, Anchor: anchor, Mask: maskKeyOf(ts[:]), Tags: newChain(nil, ts[:]),
		Periods: newPeriodChain(ts[:], anchor)}
}

// Window sizes (SPEC §4): how many counters past the last it opened a
// receiver watches.
const (
	Window     = 32 // of an epoch whose ratchet key it knows
	NextWindow = 16 // of the peer's next epoch, before its first envelope arrived
	MaxSkipped = 64 // skipped message keys kept per epoch
	MaxRecv    = 6  // peer epochs watched at once; the oldest closed ones go first
)

// Errors from Open.
var (
	ErrNotMine   = errors.New("envelope does not authenticate under this session")
	ErrDowngrade = errors.New("the peer's new epoch does not answer my ML-KEM key")
)

// kemSeedSize, kemEKSize and kemCTSize are ML-KEM-768's sizes.
const (
	kemSeedSize = 64
	kemEKSize   = mlkem.EncapsulationKeySize768
	kemCTSize   = mlkem.CiphertextSize768
)

// rootStep is the root KDF. own and peer are the stepping side's new public
// key and the peer's key it answers; ct is the KEM ciphertext, if any.
func rootStep(rk [32]byte, dh, kss []byte, own, peer [32]byte, ct []byte) (rk2, es, ts [32]byte) {
	info := make([]byte, 0, 23+64+len(ct))
	info = append(info, "grapevine v2 root step"...)
	info = append(info, own[:]...)
	info = append(info, peer[:]...)
	info = append(info, ct...)
	out, err := hkdf.Key(sha256.New, append(slices.Clip(dh), kss...), rk[:], string(info), 96)
	if err != nil {
		panic(err)
	}
	copy(rk2[:], out[0:32])
	copy(es[:], out[32:64])
	copy(ts[:], out[64:96])
	return
}

func newRatchetKey(r io.Reader) (ratchetKP, error) {
	k, err := NewX25519(r)
	if err != nil {
		return ratchetKP{}, fmt.Errorf("failed to generate ratchet key: %w", err)
	}
	var kp ratchetKP
	copy(kp.Priv[:], k.Bytes())
	copy(kp.Pub[:], k.PublicKey().Bytes())
	return kp, nil
}

func x25519(priv, pub [32]byte) ([]byte, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, err
	}
	p, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return nil, err
	}
	s, err := k.ECDH(p)
	if err != nil {
		return nil, fmt.Errorf("failed key agreement: %w", err)
	}
	return s, nil
}

// newKEM draws a fresh ML-KEM-768 key pair from r: its 64-byte seed and its
// encapsulation key.
func newKEM(r io.Reader) (seed, ek []byte, err error) {
	seed = make([]byte, kemSeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, nil, fmt.Errorf("failed to generate ML-KEM key: %w", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return nil, nil, err
	}
	return seed, dk.EncapsulationKey().Bytes(), nil
}

// encapsulate runs ML-KEM-768 encapsulation. With the system's randomness it
// is the standard library's; with any other reader (the simulator's seeded
// randomness, test vectors) it is the derandomised form fed from that
// reader, so that a simulated run can be replayed byte for byte.
func encapsulate(ekBytes []byte, r io.Reader) (kss, ct []byte, err error) {
	ek, err := mlkem.NewEncapsulationKey768(ekBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid ML-KEM encapsulation key: %w", err)
	}
	if r == rand.Reader {
		kss, ct = ek.Encapsulate()
		return kss, ct, nil
	}
	return encapsulateFrom(ek, r)
}

func decapsulate(seed, ct []byte) ([]byte, error) {
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return nil, err
	}
	return dk.Decapsulate(ct)
}

// Clone returns a deep copy, so a caller can try changes and keep or drop them.
func (s *Session) Clone() *Session {
	c := *s
	c.PeerEK = bytes.Clone(s.PeerEK)
	c.DK = bytes.Clone(s.DK)
	if s.Send != nil {
		se := *s.Send
		se.CT, se.EK = bytes.Clone(s.Send.CT), bytes.Clone(s.Send.EK)
		c.Send = &se
	}
	c.Recv = make([]RecvEpoch, len(s.Recv))
	for i, r := range s.Recv {
		r.Skipped = slices.Clone(r.Skipped)
		c.Recv[i] = r
	}
	if s.Next != nil {
		n := *s.Next
		c.Next = &n
	}
	if s.Mine != nil {
		m := *s.Mine
		c.Mine = &m
	}
	c.Links = slices.Clone(s.Links)
	return &c
}

// Established reports whether the peer has answered: a root step of the
// peer's has been seen (or, for the responder, made by me).
func (s *Session) Established() bool {
	return s.Send != nil && s.Send.N > 0 || len(s.Recv) > 0 && s.Recv[len(s.Recv)-1].N > 0
}

// latestN is the number of the newest epoch of either side.
func (s *Session) latestN() (n uint64, ok bool) {
	if s.Send != nil {
		n, ok = s.Send.N, true
	}
	for _, r := range s.Recv {
		if !ok || r.N > n {
			n, ok = r.N, true
		}
	}
	return n, ok
}

// Acked tells the session that the peer holds my ratchet key of epoch n: a
// receipt came back for an envelope of that epoch that carried it.
func (s *Session) Acked(n uint64) {
	if s.Send != nil && s.Send.N == n && !s.Send.Acked {
		s.Send.Acked = true
		s.Send.CT, s.Send.EK = nil, nil
	}
}
