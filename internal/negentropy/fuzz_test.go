package negentropy

import (
	"crypto/sha256"
	"errors"
	"testing"
)

// fuzzStorage is the fuzzers' local set: 300 items over 40 timestamps, so
// that bounds need ID prefixes, with timestamps 0 and MaxTimestamp present.
func fuzzStorage(tb testing.TB) (*Storage, []Item) {
	r := newRand(11)
	items := gen(r, 300, func(i int) uint64 {
		switch i {
		case 0:
			return 0
		case 1:
			return MaxTimestamp
		}
		return 1_800_000_000 + uint64(i%40)
	})
	st, err := NewStorage(items)
	if err != nil {
		tb.Fatal(err)
	}
	return st, items
}

// addTranscripts seeds f with every message of a few reconciliations of the
// fuzz storage against variants of it, and with the malformed messages.
func addTranscripts(f *testing.F, st *Storage, items []Item) {
	r := newRand(12)
	for _, p := range []struct{ pa, pb float64 }{{0, 0}, {0.05, 0.05}, {0.5, 0}, {0, 1}} {
		a, b := deal(r, items, p.pa, p.pb)
		res := reconcile(f, b, a, 0, 0, nil, nil)
		for _, m := range res.msgs {
			f.Add(m, false)
		}
	}
	for _, tc := range malformed {
		f.Add(unhex(f, tc.msg), true)
	}
	f.Add([]byte{0x62, 0x00}, false)
}

// wellFormed fails if msg is not a message a Responder can read.
func wellFormed(t *testing.T, st *Storage, msg []byte) {
	t.Helper()
	resp, _ := NewResponder(st, 0)
	if _, err := resp.Reconcile(msg); err != nil {
		t.Fatalf("we sent a malformed message %x: %v", msg, err)
	}
}

// FuzzResponder feeds arbitrary messages to a Responder: it must not panic,
// must fail only with ErrMalformed, and must answer with a well-formed
// message within its frame size limit.
func FuzzResponder(f *testing.F) {
	st, items := fuzzStorage(f)
	addTranscripts(f, st, items)
	f.Fuzz(func(t *testing.T, msg []byte, limited bool) {
		limit := 0
		if limited {
			limit = MinFrameSizeLimit
		}
		resp, _ := NewResponder(st, limit)
		reply, err := resp.Reconcile(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || reply != nil {
				t.Fatalf("reply %x, error %v", reply, err)
			}
			return
		}
		if limit > 0 && len(reply) > limit {
			t.Fatalf("reply of %d bytes over the limit %d", len(reply), limit)
		}
		wellFormed(t, st, reply)
	})
}

// FuzzInitiator feeds an arbitrary reply to an Initiator after its first
// message: it must not panic, must fail only with ErrMalformed or
// ErrUnsupportedVersion, must send a well-formed message within its limit
// unless done, and may only report as have IDs it holds, each once.
func FuzzInitiator(f *testing.F) {
	st, items := fuzzStorage(f)
	addTranscripts(f, st, items)
	ours := make(map[[IDSize]byte]bool)
	for _, it := range items {
		ours[it.ID] = true
	}
	f.Fuzz(func(t *testing.T, msg []byte, limited bool) {
		limit := 0
		if limited {
			limit = MinFrameSizeLimit
		}
		in, _ := NewInitiator(st, limit)
		if _, err := in.Initiate(); err != nil {
			t.Fatal(err)
		}
		next, have, need, done, err := in.Reconcile(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) || next != nil || have != nil || need != nil {
				t.Fatalf("error %v with next %x, %d have, %d need", err, next, len(have), len(need))
			}
			return
		}
		if done != (next == nil) {
			t.Fatalf("done %v with next %x", done, next)
		}
		if next != nil {
			if limit > 0 && len(next) > limit {
				t.Fatalf("message of %d bytes over the limit %d", len(next), limit)
			}
			wellFormed(t, st, next)
		}
		seen := make(map[[IDSize]byte]bool)
		for _, id := range append(have, need...) {
			if seen[id] {
				t.Fatalf("%x reported twice", id)
			}
			seen[id] = true
		}
		for _, id := range have {
			if !ours[id] {
				t.Fatalf("have %x, which we do not hold", id)
			}
		}
	})
}

// fuzzPolicies are splitting choices a peer might make; every pairing must
// reconcile correctly.
var fuzzPolicies = []*policy{
	nil, // ours
	// The reference implementation's: 16 buckets, IdList below 32 items.
	{first: 16, wideItems: 1 << 30, maxWide: 16, idList: 31, lateIDList: 31, lastLevel: 0, maxBuckets: 16},
	// Halving, IdLists of single items.
	{first: 2, wideItems: 1 << 30, maxWide: 2, idList: 1, lateIDList: 1, lastLevel: 0, maxBuckets: 2},
	// Very fine first message.
	{first: 1024, wideItems: 2, maxWide: 1024, idList: 4, lateIDList: 8, lastLevel: 5, maxBuckets: 3, probe: 16},
}

// FuzzReconcile reconciles two sets drawn from the input, 3 bytes an item
// (few timestamps, IDs with long shared prefixes), and checks that have and
// need are exactly the difference, for various frame size limits and
// splitting choices on either side (the low bits of mix).
func FuzzReconcile(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0x00, 0x01, 0x02, 0x40, 0x01, 0x02, 0x80, 0x03, 0x04, 0xc0, 0xff, 0xee}, uint8(0x3f))
	f.Add(make([]byte, 300), uint8(0x05))
	f.Fuzz(func(t *testing.T, data []byte, mix uint8) {
		var a, b []Item
		seen := make(map[Item]bool)
		for i := 0; i+3 <= len(data) && i < 3*5000; i += 3 {
			var it Item
			it.Timestamp = uint64(data[i] & 0x07)
			if data[i]&0x08 != 0 {
				it.Timestamp = MaxTimestamp - uint64(data[i]&0x07)
			}
			h := sha256.Sum256(data[i+1 : i+3])
			cut := int(data[i+2] % 33)
			copy(it.ID[cut:], h[cut:]) // the first cut bytes stay zero
			if seen[it] {
				continue
			}
			seen[it] = true
			switch data[i] >> 6 {
			case 0:
				a = append(a, it)
			case 1:
				b = append(b, it)
			default:
				a, b = append(a, it), append(b, it)
			}
		}
		// The same ID under two timestamps is not a valid input.
		ids := make(map[[IDSize]byte]bool)
		for it := range seen {
			if ids[it.ID] {
				t.Skip()
			}
			ids[it.ID] = true
		}
		limits := []int{0, MinFrameSizeLimit}
		pa, pb := fuzzPolicies[mix&3], fuzzPolicies[mix>>2&3]
		la, lb := limits[mix>>4&1], limits[mix>>5&1]
		checkDiff(t, a, b, reconcile(t, a, b, la, lb, pa, pb))
	})
}
