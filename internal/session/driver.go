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
)

// Next says what a driver does after Receive.
type Next struct {
	Pull     bool // envelopes are queued: the writer should Pull
	Store    bool // received envelopes wait: Flush soon (a group commit)
	StoreNow bool // the backlog is full: Flush before reading on
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
	next.StoreNow = flush && (pending >= BacklogEnvelopes || s.PendingBytes() >= BacklogBytes)
	return out, next, nil
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
