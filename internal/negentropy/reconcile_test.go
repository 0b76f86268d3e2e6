package negentropy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// result is the outcome of a complete reconciliation.
type result struct {
	have, need [][IDSize]byte
	msgs       [][]byte // initiator's messages at even indices, replies at odd
	roundTrips int
	wire       int // total bytes both ways
	// responderDone: the responder's last reply ended the round (it let
	// go of its Storage).
	responderDone bool
}

// reconcile runs a complete reconciliation of a (initiator) against b
// (responder) with the given frame size limits and policies.
func reconcile(tb testing.TB, a, b []Item, limitA, limitB int, pa, pb *policy) result {
	tb.Helper()
	sa, err := NewStorage(a)
	if err != nil {
		tb.Fatal(err)
	}
	sb, err := NewStorage(b)
	if err != nil {
		tb.Fatal(err)
	}
	return reconcileStorage(tb, sa, sb, limitA, limitB, pa, pb)
}

func reconcileStorage(tb testing.TB, sa, sb *Storage, limitA, limitB int, pa, pb *policy) result {
	tb.Helper()
	in, err := NewInitiator(sa, limitA)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := NewResponder(sb, limitB)
	if err != nil {
		tb.Fatal(err)
	}
	if pa != nil {
		in.s.policy = *pa
	}
	if pb != nil {
		resp.s.policy = *pb
	}
	var res result
	msg, err := in.Initiate()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if res.roundTrips > 100_000 {
			tb.Fatalf("no convergence after %d round trips", res.roundTrips)
		}
		res.roundTrips++
		res.msgs = append(res.msgs, msg)
		if limitA > 0 && len(msg) > limitA {
			tb.Fatalf("initiator message %d is %d bytes, over the limit %d", res.roundTrips, len(msg), limitA)
		}
		reply, err := resp.Reconcile(msg)
		if err != nil {
			tb.Fatalf("responder, round trip %d: %v", res.roundTrips, err)
		}
		if limitB > 0 && len(reply) > limitB {
			tb.Fatalf("responder message %d is %d bytes, over the limit %d", res.roundTrips, len(reply), limitB)
		}
		res.msgs = append(res.msgs, reply)
		next, have, need, done, err := in.Reconcile(reply)
		if err != nil {
			tb.Fatalf("initiator, round trip %d: %v", res.roundTrips, err)
		}
		res.have = append(res.have, have...)
		res.need = append(res.need, need...)
		if resp.done && !done {
			// It let go of its Storage, and must not be asked again.
			tb.Fatalf("round trip %d: the responder took the round for over, the initiator goes on", res.roundTrips)
		}
		if done {
			if next != nil {
				tb.Fatal("done with a next message")
			}
			res.responderDone = resp.done
			break
		}
		msg = next
	}
	for _, m := range res.msgs {
		res.wire += len(m)
	}
	return res
}

// checkDiff checks that have is exactly a minus b and need exactly b minus a.
func checkDiff(t *testing.T, a, b []Item, res result) {
	t.Helper()
	ids := func(x []Item) map[[IDSize]byte]bool {
		m := make(map[[IDSize]byte]bool, len(x))
		for _, it := range x {
			m[it.ID] = true
		}
		return m
	}
	ma, mb := ids(a), ids(b)
	check := func(name string, got [][IDSize]byte, from, minus map[[IDSize]byte]bool) {
		t.Helper()
		seen := make(map[[IDSize]byte]bool)
		for _, id := range got {
			if seen[id] {
				t.Errorf("%s: %x reported twice", name, id[:4])
			}
			seen[id] = true
			if !from[id] || minus[id] {
				t.Errorf("%s: %x is not in the difference", name, id[:4])
			}
		}
		want := 0
		for id := range from {
			if !minus[id] {
				want++
			}
		}
		if len(seen) != want {
			t.Errorf("%s: got %d IDs, want %d", name, len(seen), want)
		}
	}
	check("have", res.have, ma, mb)
	check("need", res.need, mb, ma)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// gen returns n items with random IDs and timestamps from ts.
func gen(r *rand.Rand, n int, ts func(i int) uint64) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i].Timestamp = ts(i)
		for j := 0; j < IDSize; j += 8 {
			v := r.Uint64()
			for k := range 8 {
				items[i].ID[j+k] = byte(v >> (8 * k))
			}
		}
	}
	return items
}

// split deals items to a (initiator), b (responder) or both: each item goes
// to a only with probability pa, to b only with pb, else to both.
func deal(r *rand.Rand, items []Item, pa, pb float64) (a, b []Item) {
	for _, it := range items {
		switch x := r.Float64(); {
		case x < pa:
			a = append(a, it)
		case x < pa+pb:
			b = append(b, it)
		default:
			a, b = append(a, it), append(b, it)
		}
	}
	return a, b
}

func TestReconcile(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const base = 1_800_000_000
	spread := func(width uint64) func(int) uint64 {
		return func(int) uint64 { return base + r.Uint64N(width) }
	}
	type tc struct {
		name   string
		items  []Item
		pa, pb float64
	}
	var cases []tc
	for _, n := range []int{0, 1, 2, 3, 10, 100, 1000, 5000} {
		items := gen(r, n, spread(7*86400))
		cases = append(cases,
			tc{fmt.Sprintf("n=%d/identical", n), items, 0, 0},
			tc{fmt.Sprintf("n=%d/initiator-only", n), items, 1, 0},
			tc{fmt.Sprintf("n=%d/responder-only", n), items, 0, 1},
			tc{fmt.Sprintf("n=%d/disjoint", n), items, 0.5, 0.5},
			tc{fmt.Sprintf("n=%d/few", n), items, 0.01, 0.01},
			tc{fmt.Sprintf("n=%d/some", n), items, 0.1, 0.05},
			tc{fmt.Sprintf("n=%d/lopsided", n), items, 0.3, 0},
		)
	}
	sameTs := gen(r, 3000, func(int) uint64 { return base })
	cases = append(cases, tc{"equal-timestamps", sameTs, 0.02, 0.02})
	few := gen(r, 2000, spread(5))
	cases = append(cases, tc{"five-timestamps", few, 0.05, 0.05})
	edges := gen(r, 2000, func(i int) uint64 {
		switch i % 4 {
		case 0:
			return 0
		case 1:
			return MaxTimestamp
		case 2:
			return MaxTimestamp - 1
		}
		return r.Uint64N(MaxTimestamp)
	})
	cases = append(cases, tc{"timestamps-0-and-max", edges, 0.05, 0.05})
	// IDs sharing long prefixes under one timestamp: bounds need long prefixes.
	prefixed := gen(r, 1500, func(int) uint64 { return 7 })
	for i := range prefixed {
		cut := 31 - i%32
		copy(prefixed[i].ID[:cut], bytes.Repeat([]byte{0xab}, cut))
	}
	prefixed = slices.CompactFunc(sortItems(prefixed), func(a, b Item) bool { return a == b })
	cases = append(cases, tc{"long-id-prefixes", prefixed, 0.05, 0.05})

	policies := map[string]*policy{
		"default":   fuzzPolicies[0],
		"reference": fuzzPolicies[1],
		"binary":    fuzzPolicies[2],
	}
	for _, c := range cases {
		a, b := deal(r, c.items, c.pa, c.pb)
		for pname, p := range policies {
			for _, limit := range []int{0, MinFrameSizeLimit} {
				t.Run(fmt.Sprintf("%s/%s/limit=%d", c.name, pname, limit), func(t *testing.T) {
					res := reconcile(t, a, b, limit, limit, p, p)
					checkDiff(t, a, b, res)
				})
			}
		}
		t.Run(c.name+"/mixed-policies", func(t *testing.T) {
			checkDiff(t, a, b, reconcile(t, a, b, 0, MinFrameSizeLimit, policies["reference"], nil))
			checkDiff(t, a, b, reconcile(t, a, b, MinFrameSizeLimit, 0, nil, policies["binary"]))
		})
	}
}

func sortItems(items []Item) []Item {
	slices.SortFunc(items, Item.Compare)
	return items
}

// TestFrameSizeLimit reconciles sets whose messages cannot fit in one frame.
func TestFrameSizeLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	items := gen(r, 5000, func(int) uint64 { return 1_800_000_000 + r.Uint64N(7*86400) })
	for _, tc := range []struct {
		name   string
		pa, pb float64
	}{
		// The responder's IDs cannot fit in one frame.
		{"initiator-empty", 0, 1},
		{"many-differences", 0.2, 0.2},
		{"few-differences", 0.01, 0.01},
	} {
		a, b := deal(r, items, tc.pa, tc.pb)
		for _, limit := range []int{MinFrameSizeLimit, 10000} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, limit), func(t *testing.T) {
				res := reconcile(t, a, b, limit, limit, nil, nil)
				checkDiff(t, a, b, res)
				if tc.pb == 1 && res.roundTrips < 2 {
					t.Errorf("finished in %d round trips: the limit was not exercised", res.roundTrips)
				}
				t.Logf("%d round trips, %d bytes", res.roundTrips, res.wire)
			})
		}
	}
}

// TestFrameSizeLimitEmptyLists makes the responder answer a thousand
// fingerprints with empty IdLists, more than fit in its frame, and the
// initiator answer with as many.
func TestFrameSizeLimitEmptyLists(t *testing.T) {
	r := newRand(9)
	items := gen(r, 10000, func(int) uint64 { return 1_800_000_000 + r.Uint64N(7*86400) })
	fine := &policy{first: 1024, wideItems: 8, maxWide: 1024, idList: 4, lateIDList: 8, lastLevel: 5, maxBuckets: 3, probe: 16}
	for _, limit := range []int{MinFrameSizeLimit, MinFrameSizeLimit + 1, MinFrameSizeLimit + 2, MinFrameSizeLimit + 3} {
		res := reconcile(t, items, nil, 0, limit, fine, nil)
		checkDiff(t, items, nil, res)
		a, b := deal(r, items, 0.9, 0.05)
		res = reconcile(t, a, b, 0, limit, fine, nil)
		checkDiff(t, a, b, res)
		res = reconcile(t, b, a, limit, 0, nil, fine)
		checkDiff(t, b, a, res)
	}
}

func TestLimits(t *testing.T) {
	st, _ := NewStorage(nil)
	for _, limit := range []int{-1, 1, MinFrameSizeLimit - 1} {
		if _, err := NewInitiator(st, limit); err == nil {
			t.Errorf("NewInitiator accepted frame size limit %d", limit)
		}
		if _, err := NewResponder(st, limit); err == nil {
			t.Errorf("NewResponder accepted frame size limit %d", limit)
		}
	}
}

func TestStorage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	items := gen(r, 3000, func(i int) uint64 { return uint64(i % 7) }) // several chunks
	st, err := NewStorage(items)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(st.all(), Item.Compare) {
		t.Fatal("not sorted")
	}
	for i := range st.Len() {
		if got := st.LowerBound(st.At(i)); got != i {
			t.Fatalf("LowerBound(item %d) = %d", i, got)
		}
	}
	// Every prefix sum, from whichever of a chunk's kept sums, agrees with
	// adding the IDs up one by one.
	var sum sum256
	for i := range st.Len() + 1 {
		if got := st.prefix(i); got != sum {
			t.Fatalf("prefix(%d) = %x, want %x", i, got, sum)
		}
		if i < st.Len() {
			sum = sum.add(&st.at(i).ID)
		}
	}
	// lowerBound agrees with a linear scan for any bound and start.
	for range 2000 {
		b := bound{ts: r.Uint64N(8), n: r.IntN(3)}
		for i := range b.n {
			b.id[i] = byte(r.IntN(256))
		}
		lo := r.IntN(st.Len() + 1)
		want := lo
		for want < st.Len() && b.above(st.at(want)) {
			want++
		}
		if got := st.lowerBound(lo, st.Len(), b); got != want {
			t.Fatalf("lowerBound(%d, %d, %v) = %d, want %d", lo, st.Len(), b, got, want)
		}
	}
	if _, err := NewStorage(append(items, items[3])); err == nil {
		t.Error("duplicate item accepted")
	}
	if _, err := NewStorage([]Item{{Timestamp: MaxTimestamp + 1}}); err == nil {
		t.Error("timestamp 2^64-1 accepted")
	}
	// The caller's slice is copied, not kept.
	items[0].Timestamp = 99
	if st.At(0).Timestamp == 99 {
		t.Error("storage aliases the caller's slice")
	}
	// NewSortedStorage keeps sorted items as they are and refuses others.
	sorted := st.all()
	kept, err := NewSortedStorage(sorted)
	if err != nil {
		t.Fatal(err)
	}
	if kept.Fingerprint(0, kept.Len()) != st.Fingerprint(0, st.Len()) {
		t.Error("NewSortedStorage fingerprints differently from NewStorage")
	}
	sorted[10], sorted[20] = sorted[20], sorted[10]
	if _, err := NewSortedStorage(sorted); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("items out of order: err = %v", err)
	}
}

func TestVersionNegotiation(t *testing.T) {
	st, _ := NewStorage(nil)
	resp, _ := NewResponder(st, 0)
	for _, v := range []byte{0x60, 0x62, 0x6f} {
		reply, err := resp.Reconcile([]byte{v, 0x00, 0x00})
		if err != nil || !bytes.Equal(reply, []byte{0x61}) {
			t.Errorf("version 0x%02x: reply %x, %v; want 61", v, reply, err)
		}
	}
	for _, v := range []byte{0x00, 0x5f, 0x70, 0xff} {
		if _, err := resp.Reconcile([]byte{v}); !errors.Is(err, ErrMalformed) {
			t.Errorf("version byte 0x%02x: %v, want ErrMalformed", v, err)
		}
	}
	in, _ := NewInitiator(st, 0)
	if _, err := in.Initiate(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := in.Reconcile([]byte{0x62}); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("initiator got %v, want ErrUnsupportedVersion", err)
	}
}

func TestInitiatorMisuse(t *testing.T) {
	st, _ := NewStorage(nil)
	in, _ := NewInitiator(st, 0)
	if _, _, _, _, err := in.Reconcile([]byte{0x61}); err == nil {
		t.Error("Reconcile before Initiate accepted")
	}
	if _, err := in.Initiate(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Initiate(); err == nil {
		t.Error("second Initiate accepted")
	}
	if _, _, _, done, err := in.Reconcile([]byte{0x61}); !done || err != nil {
		t.Fatalf("empty reply: done=%v err=%v", done, err)
	}
	if _, _, _, _, err := in.Reconcile([]byte{0x61}); err == nil {
		t.Error("Reconcile after done accepted")
	}
}

func TestOneExtra(t *testing.T) {
	r := newRand(8)
	st, err := NewStorage(gen(r, 200, func(i int) uint64 { return uint64(i % 5) }))
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		lo := r.IntN(st.Len())
		hi := lo + 1 + r.IntN(st.Len()-lo)
		x := lo + r.IntN(hi-lo)
		var sum sum256
		for i := lo; i < hi; i++ {
			if i != x {
				sum = sum.add(&st.at(i).ID)
			}
		}
		budget := oneExtraBudget
		if got := st.oneExtra(lo, hi, st.sum(lo, hi), sum.fingerprint(uint64(hi-lo-1)), &budget); got != x {
			t.Fatalf("oneExtra(%d, %d) = %d, want %d", lo, hi, got, x)
		}
		if got := st.oneExtra(lo, hi, st.sum(lo, hi), st.Fingerprint(lo, hi), &budget); got != -1 {
			t.Fatalf("oneExtra of the full range's fingerprint = %d", got)
		}
	}
	budget := oneExtraBudget
	if got := st.oneExtra(3, 3, sum256{}, [FingerprintSize]byte{}, &budget); got != -1 {
		t.Fatalf("oneExtra of an empty range = %d", got)
	}
}

// TestResponderLetsGoWhenDone checks that a responder whose reply ends the
// round lets go of its Storage (a session keeps its responder until the
// next round opens, minutes later, while the node's Storage moves on) and
// refuses a further message; reconcileStorage checks on every round of
// every test that the initiator is then done too.
func TestResponderLetsGoWhenDone(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		n, d, limit int
	}{{0, 0, 0}, {1000, 0, 0}, {1000, 1, 0}, {1000, 10, 0}, {5000, 300, MinFrameSizeLimit}, {20000, 2000, 0}} {
		items := gen(r, c.n+c.d, func(int) uint64 { return 1_800_000_000 + r.Uint64N(3600) })
		sa, err := NewStorage(items[:c.n])
		if err != nil {
			t.Fatal(err)
		}
		sb, err := NewStorage(items[c.d:])
		if err != nil {
			t.Fatal(err)
		}
		in, _ := NewInitiator(sa, c.limit)
		resp, _ := NewResponder(sb, c.limit)
		msg, _ := in.Initiate()
		var last []byte
		for done := false; !done; {
			last = msg
			reply, err := resp.Reconcile(msg)
			if err != nil {
				t.Fatal(err)
			}
			if msg, _, _, done, err = in.Reconcile(reply); err != nil {
				t.Fatal(err)
			}
		}
		if !resp.done || resp.s.st != nil {
			t.Errorf("%d items, %d differences, limit %d: the responder holds its Storage after the last reply", c.n, c.d, c.limit)
		}
		if _, err := resp.Reconcile(last); err == nil {
			t.Errorf("%d items, %d differences, limit %d: a message after the round was answered", c.n, c.d, c.limit)
		}
	}
}

// TestReportedOnce checks that an Initiator reports no ID twice, in one
// reply or across replies, however a peer repeats itself: an ID listed in
// two ranges, twice in one list, or again in a later reply, and our items
// in a range covered again. It does so with few IDs a reply, which report
// looks for one by one, and with more than fewReports.
func TestReportedOnce(t *testing.T) {
	for _, c := range []struct{ listed, ours int }{{3, 4}, {2 * fewReports, 20}} {
		listed, ours := c.listed, c.ours
		items := make([]Item, 40)
		for i := range items {
			items[i] = Item{Timestamp: uint64(1 + i), ID: [IDSize]byte{byte(i), 0xaa}}
		}
		st, err := NewStorage(items)
		if err != nil {
			t.Fatal(err)
		}
		in, err := NewInitiator(st, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Initiate(); err != nil {
			t.Fatal(err)
		}
		theirs := make([][IDSize]byte, listed+1)
		for i := range theirs {
			theirs[i] = [IDSize]byte{byte(i), 0xbb}
		}
		idList := func(w *writer, b bound, ids ...[IDSize]byte) {
			w.putBound(b)
			w.buf = appendVarint(w.buf, modeIDList)
			w.buf = appendVarint(w.buf, uint64(len(ids)))
			for _, id := range ids {
				w.buf = append(w.buf, id[:]...)
			}
		}
		// Reply 1: theirs[0] listed in two ranges and twice in one, which
		// hold our first items; a Fingerprint for the rest, which differs
		// and keeps the round going.
		w := newWriter(0, nil)
		idList(w, bound{ts: 3}, theirs[0])
		idList(w, bound{ts: uint64(ours + 1)}, append(slices.Clone(theirs[:listed]), theirs[0])...)
		w.putBound(infinity)
		w.buf = appendVarint(w.buf, modeFingerprint)
		w.buf = append(w.buf, make([]byte, FingerprintSize)...)
		next, have, need, done, err := in.Reconcile(w.buf)
		if err != nil || done || next == nil {
			t.Fatalf("listed %d, reply 1: done %v, err %v", listed, done, err)
		}
		if len(have) != ours || !slices.Equal(need, theirs[:listed]) {
			t.Fatalf("listed %d, reply 1: %d have, need %x; want %d and %x", listed, len(have), need, ours, theirs[:listed])
		}
		// Reply 2: everything listed again, plus one more, over all of our
		// items.
		w = newWriter(0, nil)
		idList(w, infinity, theirs...)
		_, have, need, done, err = in.Reconcile(w.buf)
		if err != nil || !done {
			t.Fatalf("listed %d, reply 2: done %v, err %v", listed, done, err)
		}
		if len(have) != len(items)-ours || have[0] != items[ours].ID || !slices.Equal(need, theirs[listed:]) {
			t.Fatalf("listed %d, reply 2: %d have from %x, need %x; want items %d on, %x", listed, len(have), have[:1], need, ours, theirs[listed:])
		}
	}
}
