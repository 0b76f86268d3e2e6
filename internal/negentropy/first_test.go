package negentropy

import (
	"math/rand/v2"
	"testing"
)

// TestFirstMessageHidesTheCount: the initiator's first message, which a
// listener sees at every link set-up, is 320 bytes for every store of 0 to
// 120,000 items (expiries spread over a week, as envelopes' are), with or
// without a frame size limit: it is always 14 ranges, padded (SPEC.md
// §11.7). Before, it was 24 + 32n bytes for small stores, and then a power
// of two from 512 bytes that grew with the store.
func TestFirstMessageHidesTheCount(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	all := gen(r, 120_000, func(int) uint64 { return 1_800_000_000 + r.Uint64N(7*86400) })
	first := func(n, limit int) int {
		st, err := NewStorage(all[:n])
		if err != nil {
			t.Fatal(err)
		}
		in, err := NewInitiator(st, limit)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := in.Initiate()
		if err != nil {
			t.Fatal(err)
		}
		return len(msg)
	}
	sizes := []int{}
	for n := range 70 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 100, 401, 1000, 2500, 6400, 6401, 8000, 9000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 120_000)
	for _, n := range sizes {
		for _, limit := range []int{0, 60000, MinFrameSizeLimit} {
			if got := first(n, limit); got != minFirstSize {
				t.Errorf("first message for %d items (limit %d) is %d bytes, want %d", n, limit, got, minFirstSize)
			}
		}
	}
	// Timestamps at the top of the range leave no room for empty ranges
	// past the last item: the message is still well formed and padded.
	top := []Item{{Timestamp: MaxTimestamp, ID: [IDSize]byte{1}}, {Timestamp: MaxTimestamp, ID: [IDSize]byte{2}}}
	st, _ := NewStorage(top)
	in, _ := NewInitiator(st, 0)
	msg, _ := in.Initiate()
	res, _ := NewResponder(st, 0)
	if reply, err := res.Reconcile(msg); err != nil || len(reply) != 1 {
		t.Fatalf("top timestamps: %d-byte message, reply %x, %v", len(msg), reply, err)
	}
}
