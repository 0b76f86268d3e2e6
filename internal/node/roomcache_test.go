package node

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
)

// TestRoomCacheAnswersOnlyForTheStoredBytes: a room saved in a
// transaction that then rolled back stays in the cache under bytes the
// store never kept, so the next load decodes what the store holds instead;
// a room taken for a change is decoded afresh by the next reader, and a
// peeked one is the same room again.
func TestRoomCacheAnswersOnlyForTheStoredBytes(t *testing.T) {
	id, _ := keys.NewIdentity("Alice", rand.Reader)
	r, err := room.Create(id, "Cache", keys.Period(100), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := r.Marshal()
	gid := hex.EncodeToString(r.Group[:])
	c := newRoomCache()

	peeked, err := c.decode(stored, false)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.decode(stored, false); again != peeked {
		t.Fatal("a peeked room was decoded again")
	}

	// A change saved in a transaction that rolled back.
	taken, _ := c.decode(stored, true)
	if _, err := taken.Seal(keys.Period(100), []byte{1, 0, 0, 0, 0, 'x'}, 1<<31, 5, rand.Reader); err != nil {
		t.Fatal(err)
	}
	unstored, _ := taken.Marshal()
	c.keep(gid, sha256.Sum256(unstored), taken)
	loaded, err := c.decode(stored, false)
	if err != nil {
		t.Fatal(err)
	}
	if loaded == taken {
		t.Fatal("the cache answered with a change the store never kept")
	}
	if len(c.bySum) != 1 || len(c.sumOf) != 1 {
		t.Fatalf("%d rooms cached under %d sums, want one", len(c.sumOf), len(c.bySum))
	}
	if b, _ := loaded.Marshal(); len(b) != len(stored) {
		t.Fatalf("the room loaded again stores %d bytes, the store holds %d", len(b), len(stored))
	}
}
