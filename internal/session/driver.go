package session

import (
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// The link-driving policy: what a link sends when it comes up, how often it
// reconciles again, how many queued envelopes a writer takes at a time, and
// when received envelopes are stored. The mesh (real time, a reader, a
// writer and a flusher goroutine per link) and the simulator (virtual time,
// one event queue) both drive a session through Start, Receive and Pull, so
// that what the simulator measures is what a node does. Only the clocks and
// the sockets differ.
const (
	// ResyncInterval is how often a link runs a reconciliation round again
	// while it lasts; live push carries what arrives in between.
	ResyncInterval = 5 * time.Minute
	// PullBatch is how many queued envelopes a writer takes at a time, so
	// that priorities (receipts first) apply to what is queued meanwhile.
	PullBatch = 16
	// DefaultMaxBatch is how many received envelopes one Flush ingests at
	// most, unless Config.MaxBatch says otherwise.
	DefaultMaxBatch = 512
	// BacklogEnvelopes and BacklogBytes bound what may wait for a Flush:
	// beyond them the reader stores what it has before it reads on, so a
	// fast peer cannot pile up memory faster than the store takes it.
	BacklogEnvelopes = 4 * DefaultMaxBatch
	BacklogBytes     = 4 << 20
	// HoldTimeout bounds how long a side that wanted envelopes in a
	// reconciliation round holds back its own (see hold).
	HoldTimeout = 2 * time.Second
	// ClaimTimeout is how long a link waits for an envelope its peer
	// announced (Have) while another link brings it, before it asks for
	// it anyway: the other link may have died with it in the air.
	ClaimTimeout = HoldTimeout // the same, so that Release calls come in the order asked
	// maxHold bounds the wanted IDs a hold waits for, and the announced
	// envelopes a link waits for (ClaimTimeout).
	maxHold = 4096
)

// Next says what a driver does after Receive.
type Next struct {
	Pull     bool          // envelopes are queued: the writer should Pull
	Store    bool          // received envelopes wait: Flush soon (a group commit)
	StoreNow bool          // the backlog is full: Flush before reading on
	Release  time.Duration // a hold began: call Release after this long
}

// Start returns the frames a link sends first: the Hello and, on the side
// that dialled, the opening of the first reconciliation round.
func (s *Session) Start() ([]Frame, error) {
	hello, err := s.Hello()
	if err != nil {
		return nil, err
	}
	open, err := s.Open()
	if err != nil {
		return nil, err
	}
	return append(hello, open...), nil
}

// Receive handles one frame from the peer (Handle) and returns the frames
// to send back at once and what to do next.
func (s *Session) Receive(f Frame) ([]Frame, Next, error) {
	out, flush, err := s.Handle(f)
	if err != nil {
		return nil, Next{}, err
	}
	pending := s.Pending()
	next := Next{Pull: s.Queued() > 0, Store: pending > 0}
	s.mu.Lock()
	if s.holdStarted || s.deferStarted {
		s.holdStarted, s.deferStarted = false, false
		next.Release = HoldTimeout // = ClaimTimeout
		s.armed++
	}
	s.mu.Unlock()
	next.StoreNow = flush && (pending >= BacklogEnvelopes || s.PendingBytes() >= BacklogBytes)
	return out, next, nil
}

// Receipts cross messages at link-up: the side that reconciles pushes a
// message while the receipt that proves it delivered — held by the peer,
// wanted by this side — is on its way back, and the message goes over the
// air for nothing. So after a round, a side that wanted envelopes sends
// only receipts until what it wanted has arrived: the peer sends receipts
// first, so the first wanted envelope that is not a receipt, or the last
// one, ends the hold; a receipt that arrives purges the message it proves
// delivered before it leaves. A hold never lasts beyond HoldTimeout (the
// peer may no longer hold what was wanted): the driver calls Release.

// hold starts holding back non-receipts until the wanted IDs arrive.
// Called with s.mu held.
func (s *Session) hold(wanted []envelope.ID) {
	if len(wanted) == 0 {
		return
	}
	if s.holding == nil {
		s.holding = make(map[envelope.ID]struct{}, min(len(wanted), maxHold))
		s.holdStarted = true
	}
	for _, id := range wanted {
		if len(s.holding) >= maxHold {
			break
		}
		s.holding[id] = struct{}{}
	}
}

// arrived notes an envelope from the peer: a wanted one that is not a
// receipt, or the last wanted, ends the hold. Called with s.mu held.
func (s *Session) arrived(id envelope.ID, receipt bool) {
	if s.holding == nil {
		return
	}
	if _, ok := s.holding[id]; !ok {
		return
	}
	delete(s.holding, id)
	if !receipt || len(s.holding) == 0 {
		s.holding = nil
	}
}

// Release ends a hold (see hold) and asks for the announced envelopes that
// another link was bringing and that have not arrived (see have), or
// raises the hop budget of those that came with less than this peer's (see
// raiseLater); the driver calls it when Receive asked (HoldTimeout,
// ClaimTimeout), and should then Pull.
func (s *Session) Release() {
	s.mu.Lock()
	s.release()
	raises := s.raises
	s.raises = nil
	s.mu.Unlock()
	s.raise(raises)
}

// release is Release but for raising hop budgets. Called with s.mu held.
func (s *Session) release() {
	s.holding = nil
	s.fired++
	if len(s.deferred) == 0 || s.closed {
		return
	}
	var due []envelope.ID
	var hops []uint8
	rest := s.deferred[:0]
	for _, d := range s.deferred {
		if d.due <= s.fired {
			due = append(due, d.id)
			hops = append(hops, d.hops)
		} else {
			rest = append(rest, d)
		}
	}
	s.deferred = rest
	if len(due) == 0 {
		return
	}
	want, _, raise := s.st.Expect(s, due, hops, true)
	s.expect(want)
	s.wants = append(s.wants, want...)
	s.raiseLater(raise, due, hops)
}

// Pull takes the next PullBatch queued envelopes as frames (Next), and
// tells the store they were carried to a neighbour. No frames means nothing
// is queued. It returns the IDs of the envelopes among the frames.
func (s *Session) Pull() ([]Frame, []envelope.ID, error) {
	frames, ids, err := s.Next(PullBatch)
	if err != nil {
		return nil, nil, err
	}
	if err := s.st.MarkCarried(ids); err != nil {
		return nil, nil, err
	}
	return frames, ids, nil
}
