// Package session owns the protocol two neighbours speak over a link: set
// reconciliation of the envelopes each holds (Negentropy v1 over items
// (expiry, envelope ID)), transfer of what each side lacks in priority order
// (receipts first, then soonest to expire), and live push of new envelopes
// while the link lasts.
//
// A Session does no I/O and keeps no clock: the caller moves frames between
// it and a link (package mesh, with goroutines and sockets; the simulator,
// on virtual time), so one implementation serves both. See SPEC.md, "Sync".
package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/negentropy"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Frame types, the first byte of every link frame's plaintext. Payloads:
//
//	NegOpen   a Negentropy initial message: the responder reconciles against
//	          a fresh snapshot of what it holds
//	Neg       a Negentropy message continuing the round, either direction
//	Envelope  one envelope as on the wire, its hop budget already decremented
//	Want      n × 32-byte envelope IDs the sender lacks, 1 ≤ n ≤ MaxWant
//	Done      empty: the initiator's round finished (both sides now "synced")
//	Ping      empty: the peer answers Pong (keepalive)
//	Pong      empty
//	Hello     n × 16-byte link proofs, 32 ≤ n ≤ 512, once per link (SPEC §12.6)
//	Spray     copies (1 byte, 1..127) || envelope: spray-and-wait, with the
//	          copy budget handed over (SPEC §12.7)
//	Offer     n × (32-byte envelope ID || 16-byte tag), 1 ≤ n ≤ MaxOffer:
//	          envelopes down to their last copy, for their recipient to claim
//	          by a Want
//	ReceiptOffer n × (32-byte receipt ID || 32-byte ID of the envelope it
//	          proves delivered), 1 ≤ n ≤ MaxReceiptOffer: receipts down to
//	          their last copy, for holders of that envelope to claim by a Want
//	SprayAck  n × 8-byte envelope ID prefixes, 1 ≤ n ≤ MaxSprayAck: Spray
//	          envelopes whose copies the sender of the ack has stored; the
//	          copies of a Spray not acknowledged when the link ends go back
//	          to the node that handed them over (SPEC §12.7)
//	Have      n × (32-byte envelope ID || 1-byte hop budget), 1 ≤ n ≤
//	          MaxHave: epidemic envelopes the peer may lack (live push, or
//	          found by reconciliation), announced instead of sent whole; the
//	          peer Wants those it lacks and expects over no other link
//	          (SPEC §12.2)
const (
	TypeNegOpen      FrameType = 1
	TypeNeg          FrameType = 2
	TypeEnvelope     FrameType = 3
	TypeWant         FrameType = 4
	TypeDone         FrameType = 5
	TypePing         FrameType = 6
	TypePong         FrameType = 7
	TypeHello        FrameType = 8
	TypeSpray        FrameType = 9
	TypeOffer        FrameType = 10
	TypeReceiptOffer FrameType = 11
	TypeSprayAck     FrameType = 12
	TypeHave         FrameType = 13
)

// MaxHave is the most envelopes one Have frame announces.
const MaxHave = 1800

// haveSize is the size of one announced envelope in a Have frame: its ID
// and the hop budget it would arrive with.
const haveSize = envelope.IDSize + 1

// MaxSprayAck is the most envelopes one SprayAck acknowledges.
const MaxSprayAck = 512

// sprayAckSize is the size of one acknowledged envelope in a SprayAck: an
// ID prefix, which the node that handed the copies over matches against the
// few it awaits on this link.
const sprayAckSize = 8

// maxHanded bounds the Spray envelopes a link remembers awaiting their
// acknowledgement; past it, copies are handed over unacknowledged, as if
// the link could not lose them.
const maxHanded = 1 << 13

// FrameType is the first byte of a link frame's plaintext: what the frame
// carries.
type FrameType byte

var frameTypeNames = [...]string{TypeNegOpen: "NegOpen", TypeNeg: "Neg", TypeEnvelope: "Envelope", TypeWant: "Want",
	TypeDone: "Done", TypePing: "Ping", TypePong: "Pong", TypeHello: "Hello", TypeSpray: "Spray", TypeOffer: "Offer",
	TypeReceiptOffer: "ReceiptOffer", TypeSprayAck: "SprayAck", TypeHave: "Have"}

func (t FrameType) String() string {
	if int(t) < len(frameTypeNames) && frameTypeNames[t] != "" {
		return frameTypeNames[t]
	}
	return fmt.Sprintf("FrameType(%d)", byte(t))
}

// Limits on frame payloads.
const (
	FrameLimit       = 60000 // Negentropy frame size limit, below a link frame's 65518
	MaxWant          = 1800  // IDs per Want frame (57,600 bytes)
	MaxEnvelope      = 65518 // what one link frame can carry
	MaxOffer         = 1200  // offers per Offer frame (57,600 bytes)
	offerSize        = envelope.IDSize + envelope.TagSize
	MaxReceiptOffer  = 900 // receipt offers per ReceiptOffer frame (57,600 bytes)
	receiptOfferSize = 2 * envelope.IDSize
)

// MaxPayload is the largest payload each frame type may have; a peer that
// sends more is cut off.
func MaxPayload(typ FrameType) int {
	switch typ {
	case TypeNegOpen, TypeNeg:
		return FrameLimit
	case TypeEnvelope, TypeSpray:
		return MaxEnvelope
	case TypeOffer:
		return MaxOffer * offerSize
	case TypeReceiptOffer:
		return MaxReceiptOffer * receiptOfferSize
	case TypeSprayAck:
		return MaxSprayAck * sprayAckSize
	case TypeHave:
		return MaxHave * haveSize
	case TypeWant:
		return MaxWant * envelope.IDSize
	case TypeDone, TypePing, TypePong:
		return 0
	case TypeHello:
		return node.LinkHelloSize
	}
	return -1 // unknown type: never allowed
}

// Frame is one message on a link.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// Store is what a session needs of the node (implemented by *node.Node).
type Store interface {
	Snapshot() (*negentropy.Storage, error)
	Describe(ids []envelope.ID) []node.Held
	Forward(ids []envelope.ID, claimed func(envelope.ID) bool) ([]node.Outgoing, error)
	IngestFrom(source string, raws [][]byte, copies []uint8) (node.IngestReport, error)
	Claim(ids []envelope.ID, tags [][envelope.TagSize]byte) []envelope.ID
	ClaimReceipts(ids, targets []envelope.ID) []envelope.ID
	Redundant(id envelope.ID, hops uint8) bool
	LinkProofs(binding []byte, dialled bool) ([]byte, error)
	RecogniseLink(binding []byte, peerDialled bool, proofs []byte) (node.Contact, bool, error)
	MarkCarried(ids []envelope.ID) error
	NotDelivered(ids []envelope.ID) []envelope.ID
	ReturnCopies(ids []envelope.ID, copies []uint8) (int, error)
	// Expect, Arriving and Unexpect keep the node's record of the
	// envelopes on their way to it, by link (owner is the session), so
	// that it asks one neighbour for each (see have).
	Expect(owner any, ids []envelope.ID, hops []uint8, steal bool) (want, later, raise []envelope.ID)
	Raise(ids []envelope.ID, hops []uint8) (int, error)
	// LeavingHops replaces each stored hop budget with the one a copy
	// leaves with (one less).
	LeavingHops(hops []uint8)
	Arriving(owner any, ids []envelope.ID)
	Unexpect(owner any, ids []envelope.ID)
}

// Config sets up a session.
type Config struct {
	Initiator bool   // the side that dialled runs reconciliation rounds
	Source    string // the peer's address, for the node's fair eviction
	Binding   []byte // the link's handshake hash, for recognising contacts
	// MaxBatch is how many received envelopes one Flush ingests at most;
	// Handle asks for a flush when this many wait. Default 512.
	MaxBatch int
}

// Stats counts a session's traffic.
type Stats struct {
	EnvelopesSent     int  `json:"envelopes_sent"`
	EnvelopesReceived int  `json:"envelopes_received"`
	OffersSent        int  `json:"offers_sent"` // last copies offered: messages to their recipient, receipts to holders of their message
	Redundant         int  `json:"redundant"`   // envelopes received that were held already
	Rounds            int  `json:"rounds"`      // reconciliation rounds finished
	Synced            bool `json:"synced"`      // at least one round finished
	NegBytes          int  `json:"neg_bytes"`
	// PushDropped counts envelopes not pushed live because the send queue
	// was full (MaxPushQueue): the next reconciliation round sends them.
	PushDropped int `json:"push_dropped,omitempty"`
	// CopiesReturned counts spray-and-wait copies handed over on this link,
	// never acknowledged, and given back to the node when it closed.
	CopiesReturned int `json:"copies_returned,omitempty"`
	// Announced counts envelopes announced by a Have rather than sent
	// whole; AskedLater, envelopes the peer announced that were on their
	// way here over another link, asked for only if they had not arrived
	// ClaimTimeout later.
	Announced  int `json:"announced,omitempty"`
	AskedLater int `json:"asked_later,omitempty"`
	// Raised counts envelopes held here whose hop budget was raised to the
	// larger one the peer announced for its copy, instead of that copy
	// crossing the link.
	Raised int `json:"raised,omitempty"`
	// Contact is the name of the contact who recognised us on this link, if
	// any (SPEC §12.6); strangers stay nameless.
	Contact string `json:"contact,omitempty"`
}

// Session is one link's protocol state. Its methods are safe for concurrent
// use (a reader and a writer goroutine share it).
type Session struct {
	mu    sync.Mutex
	st    Store
	cfg   Config
	ini   *negentropy.Initiator
	res   *negentropy.Responder
	queue sendQueue
	// ids remembers what passed this link: which envelopes the peer
	// holds, which last copies were offered to it and claimed by it, and
	// which this side announced by a Have.
	ids         linkIDs
	inbox       [][]byte
	inboxCopies []uint8
	inboxIDs    []envelope.ID
	// expecting are those the node expects over this link (Expect,
	// Arriving): wanted or arriving, not yet stored. deferred are those the
	// peer announced while another link brought them, to ask for after
	// ClaimTimeout unless they arrived (Release); wants, the Want this side
	// owes the peer for them.
	expecting    map[envelope.ID]struct{}
	deferred     []deferredID
	deferStarted bool
	// armed counts the Release calls the driver was asked for (Receive),
	// fired those made: every wait is HoldTimeout long, so they come in
	// the order asked, and a deferred envelope is due at the call its own
	// frame asked for, not at one asked for earlier.
	armed, fired int
	wants        []envelope.ID
	// raises are envelopes held here whose hop budget the next Flush
	// raises to the one the peer announced for its copy (Raise).
	raises []deferredID
	closed bool // Close ran: a late Release does nothing
	// inboxSprays are the IDs of the Spray envelopes in inbox; acks, those
	// stored since, to acknowledge; handed, the Spray envelopes this side
	// sent that the peer has not acknowledged yet, with the copies each
	// took along (SPEC §12.7).
	inboxSprays []envelope.ID
	acks        []envelope.ID
	handed      map[uint64]handedCopies
	stats       Stats
	hello       bool // the peer's Hello arrived
	// holding lists the envelopes this side wanted in reconciliation; until
	// they arrive (or Release), only receipts leave (see Next).
	holding     map[envelope.ID]struct{}
	holdStarted bool // a hold began in the frame being handled: Receive tells the driver
	claimsLeft  int  // offers this link may still get answers for
	prunedAt    int  // the queue's length after the last prune
	// droppedSincePrune counts pushes refused since the last prune.
	droppedSincePrune int
}

// ErrProtocol marks a peer that broke the protocol: the link is cut.
var ErrProtocol = errors.New("protocol violation")

// New starts a session over a fresh link.
func New(st Store, cfg Config) *Session {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	// What the peer holds only saves pushing back to it, and an offer
	// remembered only tells a claim from a plain Want (forgetting one makes
	// it a plain Want, and the envelope comes back as an offer): two
	// generations of 16,384 IDs keep them at 512 KB a link at most, which
	// 64 links under a flood of junk multiply (BenchmarkSoak).
	return &Session{st: st, cfg: cfg, ids: newLinkIDs(1 << 14), claimsLeft: MaxClaims}
}

// Hello returns the frame that opens a link: this node's proofs for its
// contacts, so that a contact on the other end recognises it (SPEC §12.6).
func (s *Session) Hello() ([]Frame, error) {
	proofs, err := s.st.LinkProofs(s.cfg.Binding, s.cfg.Initiator)
	if err != nil {
		return nil, fmt.Errorf("failed to prepare hello: %w", err)
	}
	return []Frame{{TypeHello, proofs}}, nil
}

func (s *Session) recognise(proofs []byte) error {
	if s.hello {
		return fmt.Errorf("%w: a second hello", ErrProtocol)
	}
	s.hello = true
	if len(proofs) != node.LinkHelloSize {
		return fmt.Errorf("%w: hello of %d bytes", ErrProtocol, len(proofs))
	}
	c, ok, err := s.st.RecogniseLink(s.cfg.Binding, !s.cfg.Initiator, proofs)
	if err != nil {
		return err
	}
	if ok {
		s.stats.Contact = c.Name
	}
	return nil
}

// Open begins a reconciliation round (initiator only). It returns no frame
// while a round is still running.
func (s *Session) Open() ([]Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Initiator || s.ini != nil {
		return nil, nil
	}
	st, err := s.st.Snapshot()
	if err != nil {
		return nil, err
	}
	ini, err := negentropy.NewInitiator(st, FrameLimit)
	if err != nil {
		return nil, fmt.Errorf("failed to start reconciliation: %w", err)
	}
	msg, err := ini.Initiate()
	if err != nil {
		return nil, fmt.Errorf("failed to start reconciliation: %w", err)
	}
	s.ini = ini
	s.stats.NegBytes += len(msg)
	return []Frame{{TypeNegOpen, msg}}, nil
}

// Handle processes one frame from the peer and returns the frames to send
// back at once. Envelopes to send are queued instead (see Next); envelopes
// received wait for Flush, which Handle requests by flush = true.
func (s *Session) Handle(f Frame) (out []Frame, flush bool, err error) {
	if max := MaxPayload(f.Type); max < 0 || len(f.Payload) > max {
		return nil, false, fmt.Errorf("%w: frame type %v with %d bytes", ErrProtocol, f.Type, len(f.Payload))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Type {
	case TypeNegOpen:
		out, err = s.negOpen(f.Payload)
	case TypeNeg:
		out, err = s.neg(f.Payload)
	case TypeEnvelope:
		err = s.envelope(f.Payload, 0)
	case TypeSpray:
		if len(f.Payload) == 0 || f.Payload[0] == 0 || f.Payload[0] > node.MaxCopies {
			return nil, false, fmt.Errorf("%w: spray frame without a copy budget of 1 to %d", ErrProtocol, node.MaxCopies)
		}
		err = s.envelope(f.Payload[1:], f.Payload[0])
	case TypeOffer:
		out, err = s.offer(f.Payload)
	case TypeReceiptOffer:
		out, err = s.receiptOffer(f.Payload)
	case TypeSprayAck:
		err = s.sprayAck(f.Payload)
	case TypeHave:
		out, err = s.have(f.Payload)
	case TypeWant:
		err = s.want(f.Payload)
	case TypeDone:
		s.stats.Synced = true
		s.stats.Rounds++
		// The round is over: its snapshot need not live until the next.
		s.res = nil
	case TypeHello:
		err = s.recognise(f.Payload)
	case TypePing:
		out = []Frame{{Type: TypePong}}
	case TypePong:
	}
	return out, len(s.inbox) >= s.cfg.MaxBatch, err
}

func (s *Session) negOpen(msg []byte) ([]Frame, error) {
	if s.cfg.Initiator {
		return nil, fmt.Errorf("%w: reconciliation opened by the responder", ErrProtocol)
	}
	st, err := s.st.Snapshot()
	if err != nil {
		return nil, err
	}
	if s.res, err = negentropy.NewResponder(st, FrameLimit); err != nil {
		return nil, err
	}
	return s.neg(msg)
}

func (s *Session) neg(msg []byte) ([]Frame, error) {
	s.stats.NegBytes += len(msg)
	if !s.cfg.Initiator {
		if s.res == nil {
			return nil, fmt.Errorf("%w: reconciliation message before it was opened", ErrProtocol)
		}
		reply, err := s.res.Reconcile(msg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		s.stats.NegBytes += len(reply)
		return []Frame{{TypeNeg, reply}}, nil
	}
	if s.ini == nil {
		return nil, fmt.Errorf("%w: reconciliation reply with no round open", ErrProtocol)
	}
	next, have, need, done, err := s.ini.Reconcile(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	s.enqueue(toIDs(have), queueFound)
	wanted, later, _ := s.st.Expect(s, s.notSent(toIDs(need)), nil, false)
	s.expect(wanted)
	s.deferLater(later, nil, nil)
	s.hold(wanted)
	out := wantFrames(wanted)
	if done {
		s.ini = nil
		s.stats.Rounds++
		s.stats.Synced = true
		return append(out, Frame{Type: TypeDone}), nil
	}
	s.stats.NegBytes += len(next)
	return append(out, Frame{TypeNeg, next}), nil
}

// notSent drops from a want list what passed between the two sides on this
// link already. An ID the peer offered and this side declined is a last copy
// for someone else: wanting it in a later round would read as a claim (SPEC
// §12.7). One this side sent and no longer holds was purged or dropped here
// for a reason.
func (s *Session) notSent(ids []envelope.ID) []envelope.ID {
	out := ids[:0]
	for _, id := range ids {
		if !s.ids.has(id, idPeerHolds) {
			out = append(out, id)
		}
	}
	return out
}

func toIDs(ids [][32]byte) []envelope.ID {
	out := make([]envelope.ID, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func wantFrames(ids []envelope.ID) []Frame {
	var out []Frame
	for len(ids) > 0 {
		n := min(len(ids), MaxWant)
		p := make([]byte, 0, n*envelope.IDSize)
		for _, id := range ids[:n] {
			p = append(p, id[:]...)
		}
		out = append(out, Frame{TypeWant, p})
		ids = ids[n:]
	}
	return out
}

func (s *Session) envelope(raw []byte, copies uint8) error {
	e, err := envelope.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	id := envelope.ComputeID(raw)
	s.ids.add(id, idPeerHolds)
	s.arrived(id, e.Kind == envelope.KindReceipt)
	if copies == 0 && s.st.Redundant(id, e.Hops) {
		s.stats.Redundant++ // another neighbour was quicker
		if _, ok := s.expecting[id]; ok {
			delete(s.expecting, id)
			s.st.Unexpect(s, []envelope.ID{id})
		}
		return nil
	}
	if _, ok := s.expecting[id]; !ok {
		// Pushed whole: other links wait for it until it is stored.
		s.st.Arriving(s, []envelope.ID{id})
		s.expect([]envelope.ID{id})
	}
	s.inbox = append(s.inbox, append([]byte(nil), raw...))
	s.inboxCopies = append(s.inboxCopies, copies)
	s.inboxIDs = append(s.inboxIDs, id)
	if copies > 0 {
		s.inboxSprays = append(s.inboxSprays, id)
	}
	s.stats.EnvelopesReceived++
	return nil
}

// offer answers an Offer with a Want for the envelopes that are ours.
func (s *Session) offer(p []byte) ([]Frame, error) {
	if len(p) == 0 || len(p)%offerSize != 0 {
		return nil, fmt.Errorf("%w: offer of %d bytes", ErrProtocol, len(p))
	}
	n := len(p) / offerSize
	ids := make([]envelope.ID, n)
	tags := make([][envelope.TagSize]byte, n)
	for i := range n {
		o := p[i*offerSize:]
		ids[i] = envelope.ID(o[:envelope.IDSize])
		tags[i] = [envelope.TagSize]byte(o[envelope.IDSize:offerSize])
		s.ids.add(ids[i], idPeerHolds) // the peer holds it: never push it back
	}
	if s.claimsLeft <= 0 {
		return nil, nil // a link gets MaxClaims answers at most: see below
	}
	if len(ids) > s.claimsLeft {
		ids, tags = ids[:s.claimsLeft], tags[:s.claimsLeft]
	}
	want := s.st.Claim(ids, tags)
	s.claimsLeft -= len(ids)
	return wantFrames(want), nil
}

// MaxClaims bounds how many offered IDs one link gets answers for: a claim
// tells the offerer that this node is an envelope's recipient (SPEC
// §12.7), so a stranger may not test tags by the thousand.
const MaxClaims = 256

// receiptOffer answers a ReceiptOffer with a Want for the receipts of
// envelopes held here.
func (s *Session) receiptOffer(p []byte) ([]Frame, error) {
	if len(p) == 0 || len(p)%receiptOfferSize != 0 {
		return nil, fmt.Errorf("%w: receipt offer of %d bytes", ErrProtocol, len(p))
	}
	n := len(p) / receiptOfferSize
	ids := make([]envelope.ID, n)
	targets := make([]envelope.ID, n)
	for i := range n {
		o := p[i*receiptOfferSize:]
		ids[i] = envelope.ID(o[:envelope.IDSize])
		targets[i] = envelope.ID(o[envelope.IDSize:receiptOfferSize])
		s.ids.add(ids[i], idPeerHolds) // the peer holds it: never push it back
	}
	return wantFrames(s.st.ClaimReceipts(ids, targets)), nil
}

// have answers a Have with a Want for the announced envelopes that are not
// held here (with at least the announced hop budget), not proven
// delivered, and not on their way here over another link; those on their
// way are asked for after ClaimTimeout if they have not arrived by then
// (Release), so a link that dies with one in the air loses nothing.
func (s *Session) have(p []byte) ([]Frame, error) {
	if len(p) == 0 || len(p)%haveSize != 0 {
		return nil, fmt.Errorf("%w: have of %d bytes", ErrProtocol, len(p))
	}
	n := len(p) / haveSize
	ids := make([]envelope.ID, n)
	hops := make([]uint8, n)
	for i := range n {
		h := p[i*haveSize:]
		ids[i] = envelope.ID(h[:envelope.IDSize])
		hops[i] = h[envelope.IDSize]
		s.ids.add(ids[i], idPeerHolds) // the peer holds it: never push it back
	}
	want, later, raise := s.st.Expect(s, ids, hops, false)
	s.expect(want)
	s.deferLater(later, ids, hops)
	s.raiseLater(raise, ids, hops)
	return wantFrames(want), nil
}

// expect records envelopes the node now expects over this link, up to
// maxHold: past that the node forgets it expects them here (a peer that
// announces and never sends fills no more than that of the node's
// record). Called with s.mu held.
func (s *Session) expect(ids []envelope.ID) {
	if len(ids) == 0 {
		return
	}
	if s.expecting == nil {
		s.expecting = make(map[envelope.ID]struct{}, len(ids))
	}
	for i, id := range ids {
		if len(s.expecting) >= maxHold {
			s.st.Unexpect(s, ids[i:])
			return
		}
		s.expecting[id] = struct{}{}
	}
}

// deferredID is an announced envelope another link is bringing, the hop
// budget the peer announced it with (0 from a reconciliation: any copy
// will do), and the Release call at which to ask for it (see armed).
type deferredID struct {
	id   envelope.ID
	hops uint8
	due  int
}

// deferLater notes envelopes the peer has that another link is bringing:
// Release asks for them if they have not arrived, or arrived with a smaller
// hop budget than the peer's (its copy would carry the envelope further:
// hop budgets are blurred, §12.2, so copies differ). hops gives the peer's
// budget of each ID in announced (nil: none announced). Called with s.mu
// held.
func (s *Session) deferLater(ids []envelope.ID, announced []envelope.ID, hops []uint8) {
	if len(ids) == 0 {
		return
	}
	var budget map[envelope.ID]uint8
	if hops != nil {
		budget = make(map[envelope.ID]uint8, len(announced))
		for i, id := range announced {
			budget[id] = hops[i]
		}
	}
	s.deferStarted = true
	s.stats.AskedLater += len(ids)
	for _, id := range ids[:min(len(ids), maxHold-len(s.deferred))] {
		s.deferred = append(s.deferred, deferredID{id, budget[id], s.armed + 1})
	}
}

func (s *Session) want(p []byte) error {
	if len(p) == 0 || len(p)%envelope.IDSize != 0 {
		return fmt.Errorf("%w: want list of %d bytes", ErrProtocol, len(p))
	}
	var ids, claimed, answers []envelope.ID
	n := len(p) / envelope.IDSize
	for i := range n {
		id := envelope.ID(p[i*envelope.IDSize:])
		switch f := s.ids.facts(id); {
		case f&idOffered != 0 && f&idClaimed == 0:
			s.ids.add(id, idClaimed)
			claimed = appendRoom(claimed, id, n-i)
		case f&idAnnounced != 0:
			answers = appendRoom(answers, id, n-i)
		default:
			ids = appendRoom(ids, id, n-i)
		}
	}
	s.enqueue(answers, queueAnswer) // the peer waits for these: they go first
	s.enqueue(ids, queueBacklog)
	for _, h := range s.st.Describe(claimed) { // offered, hence "sent": queue anyway
		s.queue.push(h, false, false)
	}
	return nil
}

// appendRoom appends id to ids, made first with room for left IDs: a Want
// mostly goes all to one list, which then takes one allocation, where
// growing by append took several.
func appendRoom(ids []envelope.ID, id envelope.ID, left int) []envelope.ID {
	if ids == nil {
		ids = make([]envelope.ID, 0, left)
	}
	return append(ids, id)
}

// How an envelope came to be queued for the peer.
type queueMode int

const (
	queueBacklog queueMode = iota // the peer wanted it (not after a Have)
	queuePushed                   // it just arrived here (Offer): live push
	queueAnswer                   // the peer wanted it after this side announced it
	queueFound                    // reconciliation found the peer lacks it
)

// enqueue queues envelopes held here that the peer is not known to hold.
// Live pushes (Offer) and answers to a Want after a Have go before the
// backlog; an epidemic envelope (not a spray-and-wait copy) pushed live or
// found by reconciliation is announced by a Have rather than sent whole
// (SPEC §12.2) — this node's own as well, so that how an envelope leaves
// does not name its writer.
func (s *Session) enqueue(ids []envelope.ID, mode queueMode) {
	fresh := keep(ids, func(id envelope.ID) bool {
		return !s.queue.has(id) && (mode == queuePushed || !s.ids.has(id, idPeerHolds))
	})
	for _, h := range s.st.Describe(fresh) {
		announce := (mode == queuePushed || mode == queueFound) && h.Copies == 0
		if mode == queuePushed && s.ids.has(h.ID, idPeerHolds|idAnnounced) {
			// A live push of what the peer holds or was told of: only a
			// copy that goes further than the first is announced again,
			// and the peer wants it if its own goes less far.
			if !h.Better || !announce {
				continue
			}
			s.ids.forget(h.ID, idPeerHolds|idAnnounced)
		}
		s.queue.push(h, mode == queuePushed || mode == queueAnswer, announce)
	}
}

// keep returns the IDs of ids for which ok is true, in order: ids itself
// if that is all of them (most often: what is queued is mostly new to the
// link), else a new slice, ids being the caller's.
func keep(ids []envelope.ID, ok func(envelope.ID) bool) []envelope.ID {
	for i, id := range ids {
		if ok(id) {
			continue
		}
		out := append(make([]envelope.ID, 0, len(ids)-1), ids[:i]...)
		for _, id := range ids[i+1:] {
			if ok(id) {
				out = append(out, id)
			}
		}
		return out
	}
	return ids
}

// Offer queues envelopes that just arrived here for the peer (live push),
// ahead of the backlog that reconciliation queued. A queue that holds
// MaxPushQueue pushed envelopes takes no more pushes —
// first it forgets the envelopes no longer held — so that a flood of junk
// pushed on to a peer slower than the flood costs at most that much memory
// per link; what is not pushed goes at the next reconciliation round (SPEC
// §12.2). Envelopes queued by reconciliation and Want are not limited: they
// are held here, and each is queued once.
func (s *Session) Offer(ids []envelope.ID) {
	s.mu.Lock()
	s.arrivedElsewhere(ids)
	s.push(ids)
	raises := s.raises
	s.raises = nil
	s.mu.Unlock()
	s.raise(raises)
}

// push is Offer after the deferred envelopes are settled. Called with s.mu
// held.
func (s *Session) push(ids []envelope.ID) {
	if s.queue.pushed+len(ids) > MaxPushQueue && (s.queue.Len() >= 2*s.prunedAt || s.droppedSincePrune >= MaxPushQueue) {
		s.prune()
	}
	if room := MaxPushQueue - s.queue.pushed; len(ids) > room {
		n := len(ids) - max(room, 0)
		s.stats.PushDropped += n
		s.droppedSincePrune += n
		ids = ids[:max(room, 0)]
	}
	s.enqueue(ids, queuePushed)
}

// arrivedElsewhere settles the deferred envelopes (see deferLater) that
// another link has now brought: one that came with at least the hop budget
// the peer announced is no longer wanted from it, and one that came with
// less has its budget raised to the peer's (Raise) —
// asking for the peer's copy would send the same bytes again for one
// number, and waiting for Release to do so cost every hop of a static
// crowd's flood up to ClaimTimeout (10,000 nodes: latency p90 1.2 → 4.1 s).
// Called with s.mu held.
func (s *Session) arrivedElsewhere(ids []envelope.ID) {
	if len(s.deferred) == 0 || s.closed {
		return
	}
	came := make(map[envelope.ID]struct{}, len(ids))
	for _, id := range ids {
		came[id] = struct{}{}
	}
	var due []envelope.ID
	var hops []uint8
	rest := s.deferred[:0]
	for _, d := range s.deferred {
		if _, ok := came[d.id]; !ok {
			rest = append(rest, d)
		} else if d.hops > 0 {
			due, hops = append(due, d.id), append(hops, d.hops)
		}
	}
	s.deferred = rest
	if len(due) > 0 {
		_, _, raise := s.st.Expect(s, due, hops, true) // all held: none to want
		s.raiseLater(raise, due, hops)
	}
}

// raiseLater notes envelopes held here with a smaller hop budget than the
// peer announced for its copy (hops[i] for announced[i]), to raise theirs
// to it (Raise): the next Flush does, or Offer and Release before they
// return. Called with s.mu held.
func (s *Session) raiseLater(ids []envelope.ID, announced []envelope.ID, hops []uint8) {
	if len(ids) == 0 {
		return
	}
	budget := make(map[envelope.ID]uint8, len(announced))
	for i, id := range announced {
		budget[id] = max(budget[id], hops[i])
	}
	for _, id := range ids {
		s.raises = append(s.raises, deferredID{id: id, hops: budget[id]})
	}
}

// MaxPushQueue bounds the envelopes a link's send queue takes by live push
// (Offer): about 100 bytes each, 400 KB a link.
const MaxPushQueue = 4096

// prune drops from the send queue the envelopes no longer held (evicted,
// expired, purged since they were queued). It costs a look-up per queued
// envelope, so it runs only once the queue has doubled since the last time,
// or as many pushes as the queue holds were refused since.
func (s *Session) prune() {
	held := s.st.Describe(s.queue.list())
	keep := make(map[envelope.ID]node.Held, len(held))
	for _, h := range held {
		keep[h.ID] = h
	}
	s.queue.filter(func(id envelope.ID) bool { _, ok := keep[id]; return ok })
	s.prunedAt = max(s.queue.Len(), MaxPushQueue/4)
	s.droppedSincePrune = 0
}

// Flush ingests the envelopes received since the last flush, durably.
func (s *Session) Flush() (node.IngestReport, error) {
	s.mu.Lock()
	inbox, copies, sprays, ids := s.inbox, s.inboxCopies, s.inboxSprays, s.inboxIDs
	s.inbox, s.inboxCopies, s.inboxSprays, s.inboxIDs = nil, nil, nil, nil
	raises := s.raises
	s.raises = nil
	s.mu.Unlock()
	if err := s.raise(raises); err != nil {
		return node.IngestReport{}, fmt.Errorf("failed to raise hop budgets: %w", err)
	}
	if len(inbox) == 0 {
		return node.IngestReport{}, nil
	}
	rep, err := s.st.IngestFrom(s.cfg.Source, inbox, copies)
	// Stored (or refused): no longer on their way.
	s.st.Unexpect(s, ids)
	s.mu.Lock()
	for _, id := range ids {
		delete(s.expecting, id)
	}
	if len(s.expecting) == 0 {
		s.expecting = nil // a Go map keeps its size: let an idle link's go
	}
	s.mu.Unlock()
	if err == nil && len(sprays) > 0 {
		// Stored, copies and all: the peer may now forget them.
		s.mu.Lock()
		s.acks = append(s.acks, sprays...)
		s.mu.Unlock()
	}
	return rep, err
}

// raise gives envelopes held here the larger hop budgets the peer
// announced for its copies (raiseLater). If the store fails, they wait for
// the next Flush, which reports the error.
func (s *Session) raise(raises []deferredID) error {
	if len(raises) == 0 {
		return nil
	}
	ids := make([]envelope.ID, len(raises))
	hops := make([]uint8, len(raises))
	for i, r := range raises {
		ids[i], hops[i] = r.id, r.hops
	}
	n, err := s.st.Raise(ids, hops)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Raised += n
	if err != nil && !s.closed {
		s.raises = append(s.raises, raises...)
	}
	return err
}

// handedCopies is a Spray envelope sent and the copies it took along.
type handedCopies struct {
	id     envelope.ID
	copies uint8
}

// sprayAck forgets the Spray envelopes the peer acknowledges: their copies
// are its own now.
func (s *Session) sprayAck(p []byte) error {
	if len(p) == 0 || len(p)%sprayAckSize != 0 {
		return fmt.Errorf("%w: spray ack of %d bytes", ErrProtocol, len(p))
	}
	for ; len(p) > 0; p = p[sprayAckSize:] {
		delete(s.handed, binary.LittleEndian.Uint64(p))
	}
	return nil
}

// Close ends the session with its link: the copies of Spray envelopes the
// peer has not acknowledged go back to the node, which hands them out again
// to the next neighbours — a link that breaks while a Spray is in the air
// loses no copies (SPEC §12.7). If the acknowledgement rather than the
// Spray was lost, both ends keep the copies: a few too many, never too few.
func (s *Session) Close() error {
	s.mu.Lock()
	handed := s.handed
	s.handed = nil
	expecting := make([]envelope.ID, 0, len(s.expecting))
	for id := range s.expecting {
		expecting = append(expecting, id)
	}
	s.expecting, s.deferred, s.wants, s.raises = nil, nil, nil, nil
	s.closed = true
	s.mu.Unlock()
	// What was on its way over this link is lost with it: other links ask
	// for it (see have).
	s.st.Unexpect(s, expecting)
	if len(handed) == 0 {
		return nil
	}
	ids := make([]envelope.ID, 0, len(handed))
	copies := make([]uint8, 0, len(handed))
	for _, h := range handed {
		ids = append(ids, h.id)
		copies = append(copies, h.copies)
	}
	returned, err := s.st.ReturnCopies(ids, copies)
	s.mu.Lock()
	s.stats.CopiesReturned += returned
	s.mu.Unlock()
	return err
}

// Pending says how many received envelopes (and hop budgets to raise)
// wait for Flush.
func (s *Session) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inbox) + len(s.raises)
}

// PendingBytes says how many bytes of received envelopes wait for Flush.
func (s *Session) PendingBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.inbox {
		n += len(e)
	}
	return n
}

// Next returns the frames for up to max queued envelopes, highest priority
// first, as they leave (hop budget decremented, spray-and-wait copies
// split, last copies offered rather than sent), and the IDs of the
// envelopes among them. Envelopes that went away meanwhile, or have no hops
// left, are skipped. No frames means nothing is queued.
func (s *Session) Next(max int) ([]Frame, []envelope.ID, error) {
	for {
		frames, sent, taken, err := s.next(max)
		// A batch whose every envelope went away while it waited (purged by
		// its receipt, as a recipient's receipts purge the chunks queued
		// for it after a link came back) sends nothing: take the next
		// batch, or the writer, seeing no frames, waits with envelopes
		// still queued until something else wakes it (a keepalive, 10-20 s
		// later).
		if err != nil || len(frames) > 0 || taken == 0 {
			return frames, sent, err
		}
	}
}

// next is one batch of Next; taken is how many envelopes it took from the
// queue to send (each batch takes at least one, or the queue is empty or
// held back).
func (s *Session) next(max int) (_ []Frame, _ []envelope.ID, taken int, _ error) {
	s.mu.Lock()
	acks := append(wantFrames(s.wants), s.ackFrames()...)
	s.wants = nil
	// ids and haves are made at their first entry, for what the queue
	// holds: most batches are all one or the other, and grown by append a
	// Have took three allocations.
	var ids []envelope.ID
	var haves []byte
	var claimed map[envelope.ID]bool // asked by Forward, which holds the node's lock: no session lock then
	for len(ids) < max && len(haves) < MaxHave*haveSize {
		if s.holding != nil && !s.queue.receiptFirst() {
			break // holding: only receipts leave (see hold)
		}
		q, ok := s.queue.pop()
		if !ok {
			break
		}
		id := q.id
		f := s.ids.facts(id)
		if f&idPeerHolds != 0 && f&idClaimed == 0 {
			// The peer sent or announced it to us while it waited here
			// (two neighbours who got it at once): it holds it.
			continue
		}
		if q.announce && f&idAnnounced == 0 {
			if q.hops == 0 {
				continue // no hops left: it would not leave (Forward)
			}
			// Announced, not sent: the peer wants it if no other
			// neighbour is bringing it (SPEC §12.2).
			s.ids.add(id, idAnnounced)
			if haves == nil {
				haves = make([]byte, 0, haveSize*min(MaxHave, s.queue.Len()+1))
			}
			haves = append(append(haves, id[:]...), q.hops) // blurred below
			s.stats.Announced++
			continue
		}
		s.ids.add(id, idPeerHolds)
		if ids == nil {
			ids = make([]envelope.ID, 0, min(max, s.queue.Len()+1))
		}
		ids = append(ids, id)
		// Asked again if so: the add above may have let go of the older
		// generation of facts.
		if f&idClaimed != 0 && s.ids.has(id, idClaimed) {
			if claimed == nil {
				claimed = map[envelope.ID]bool{}
			}
			claimed[id] = true
		}
	}
	if len(haves) > 0 {
		// A Have carries the budget a copy sent now would leave with,
		// blurred as one (§12.7): a neighbour that raises its own copy's
		// budget to it (Raise) then spends a hop as a copy would, not one
		// on every link.
		budgets := make([]uint8, len(haves)/haveSize)
		for i := range budgets {
			budgets[i] = haves[i*haveSize+envelope.IDSize]
		}
		s.st.LeavingHops(budgets)
		for i, b := range budgets {
			haves[i*haveSize+envelope.IDSize] = b
		}
	}
	acks = appendSplit(acks, TypeHave, haves, MaxHave*haveSize)
	s.mu.Unlock()
	if len(ids) == 0 {
		return acks, nil, 0, nil
	}
	outs, err := s.st.Forward(ids, func(id envelope.ID) bool { return claimed[id] })
	if err != nil {
		return nil, nil, 0, err
	}
	frames := make([]Frame, 0, len(acks)+len(outs))
	frames = append(frames, acks...)
	sent := ids[:0]
	var offers, receiptOffers []byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range outs {
		switch {
		case o.Raw == nil && o.Target != nil:
			s.ids.add(o.ID, idOffered)
			receiptOffers = append(append(receiptOffers, o.ID[:]...), o.Target[:]...)
			s.stats.OffersSent++
		case o.Raw == nil:
			s.ids.add(o.ID, idOffered)
			offers = append(append(offers, o.ID[:]...), o.Tag[:]...)
			s.stats.OffersSent++
		case o.Copies == 0:
			frames = append(frames, Frame{TypeEnvelope, o.Raw})
			sent = append(sent, o.ID)
		default:
			frames = append(frames, Frame{TypeSpray, append([]byte{o.Copies}, o.Raw...)})
			sent = append(sent, o.ID)
			if s.handed == nil {
				s.handed = map[uint64]handedCopies{}
			}
			if len(s.handed) < maxHanded {
				s.handed[idKey(o.ID)] = handedCopies{o.ID, o.Copies}
			}
		}
	}
	frames = appendSplit(frames, TypeOffer, offers, MaxOffer*offerSize)
	frames = appendSplit(frames, TypeReceiptOffer, receiptOffers, MaxReceiptOffer*receiptOfferSize)
	s.stats.EnvelopesSent += len(sent)
	return frames, sent, len(ids), nil
}

// ackFrames takes the acknowledgements waiting to leave, as frames.
func (s *Session) ackFrames() []Frame {
	if len(s.acks) == 0 {
		return nil
	}
	p := make([]byte, 0, len(s.acks)*sprayAckSize)
	for _, id := range s.acks {
		p = append(p, id[:sprayAckSize]...)
	}
	s.acks = nil
	return appendSplit(nil, TypeSprayAck, p, MaxSprayAck*sprayAckSize)
}

// appendSplit appends p as frames of type typ of at most max bytes each
// (one frame in practice: Next takes fewer envelopes than a frame holds).
func appendSplit(frames []Frame, typ FrameType, p []byte, max int) []Frame {
	for len(p) > 0 {
		n := min(len(p), max)
		frames = append(frames, Frame{typ, p[:n]})
		p = p[n:]
	}
	return frames
}

// Queued says how many envelopes (and acknowledgements) wait to be sent.
func (s *Session) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Len() + len(s.acks) + len(s.wants)
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
