package session

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
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
