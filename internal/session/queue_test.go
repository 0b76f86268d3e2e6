package session

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

func testID(i int) envelope.ID {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return envelope.ID(sha256.Sum256(b[:]))
}

// TestLinkIDs checks that a link's record of IDs keeps each fact apart,
// remembers at least limit IDs and forgets the oldest generation past
// 2×limit.
func TestLinkIDs(t *testing.T) {
	const limit = 1000
	s := newLinkIDs(limit)
	a, b := testID(0), testID(1)
	if s.has(a, idPeerHolds|idOffered|idClaimed|idAnnounced) {
		t.Fatal("an empty record knows something")
	}
	s.add(a, idOffered)
	s.add(a, idClaimed)
	s.add(b, idAnnounced)
	for _, c := range []struct {
		id   envelope.ID
		fact uint64
		want bool
	}{
		{a, idOffered, true}, {a, idClaimed, true}, {a, idPeerHolds, false}, {a, idAnnounced, false},
		{b, idAnnounced, true}, {b, idOffered, false}, {testID(2), idAnnounced, false},
	} {
		if got := s.has(c.id, c.fact); got != c.want {
			t.Errorf("has(%x, %b) = %v, want %v", c.id[:4], c.fact, got, c.want)
		}
	}
	// An ID that shares the first 60 bits is the same ID here; one that
	// differs in them is not.
	twin := a
	twin[0] ^= 0x0f
	twin[31] ^= 1
	if !s.has(twin, idOffered) {
		t.Error("an ID differing only past the first 60 bits is not recognised")
	}
	other := a
	other[0] ^= 0x10
	if s.has(other, idOffered) {
		t.Error("an ID differing in the first 60 bits is recognised")
	}
	for i := 2; i < 2+3*limit; i++ {
		s.add(testID(i), idPeerHolds)
	}
	if s.has(a, idOffered) || s.has(testID(2), idPeerHolds) {
		t.Error("the oldest generation is still remembered past 2×limit IDs")
	}
	for i := 2 + 2*limit; i < 2+3*limit; i++ {
		if !s.has(testID(i), idPeerHolds) {
			t.Fatalf("ID %d of the last %d added is forgotten", i, limit)
		}
	}
	if s.cur.n > limit || s.old.n > limit {
		t.Errorf("generations of %d and %d IDs, limit %d", s.cur.n, s.old.n, limit)
	}
	// A fact added to an ID that may sit in the old generation keeps the
	// facts known before.
	old := testID(2 + 2*limit)
	s.add(old, idAnnounced)
	if !s.has(old, idPeerHolds) || !s.has(old, idAnnounced) {
		t.Error("an ID lost a fact when another was added")
	}
}

// TestSendQueueAgainstModel: a send queue that switches between searching
// and indexing (and lets go of both when drained) answers has, Len and the
// order of pops exactly as a plain set and a sort would, through pushes of
// duplicates, pops and filters that cross the index's thresholds both ways.
func TestSendQueueAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q sendQueue
	model := map[envelope.ID]queued{}
	id := func() envelope.ID { return envelope.ID{byte(r.IntN(200)), 7} }
	indexed := false
	for step := range 20_000 {
		switch op := r.IntN(10); {
		case op < 6: // push, often a duplicate
			x := id()
			h := node.Held{ID: x, Expiry: uint32(r.IntN(50)), Receipt: r.IntN(4) == 0}
			pushed := r.IntN(2) == 0
			q.push(h, pushed, false)
			if _, ok := model[x]; !ok {
				model[x] = queued{id: x, expiry: h.Expiry, receipt: h.Receipt, pushed: pushed}
			}
		case op < 9:
			x, ok := q.pop()
			if ok != (len(model) > 0) {
				t.Fatalf("step %d: pop ok=%v with %d in the model", step, ok, len(model))
			}
			if !ok {
				continue
			}
			if _, in := model[x.id]; !in {
				t.Fatalf("step %d: popped %x, not queued", step, x.id[:1])
			}
			for _, m := range model { // nothing queued goes before what popped
				if m.Less(x) {
					t.Fatalf("step %d: popped %v before %v", step, x, m)
				}
			}
			delete(model, x.id)
		default:
			cut := byte(r.IntN(256))
			q.filter(func(x envelope.ID) bool { return x[0] < cut })
			for x := range model {
				if x[0] >= cut {
					delete(model, x)
				}
			}
		}
		indexed = indexed || q.ids != nil
		if q.Len() != len(model) {
			t.Fatalf("step %d: %d queued, model %d", step, q.Len(), len(model))
		}
		if q.ids != nil && len(q.ids) != len(model) {
			t.Fatalf("step %d: index of %d for %d queued", step, len(q.ids), len(model))
		}
		if len(model) < indexFrom/4 && q.ids != nil {
			t.Fatalf("step %d: %d queued keep an index", step, len(model))
		}
		for range 3 {
			x := id()
			if _, want := model[x]; q.has(x) != want {
				t.Fatalf("step %d: has(%x) = %v, want %v", step, x[:1], !want, want)
			}
		}
	}
	if !indexed {
		t.Fatal("the queue never grew long enough to be indexed")
	}
	for q.Len() > 0 {
		q.pop()
	}
	if q.ids != nil || cap(q.h) > keepCap {
		t.Fatal("a drained queue keeps its index or array")
	}
}
