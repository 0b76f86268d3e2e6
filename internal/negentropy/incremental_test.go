package negentropy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWithMatchesRebuild is a differential test of the incremental
// Storage: after every batch of random additions and removals (including
// removals of items not held and additions of items held already), the
// Storage made by With holds exactly what one built from scratch holds,
// every range has the same fingerprint, and lowerBound agrees.
func TestWithMatchesRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ts := func() uint64 { return uint64(r.IntN(40)) } // many equal timestamps
	held := map[[IDSize]byte]Item{}
	st, err := NewStorage(nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 300 {
		var add, remove []Item
		switch {
		case round < 60: // grow past several chunks
			add = gen(r, r.IntN(400), func(int) uint64 { return ts() })
		case round%50 == 0: // remove most: chunks thin out and are repacked
			for _, it := range held {
				if r.IntN(10) > 0 {
					remove = append(remove, it)
				}
			}
		default:
			add = gen(r, r.IntN(30), func(int) uint64 { return ts() })
			for _, it := range held {
				if r.IntN(100) == 0 {
					remove = append(remove, it)
				}
			}
			remove = append(remove, gen(r, 3, func(int) uint64 { return ts() })...) // not held
			for _, it := range held {
				add = append(add, it) // held already
				break
			}
		}
		for _, it := range remove {
			if held[it.ID] == it {
				delete(held, it.ID)
			}
		}
		for _, it := range add {
			held[it.ID] = it
		}
		if st, err = st.With(add, remove); err != nil {
			t.Fatal(err)
		}
		want, err := NewStorage(slices.Collect(maps.Values(held)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sameStorage(st, want, r); err != nil {
			t.Fatalf("round %d (%d items, %d chunks): %v", round, st.Len(), len(st.chunks), err)
		}
	}
}

func sameStorage(got, want *Storage, r *rand.Rand) error {
	if got.Len() != want.Len() {
		return fmt.Errorf("%d items, want %d", got.Len(), want.Len())
	}
	if !slices.Equal(got.all(), want.all()) {
		return fmt.Errorf("items differ")
	}
	for c, ch := range got.chunks {
		if len(ch.items) == 0 || len(ch.items) > maxChunk {
			return fmt.Errorf("chunk %d holds %d items", c, len(ch.items))
		}
	}
	if n := got.Len(); len(got.chunks) > 2*(n/maxChunk)+4 {
		return fmt.Errorf("%d chunks for %d items", len(got.chunks), n)
	}
	for range 200 {
		lo := r.IntN(got.Len() + 1)
		hi := lo + r.IntN(got.Len()-lo+1)
		if got.Fingerprint(lo, hi) != want.Fingerprint(lo, hi) {
			return fmt.Errorf("fingerprint of [%d, %d) differs", lo, hi)
		}
		b := bound{ts: uint64(r.IntN(41)), n: r.IntN(3)}
		for i := range b.n {
			b.id[i] = byte(r.IntN(256))
		}
		if g, w := got.lowerBound(lo, got.Len(), b), want.lowerBound(lo, want.Len(), b); g != w {
			return fmt.Errorf("lowerBound from %d: %d, want %d", lo, g, w)
		}
	}
	return nil
}

func TestWithRejectsInfinity(t *testing.T) {
	st, _ := NewStorage(nil)
	if _, err := st.With([]Item{{Timestamp: MaxTimestamp + 1}}, nil); err == nil {
		t.Error("timestamp 2^64-1 accepted")
	}
}
