package session

import (
	"errors"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestPushQueueIsBounded: a flood of envelopes pushed live to a peer that
// does not keep up (junk arriving faster than the link drains) queues at
// most MaxPushQueue of them; envelopes evicted meanwhile are forgotten, so
// pushes are taken again; and reconciliation still queues everything the
// peer lacks.
func TestPushQueueIsBounded(t *testing.T) {
	const n = 3 * MaxPushQueue
	raws, ids := fixedEnvelopes(10_000, n)
	st := newMemStore(raws)
	s := New(st, Config{})
	for i := 0; i < 2*MaxPushQueue; i += 512 {
		s.Offer(ids[i : i+512])
	}
	if q, d := s.Queued(), s.Stats().PushDropped; q != MaxPushQueue || d != MaxPushQueue {
		t.Fatalf("after %d pushes: %d queued, %d dropped; want %d and %d", 2*MaxPushQueue, q, d, MaxPushQueue, MaxPushQueue)
	}
	// The queued envelopes are evicted: the next pushes find room.
	for _, id := range ids[:MaxPushQueue] {
		delete(st.m, id)
	}
	s.Offer(ids[2*MaxPushQueue : 2*MaxPushQueue+100])
	if q := s.Queued(); q != 100 {
		t.Fatalf("after the queued envelopes were evicted, %d queued; want the 100 pushed since", q)
	}
	// A backlog that reconciliation queued, larger than MaxPushQueue, takes
	// no room from pushes, and what is pushed goes first: new mail does not
	// wait behind a large transfer (the soak's honest neighbour did).
	backlog := New(st, Config{})
	backlog.enqueue(ids[MaxPushQueue:2*MaxPushQueue+100], queueBacklog)
	fresh := ids[2*MaxPushQueue+200]
	backlog.Offer([]envelope.ID{fresh})
	// Held by relay, it is announced (Have) before anything else leaves.
	if frames, _, err := backlog.Next(1); err != nil || len(frames) == 0 || frames[0].Type != TypeHave ||
		envelope.ID(frames[0].Payload[:envelope.IDSize]) != fresh {
		t.Fatalf("with a backlog of %d, the first frame is not the announcement of the one pushed (%v)", MaxPushQueue+100, err)
	}
	// Reconciliation is not bounded by it: a peer that lacks everything
	// gets everything.
	a := New(newMemStore(raws[MaxPushQueue:]), Config{Initiator: true})
	b := New(newMemStore(nil), Config{})
	pump(t, a, b)
	if got := a.Stats().EnvelopesSent; got != n-MaxPushQueue {
		t.Fatalf("reconciliation sent %d of %d", got, n-MaxPushQueue)
	}
}

// TestNextSkipsWhatWentAway: envelopes purged while they waited in the
// queue (their receipt came) leave nothing to send, and Next takes the
// next batch rather than returning no frames with envelopes still queued:
// a writer that sees no frames sleeps until something wakes it. A relay's
// link stalled so for a keepalive (10-20 s) after a flap, when the
// recipient's receipts purged a batch of chunks queued for it
// (TestFileSurvivesAFlappingLink in test/netns).
func TestNextSkipsWhatWentAway(t *testing.T) {
	const n = 3 * PullBatch
	raws, ids := fixedEnvelopes(20_000, n)
	// The order in which they leave, from a session with nothing purged.
	st := newMemStore(raws)
	var order []envelope.ID
	first := New(st, Config{})
	first.enqueue(ids, queueBacklog)
	for range 3 {
		_, sent, err := first.Pull()
		if err != nil || len(sent) != PullBatch {
			t.Fatalf("Pull with nothing purged: %d envelopes, %v", len(sent), err)
		}
		order = append(order, sent...)
	}
	// The first two batches are purged while queued.
	s := New(st, Config{})
	s.enqueue(ids, queueBacklog)
	gone := map[envelope.ID]bool{}
	for _, id := range order[:2*PullBatch] {
		delete(st.m, id)
		gone[id] = true
	}
	frames, sent, err := s.Pull()
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != PullBatch || len(sent) != PullBatch {
		t.Fatalf("with %d of %d queued envelopes purged, Pull gave %d frames for %d envelopes, want the %d left",
			2*PullBatch, n, len(frames), len(sent), PullBatch)
	}
	for _, id := range sent {
		if gone[id] {
			t.Fatalf("Pull sent %x, which was purged", id[:4])
		}
	}
	if frames, sent, err := s.Pull(); err != nil || len(frames) != 0 || len(sent) != 0 || s.Queued() != 0 {
		t.Fatalf("after the last batch: %d frames, %d envelopes, %d queued, %v; want nothing", len(frames), len(sent), s.Queued(), err)
	}
}

// fixedEnvelopes makes n envelopes (fixedEnvelope from first on) with a hop
// budget of 5, and their IDs.
func fixedEnvelopes(first, n int) ([][]byte, []envelope.ID) {
	raws := make([][]byte, n)
	ids := make([]envelope.ID, n)
	for i := range raws {
		raws[i] = fixedEnvelope(first + i)
		raws[i][1] = 5 // hop budget
		ids[i] = envelope.ComputeID(raws[i])
	}
	return raws, ids
}

// TestRoundLetsGoOfItsSnapshot: once a round of reconciliation is done,
// the responding side keeps no responder (and so no snapshot of its
// store) until the next round opens one; a reconciliation message before
// that is a protocol violation.
func TestRoundLetsGoOfItsSnapshot(t *testing.T) {
	raws, _ := fixedEnvelopes(10_000, 300)
	a := New(newMemStore(raws[:200]), Config{Initiator: true})
	b := New(newMemStore(raws[100:]), Config{})
	pump(t, a, b)
	if !b.Stats().Synced || b.res != nil {
		t.Fatalf("after a round: synced %v, responder kept %v", b.Stats().Synced, b.res != nil)
	}
	if _, _, err := b.Handle(Frame{TypeNeg, []byte{0x61}}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a reconciliation message after the round: %v, want a protocol violation", err)
	}
}
