package session

import (
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
	raws := make([][]byte, n)
	ids := make([]envelope.ID, n)
	for i := range raws {
		raws[i] = fixedEnvelope(10_000 + i)
		raws[i][1] = 5 // hop budget
		ids[i] = envelope.ComputeID(raws[i])
	}
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
