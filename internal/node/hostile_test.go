package node

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// These tests play the active stranger of the threat model against one
// node (SPEC §13, "What an active stranger can learn"); the link-level
// attacks are in internal/session, internal/mesh and test/netns.

// seededNode is a test node whose randomness is a seeded stream, so that
// the randomised choices (hop budgets, receipt delays) are reproducible.
func seededNode(t *testing.T, name string, clk *testClock, seed uint64, cfg Config) *testNode {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	n, err := Init(home, []byte("pw-"+name), name, cfg, Options{Now: clk.Now, KDF: store.TestKDF(), Rand: mrand.NewChaCha8(s)})
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, t: t, home: home, clk: clk}
	t.Cleanup(func() { tn.Close() })
	return tn
}

// TestInviteTagsAreNoOracle (finding 1): someone who saw Alice's QR code
// offers made-up envelopes under its intro tags to 100 neighbours, half of
// them Alice's node, and watches who claims them. Nobody claims an intro
// tag, so the owner answers exactly as a stranger does: an advantage of 0.
func TestInviteTagsAreNoOracle(t *testing.T) {
	clk := newTestClock()
	owner, stranger := newTestNode(t, "Alice", clk), newTestNode(t, "Stranger", clk)
	inv, err := owner.Invite()
	if err != nil {
		t.Fatal(err)
	}
	claimed := map[bool]int{}
	for i := range 100 {
		var id envelope.ID
		rand.Read(id[:])
		n, isOwner := stranger, i%2 == 0
		if isOwner {
			n = owner
		}
		tag := keys.IntroTag(inv.Secret, uint16(i))
		if got := n.Claim([]envelope.ID{id}, [][envelope.TagSize]byte{tag}); len(got) > 0 {
			claimed[isOwner]++
		}
	}
	advantage := math.Abs(float64(claimed[true])/50 - float64(claimed[false])/50)
	t.Logf("claims: owner %d of 50, stranger %d of 50: advantage %.2f", claimed[true], claimed[false], advantage)
	if advantage != 0 {
		t.Fatal("an offer under an invite's tag tells its owner apart")
	}
}

// TestRecipientLooksLikeARelay (finding 2): a stranger pushes an envelope
// to its recipient and to a relay and compares what they hold: both carry
// it until the receipt leaves. So does a request from someone rejected.
func TestRecipientLooksLikeARelay(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	m := mustSend(t, alice, "Bob", "who holds this?")
	raw := envelopeOf(t, alice, m.ID)
	id := envelope.ComputeID(raw)
	for _, n := range []*testNode{bob, carol} {
		if _, err := n.Ingest([][]byte{raw}); err != nil {
			t.Fatal(err)
		}
	}
	if !hasMessage(t, bob, "who holds this?") {
		t.Fatal("control: Bob did not read it")
	}
	if bob.Holds(id) != carol.Holds(id) || !bob.Holds(id) {
		t.Fatalf("recipient holds it: %v, relay: %v", bob.Holds(id), carol.Holds(id))
	}
	// A rejected requester's new request: carried like any envelope.
	mallory := newTestNode(t, "Mallory", clk)
	mustAdd(t, mallory, bob.link())
	carry(t, mallory, bob)
	if err := bob.Reject("Mallory"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, mallory, "Bob", "ignored")
	var again [][]byte
	mallory.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
		again = append(again, bytes.Clone(raw))
		return nil
	})
	for _, n := range []*testNode{bob, carol} {
		if _, err := n.Ingest(again); err != nil {
			t.Fatal(err)
		}
	}
	for _, raw := range again {
		id := envelope.ComputeID(raw)
		if bob.Holds(id) != carol.Holds(id) {
			t.Fatalf("a rejected sender's envelope: Bob holds it %v, a relay %v", bob.Holds(id), carol.Holds(id))
		}
	}
}

// TestHopBudgetsDoNotNameTheWriter (finding 3): a neighbour sees the hop
// budgets of copies handed to it by their writer and by a relay one hop
// further, 1,000 of each, each envelope written with its own budget. The
// two distributions are alike: the advantage of guessing "writer" from a
// copy's hop budget is measured and stays small (it is 1.0 without the
// rule). And the rule keeps the limit: no copy leaves the writer with more
// than its hop limit less one, and every relay takes one more off.
func TestHopBudgetsDoNotNameTheWriter(t *testing.T) {
	clk := newTestClock()
	cfg := DefaultConfig
	cfg.ReceiptDelay = 0
	writer := seededNode(t, "Writer", clk, 1, cfg)
	relay := seededNode(t, "Relay", clk, 2, cfg)
	handOn := func(n *testNode, raw []byte) []byte {
		t.Helper()
		if _, err := n.Ingest([][]byte{raw}); err != nil {
			t.Fatal(err)
		}
		fw, err := n.Forward([]envelope.ID{envelope.ComputeID(raw)}, nil)
		if err != nil || len(fw) != 1 {
			t.Fatalf("forward: %v (%d copies)", err, len(fw))
		}
		return fw[0].Raw
	}
	hopsOf := func(raw []byte) uint8 { e, _ := envelope.Parse(raw); return e.Hops }
	const n = 1000
	fromWriter, fromRelay := map[uint8]int{}, map[uint8]int{}
	for _, raw := range strangerEnvelopes(t, clk, n, time.Hour) {
		e, _ := envelope.Parse(raw)
		e.Hops = writer.startHops() // as its writer holds what it wrote
		first := handOn(writer, e.Marshal())
		second := handOn(relay, first)
		h1, h2 := hopsOf(first), hopsOf(second)
		if h1 >= cfg.Hops || h1 < cfg.Hops-1-HopBlur || h2 != h1-1 {
			t.Fatalf("hop limit %d: the writer handed on %d, the relay %d", cfg.Hops, h1, h2)
		}
		fromWriter[h1]++
		fromRelay[h2]++
	}
	// Best guess of "writer" per budget: total variation distance.
	tv := 0.0
	for h := range uint8(cfg.Hops + 1) {
		tv += math.Abs(float64(fromWriter[h])/n-float64(fromRelay[h])/n) / 2
	}
	t.Logf("hop budgets from the writer %v, from a relay %v: advantage %.2f", fromWriter, fromRelay, tv)
	// A uniform draw of 0 to 3 gives 0.25; 1,000 samples may read up to
	// about 0.3 (0.28 with these seeds).
	if tv > 0.33 {
		t.Fatalf("the hop budget tells the writer from a relay with advantage %.2f", tv)
	}
}

// TestReceiptsWaitAndLeaveTogether (finding 4): a neighbour watching when
// receipts leave the recipient. They wait a random time up to the delay,
// so their times do not follow the arrivals, and several leave together.
func TestReceiptsWaitAndLeaveTogether(t *testing.T) {
	clk := newTestClock()
	cfg := DefaultConfig
	alice, bob := seededNode(t, "Alice", clk, 3, cfg), seededNode(t, "Bob", clk, 4, cfg)
	befriend(t, alice, bob)
	bob.ReleaseReceipts(true)
	before := len(ownReceipts(t, bob))
	for i := range 20 {
		mustSend(t, alice, "Bob", fmt.Sprint("message ", i))
	}
	var batch [][]byte
	alice.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
		batch = append(batch, bytes.Clone(raw))
		return nil
	})
	if _, err := bob.Ingest(batch); err != nil {
		t.Fatal(err)
	}
	if got := len(ownReceipts(t, bob)) - before; got != 0 {
		t.Fatalf("%d receipts left the moment the messages arrived", got)
	}
	var left []int
	for minute := 1; minute <= 11; minute++ {
		clk.Advance(time.Minute)
		if err := bob.ReleaseReceipts(false); err != nil {
			t.Fatal(err)
		}
		left = append(left, len(ownReceipts(t, bob))-before)
	}
	t.Logf("receipts out after each minute: %v", left)
	if left[len(left)-1] != 20 {
		t.Fatalf("after 11 minutes %d of 20 receipts have left", left[len(left)-1])
	}
	if left[0] == 20 {
		t.Fatal("all receipts left in the first minute: no delay")
	}
}

func ownReceipts(t *testing.T, n *testNode) []EnvelopeInfo {
	var out []EnvelopeInfo
	for _, e := range mustEnvelopes(t, n) {
		if e.Own && e.Kind == "receipt" {
			out = append(out, e)
		}
	}
	return out
}

// TestRequestFloodIsBounded (finding 5): a flood of contact requests
// through a published invite: at most MaxRequests wait, the rest are only
// carried; requests dated long ago are refused; unanswered requests are
// forgotten after the retention window.
func TestRequestFloodIsBounded(t *testing.T) {
	clk := newTestClock()
	alice := newTestNode(t, "Alice", clk)
	link := alice.link()
	var batch [][]byte
	for i := range MaxRequests + 20 {
		m, err := InitMemory(fmt.Sprint("Flooder ", i), DefaultConfig, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.AddContact(link, "Alice"); err != nil {
			t.Fatal(err)
		}
		m.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
			batch = append(batch, bytes.Clone(raw))
			return nil
		})
		m.Close()
	}
	start := time.Now()
	rep, err := alice.Ingest(batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests: %d opened, %d refused, in %s", len(batch), rep.Requests, rep.Refused, time.Since(start).Round(time.Millisecond))
	if rep.Requests != MaxRequests || rep.Refused != 20 {
		t.Fatalf("a flood of requests: %+v", rep)
	}
	clk.Advance(DefaultConfig.Retention + 2*keys.PeriodLength)
	if err := alice.Maintain(); err != nil {
		t.Fatal(err)
	}
	if cs, _ := alice.Contacts(); len(cs) != 0 {
		t.Fatalf("%d unanswered requests outlived the retention window", len(cs))
	}
}

// TestFloodEvictsNoHonestMail (finding 6): a relay with a small quota holds
// honest mail within its fair share; ten flooders, and one honest relay
// passing junk on, push junk dated before, with and after it. No honest
// envelope is evicted.
func TestFloodEvictsNoHonestMail(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	const quota = 400 << 10
	relay.SetRelayQuota(quota)
	honest := strangerEnvelopes(t, clk, 30, 3*24*time.Hour) // ~20 KB of cost, within a twelfth of the quota
	if _, err := relay.IngestFrom("honest", honest, nil); err != nil {
		t.Fatal(err)
	}
	evicted := 0
	for round := range 6 {
		for src := range 10 {
			for _, ttl := range []time.Duration{time.Hour, 3 * 24 * time.Hour, 20 * 24 * time.Hour} {
				rep, err := relay.IngestFrom(fmt.Sprint("flooder-", src), strangerEnvelopes(t, clk, 40, ttl), nil)
				if err != nil {
					t.Fatal(err)
				}
				evicted += rep.Evicted
			}
		}
		rep, err := relay.IngestFrom("honest-relay", strangerEnvelopes(t, clk, 40, time.Duration(round+1)*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		evicted += rep.Evicted
	}
	st, _ := relay.Stats()
	t.Logf("evicted %d junk envelopes; carried %d bytes (quota %d)", evicted, st.CarriedBytes, quota)
	if evicted == 0 {
		t.Fatal("control: the flood never filled the quota")
	}
	for _, raw := range honest {
		if !relay.Holds(envelope.ComputeID(raw)) {
			t.Fatal("the flood evicted honest mail within its fair share")
		}
	}
}

// TestJunkBeyondTheProtocolLimits (findings 6, 11): junk dated years ahead
// is refused, a hop budget of 255 is cut to MaxHops, and a receipt re-dated
// to outlive its target purges and proves nothing; forged receipts do not
// crowd out the genuine one.
func TestJunkBeyondTheProtocolLimits(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	far := strangerEnvelopes(t, clk, 1, 400*24*time.Hour)
	if rep, _ := carol.Ingest(far); rep.Invalid != 1 || rep.New != 0 {
		t.Fatalf("junk dated a year ahead: %+v", rep)
	}
	loud := strangerEnvelopes(t, clk, 1, time.Hour)
	envelope.SetHops(loud[0], 255)
	if rep, _ := carol.Ingest(loud); rep.Clamped != 1 {
		t.Fatalf("hop budget 255: %+v", rep)
	}
	for _, h := range carol.Inventory() {
		if h.Hops > MaxHops {
			t.Fatalf("held with %d hops", h.Hops)
		}
	}
	// Forged receipts for a target Carol does not hold yet, then the
	// genuine one and a copy of it re-dated: when the target arrives, the
	// genuine receipt drops it.
	raw, genuine := deliveredElsewhere(t, alice, bob, "delivered, then late")
	forged := forgedReceipts(t, raw, 10)
	redated := *genuine
	redated.Expiry += 3600 * 24 * 20
	dave := newTestNode(t, "Dave", clk)
	if _, err := dave.Ingest(append(forged, redated.Marshal())); err != nil {
		t.Fatal(err)
	}
	if rep, _ := dave.Ingest([][]byte{raw}); rep.New != 1 {
		t.Fatalf("a re-dated receipt proved delivery: %+v", rep)
	}
	if _, err := carol.Ingest(append(forged, genuine.Marshal(), redated.Marshal())); err != nil {
		t.Fatal(err)
	}
	if rep, _ := carol.Ingest([][]byte{raw}); rep.AlreadyDelivered != 1 {
		t.Fatalf("ten forged receipts and a re-dated copy crowded out the genuine one: %+v", rep)
	}
	if rep, _ := alice.Ingest([][]byte{redated.Marshal()}); rep.Delivered != 0 {
		t.Fatalf("a re-dated receipt marked the message delivered: %+v", rep)
	}
}

// TestQuotaCountsWhatItemsCost (finding 7): filled with the smallest
// envelopes, the relay's count of what it carries includes each item's
// overhead, so the number of items the quota allows is bounded.
func TestQuotaCountsWhatItemsCost(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	const quota = 256 << 10
	relay.SetRelayQuota(quota)
	for range 10 {
		if _, err := relay.IngestFrom("a", strangerEnvelopes(t, clk, 100, time.Hour), nil); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := relay.Stats()
	items, size := st.Carried, st.CarriedBytes
	t.Logf("%d items, %d bytes under a quota of %d", items, size, quota)
	if int64(items)*(size/int64(items)+ItemOverhead) > quota {
		t.Fatalf("%d items of %d bytes cost more than the quota", items, size/int64(items))
	}
}

// TestSprayCopiesAreNotLostToADuplicate (issue 12's routing defect): a
// spray that reaches a node already holding the envelope hands over copies
// its sender gave up; they join the copies held instead of vanishing.
func TestSprayCopiesAreNotLostToADuplicate(t *testing.T) {
	clk := newTestClock()
	relay := seededNode(t, "Relay", clk, 3, DefaultConfig)
	raw := strangerEnvelopes(t, clk, 1, time.Hour)[0]
	id := envelope.ComputeID(raw)
	copies := func() uint8 {
		hs := relay.Describe([]envelope.ID{id})
		if len(hs) != 1 {
			t.Fatalf("relay describes %d envelopes", len(hs))
		}
		return hs[0].Copies
	}
	if _, err := relay.IngestFrom("a", [][]byte{raw}, []uint8{4}); err != nil {
		t.Fatal(err)
	}
	rep, err := relay.IngestFrom("b", [][]byte{raw}, []uint8{3})
	if err != nil || rep.Duplicate != 1 {
		t.Fatalf("second spray: %+v, %v", rep, err)
	}
	if c := copies(); c != 7 {
		t.Fatalf("after sprays of 4 and 3 copies the relay holds %d", c)
	}
	// The sum is capped, and a plain copy (no budget: epidemic) changes nothing.
	relay.IngestFrom("c", [][]byte{raw}, []uint8{MaxCopies})
	relay.IngestFrom("d", [][]byte{raw}, nil)
	if c := copies(); c != MaxCopies {
		t.Fatalf("copies %d after a spray of MaxCopies; want the cap %d", c, MaxCopies)
	}
}

// TestChurnDoesNotGrowTheHome (the soak's disk growth): bbolt never
// shrinks its file, so a home that once carried a lot stays that large when
// the quota is lowered (or churn leaves it fragmented). A relay fills 32 MiB
// of quota, then is cut to 2 MiB: maintenance compacts the home back under
// 3 × the new quota.
func TestChurnDoesNotGrowTheHome(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	relay.SetRelayQuota(32 << 20)
	for range 40 {
		if _, err := relay.IngestFrom("junk", strangerEnvelopes(t, clk, 1000, time.Hour), nil); err != nil {
			t.Fatal(err)
		}
	}
	const quota = 2 << 20
	relay.SetRelayQuota(quota)
	if _, err := relay.IngestFrom("junk", strangerEnvelopes(t, clk, 1, time.Hour), nil); err != nil { // evicts
		t.Fatal(err)
	}
	grown, _ := relay.Stats()
	if err := relay.Maintain(); err != nil {
		t.Fatal(err)
	}
	after, _ := relay.Stats()
	t.Logf("quota cut to %d: home %d bytes, %d after maintenance (%d envelopes carried)",
		quota, grown.StoreBytes, after.StoreBytes, after.Carried)
	if grown.StoreBytes < 6*quota {
		t.Fatalf("the home grew to only %d bytes: the test shows nothing", grown.StoreBytes)
	}
	if after.StoreBytes > 3*quota {
		t.Fatalf("after maintenance the home is %d bytes, over 3 × the quota", after.StoreBytes)
	}
}
