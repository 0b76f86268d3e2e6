package node

import (
	"crypto/rand"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/negentropy"
)

// strangerEnvelopes makes n envelopes for nobody here, as a relay sees them.
func strangerEnvelopes(t *testing.T, clk *testClock, n int, ttl time.Duration) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		s := envelope.Sealing{Expiry: expiryFor(clk.Now().Add(ttl)), Hops: 5}
		rand.Read(s.Key[:])
		rand.Read(s.Tag[:])
		e, err := envelope.Seal(s, []byte("mail for someone else"))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e.Marshal()
	}
	return out
}

func TestInventoryFollowsTheStore(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	var watched []envelope.ID
	carol.Watch(func(ids []envelope.ID) { watched = append(watched, ids...) })
	mustSend(t, alice, "Bob", "hello")
	rep := carry(t, alice, carol)
	if rep.New == 0 || len(watched) != rep.New+rep.Receipts {
		t.Fatalf("watcher saw %d envelopes, ingest stored %d", len(watched), rep.New+rep.Receipts)
	}
	inv := carol.Inventory()
	if len(inv) != len(mustEnvelopes(t, carol)) {
		t.Fatalf("inventory has %d envelopes, store has %d", len(inv), len(mustEnvelopes(t, carol)))
	}
	for i := 1; i < len(inv); i++ {
		if inv[i-1].Expiry > inv[i].Expiry {
			t.Fatal("inventory not sorted by expiry")
		}
	}
	fw, err := carol.Forward([]envelope.ID{inv[0].ID}, nil)
	if err != nil || len(fw) != 1 {
		t.Fatalf("Forward: %d envelopes, %v", len(fw), err)
	}
	if e, _ := envelope.Parse(fw[0].Raw); e.Hops != inv[0].Hops-1 && e.Hops != inv[0].Hops {
		t.Fatalf("forwarded copy has %d hops, want %d or %d (SPEC §12.7)", e.Hops, inv[0].Hops-1, inv[0].Hops)
	}
	// Forwarding works on a copy: the record kept in memory is unchanged.
	again, err := carol.Forward([]envelope.ID{inv[0].ID}, nil)
	if err != nil || len(again) != 1 {
		t.Fatalf("Forward again: %d envelopes, %v", len(again), err)
	}
	if e, _ := envelope.Parse(again[0].Raw); e.Hops != inv[0].Hops-1 && e.Hops != inv[0].Hops {
		t.Fatalf("forwarded again with %d hops, want %d or %d", e.Hops, inv[0].Hops-1, inv[0].Hops)
	}
	if h := carol.Inventory()[0]; h.ID == inv[0].ID && h.Hops != inv[0].Hops {
		t.Fatalf("forwarding changed the stored hop budget to %d", h.Hops)
	}
	// Bob receives; his receipt reaches Carol and purges her copy, in memory too.
	carry(t, carol, bob)
	carry(t, bob, carol)
	for _, h := range carol.Inventory() {
		if !h.Receipt {
			t.Fatalf("carol still lists a delivered envelope %s", h.ID)
		}
	}
	// What Open rebuilds equals what was kept up to date.
	before := len(carol.Inventory())
	carol.reopen()
	if after := len(carol.Inventory()); after != before {
		t.Fatalf("inventory after reopen: %d, before: %d", after, before)
	}
	clk.Advance(8 * 24 * time.Hour)
	if err := carol.Maintain(); err != nil {
		t.Fatal(err)
	}
	if n := len(carol.Inventory()); n != 0 {
		t.Fatalf("%d expired envelopes still listed", n)
	}
}

// TestSnapshotFollowsTheInventory: the Negentropy storage lists what the
// inventory lists, is reused while nothing changes and made again after.
func TestSnapshotFollowsTheInventory(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	check := func(st *negentropy.Storage) {
		t.Helper()
		inv := relay.Inventory()
		if st.Len() != len(inv) {
			t.Fatalf("snapshot has %d items, inventory %d", st.Len(), len(inv))
		}
		for i, h := range inv {
			if it := st.At(i); it.ID != h.ID || it.Timestamp != uint64(h.Expiry) {
				t.Fatalf("snapshot item %d is %x, inventory has %s", i, it.ID, h.ID)
			}
		}
	}
	if _, err := relay.Ingest(strangerEnvelopes(t, clk, 20, time.Hour)); err != nil {
		t.Fatal(err)
	}
	first, err := relay.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	check(first)
	if again, _ := relay.Snapshot(); again != first {
		t.Error("snapshot made again with nothing changed")
	}
	if _, err := relay.Ingest(strangerEnvelopes(t, clk, 5, 2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	relay.Inventory() // a merge by another caller must not leave a stale snapshot
	second, err := relay.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if second == first || second.Len() != 25 {
		t.Fatalf("after 5 more envelopes: same storage %v, %d items", second == first, second.Len())
	}
	check(second)
}

func TestFairEvictionKeepsOthersMail(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	relay.SetRelayQuota(80 << 10)                      // two sources: a share of 40 KiB each
	friend := strangerEnvelopes(t, clk, 40, time.Hour) // ~7 KB, costing ~27 KB with ItemOverhead
	if _, err := relay.IngestFrom("friend", friend, nil); err != nil {
		t.Fatal(err)
	}
	evicted := 0
	for range 10 { // a flood of 1,000 envelopes, 25 times the quota's share
		rep, err := relay.IngestFrom("flooder", strangerEnvelopes(t, clk, 100, 2*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		evicted += rep.Evicted
	}
	st, err := relay.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CarriedBytes > 80<<10 || evicted == 0 {
		t.Fatalf("carried %d bytes over a %d quota, evicted %d", st.CarriedBytes, 80<<10, evicted)
	}
	for _, raw := range friend {
		if !relay.Holds(envelope.ComputeID(raw)) {
			t.Fatal("the flood evicted a friend's envelope")
		}
	}
}

func TestNoRelayKeepsOnlyOwnMail(t *testing.T) {
	_, alice, _, carol := friendsAndCarrier(t)
	carol.SetRelayQuota(0)
	mustSend(t, alice, "Bob", "hello")
	rep := carry(t, alice, carol)
	if rep.New != 0 || rep.Refused == 0 {
		t.Fatalf("a non-relaying node stored %d envelopes for others (refused %d)", rep.New, rep.Refused)
	}
}

// The inventory's order (merged from what changed) always equals a full
// sort of what it holds, through random additions, changes and removals.
func TestInventoryListMatchesSort(t *testing.T) {
	iv := newInventory(DefaultRecordCache)
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	var ids []envelope.ID
	for round := range 300 {
		for range rng.IntN(20) {
			switch op := rng.IntN(3); {
			case op == 0 || len(ids) == 0:
				var id envelope.ID
				for i := range id {
					id[i] = byte(rng.IntN(256))
				}
				ids = append(ids, id)
				iv.add(id, heldMeta{expiry: uint32(rng.IntN(50)), size: 10})
			case op == 1: // change: new expiry or hops
				id := ids[rng.IntN(len(ids))]
				iv.add(id, heldMeta{expiry: uint32(rng.IntN(50)), size: 10, hops: uint8(rng.IntN(5))})
			default:
				i := rng.IntN(len(ids))
				iv.remove(ids[i])
				ids = append(ids[:i], ids[i+1:]...)
			}
		}
		want := make([]Held, 0, len(iv.m))
		for id, hm := range iv.m {
			want = append(want, hm.held(id))
		}
		slices.SortFunc(want, compareHeld)
		if got := iv.list(); !slices.Equal(got, want) {
			t.Fatalf("round %d: list has %d envelopes, a full sort %d, or their order differs", round, len(got), len(want))
		}
	}
}

// TestSnapshotStaysTrueUnderChurn is a differential test of the snapshot
// kept up to date change by change (SPEC §11.2): after envelopes arrive
// from several sources, are evicted by the quota, expire and are swept, and
// are purged by receipts, every snapshot holds exactly the items of one
// built afresh from the inventory, with the same fingerprint over every
// range tried.
func TestSnapshotStaysTrueUnderChurn(t *testing.T) {
	clk, alice, _, relay := friendsAndCarrier(t)
	relay.SetRelayQuota(120 << 10)
	r := mathrand.New(mathrand.NewPCG(3, 4))
	evicted, swept := 0, 0
	for round := range 40 {
		switch round % 4 {
		case 0, 1: // arrivals from a few sources, with several lifetimes
			src := fmt.Sprintf("10.0.0.%d", r.IntN(4))
			rep, err := relay.IngestFrom(src, strangerEnvelopes(t, clk, 20+r.IntN(60), time.Duration(1+r.IntN(5))*time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			evicted += rep.Evicted
		case 2: // time passes: some expire and are swept
			clk.Advance(time.Duration(r.IntN(90)) * time.Minute)
			before := len(relay.Inventory())
			if err := relay.Maintain(); err != nil {
				t.Fatal(err)
			}
			swept += before - len(relay.Inventory())
		case 3: // mail with its receipt: carried, then purged
			mustSend(t, alice, "Bob", fmt.Sprintf("round %d", round))
			carry(t, alice, relay)
		}
		got, err := relay.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		inv := relay.Inventory()
		items := make([]negentropy.Item, len(inv))
		for i, h := range inv {
			items[i] = negentropy.Item{Timestamp: uint64(h.Expiry), ID: h.ID}
		}
		want, err := negentropy.NewSortedStorage(items)
		if err != nil {
			t.Fatal(err)
		}
		if got.Len() != want.Len() {
			t.Fatalf("round %d: snapshot holds %d items, a fresh one %d", round, got.Len(), want.Len())
		}
		for i := range got.Len() {
			if got.At(i) != want.At(i) {
				t.Fatalf("round %d: item %d differs", round, i)
			}
		}
		for range 50 {
			lo := r.IntN(got.Len() + 1)
			hi := lo + r.IntN(got.Len()-lo+1)
			if got.Fingerprint(lo, hi) != want.Fingerprint(lo, hi) {
				t.Fatalf("round %d: fingerprint of [%d, %d) differs", round, lo, hi)
			}
		}
	}
	if evicted == 0 || swept == 0 {
		t.Fatalf("the churn evicted %d and swept %d: it must do both", evicted, swept)
	}
	t.Logf("evicted %d, swept %d", evicted, swept)
}

// TestCarriedTagsDoNotAccumulate: a relay that is never sent anything (so
// never looks its carried tags up again) keeps the tags of what it holds,
// and of at most half as many envelopes gone since, not of every envelope
// it ever carried.
func TestCarriedTagsDoNotAccumulate(t *testing.T) {
	clk, _, _, relay := friendsAndCarrier(t)
	relay.SetRelayQuota(300 << 10)
	carried, peak := 0, 0
	for round := range 60 {
		raws := strangerEnvelopes(t, clk, 50, time.Hour)
		carried += len(raws)
		if _, err := relay.IngestFrom("10.0.0.1", raws, nil); err != nil {
			t.Fatal(err)
		}
		iv := relay.inv
		peak = max(peak, len(iv.tags))
		held := 0
		for _, id := range iv.tags {
			if _, ok := iv.m[id]; ok {
				held++
			}
		}
		if held != len(iv.m) || iv.tagged != held {
			t.Fatalf("round %d: the tags of %d envelopes held are kept, %d counted, want all %d", round, held, iv.tagged, len(iv.m))
		}
		// The quota evicts after the batch is noted: at most a batch more
		// were held when the tags were last counted.
		if stale, most := len(iv.tags)-held, (held+len(raws))/2+64+len(raws); stale > most {
			t.Fatalf("round %d: %d tags of envelopes gone kept beside %d held, want at most %d", round, stale, held, most)
		}
	}
	if carried < 4*len(relay.inv.m) {
		t.Fatalf("%d carried, %d held: the quota must evict most", carried, len(relay.inv.m))
	}
	t.Logf("%d carried, %d held, at most %d tags kept", carried, len(relay.inv.m), peak)
}

// TestJournalLetsGoOfRecords: once a transaction's changes are applied, the
// journal points to none of the records they wrote, whose memory belongs
// to the record cache alone, and keeps no room for a large batch.
func TestJournalLetsGoOfRecords(t *testing.T) {
	clk, _, _, relay := friendsAndCarrier(t)
	for _, batch := range []int{10, 200} {
		if _, err := relay.IngestFrom("10.0.0.1", strangerEnvelopes(t, clk, batch, time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		if cap(relay.journal) > maxKeptJournal {
			t.Errorf("after %d envelopes the journal keeps room for %d changes", batch, cap(relay.journal))
		}
		for i, c := range relay.journal[:cap(relay.journal)] {
			if c.rec != nil || c.tag != nil {
				t.Fatalf("after %d envelopes change %d of the journal still points to its record", batch, i)
			}
		}
	}
}
