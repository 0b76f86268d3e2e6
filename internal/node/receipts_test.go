package node

import (
	"crypto/rand"
	"maps"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// deliveredElsewhere has from send text to to, which opens it and releases
// its receipt: it returns the envelope and its genuine receipt, which a
// relay has not seen yet.
func deliveredElsewhere(t *testing.T, from, to *testNode, text string) ([]byte, *envelope.Envelope) {
	t.Helper()
	m := mustSend(t, from, to.id.Name, text)
	raw := envelopeOf(t, from, m.ID)
	id := envelope.ComputeID(raw)
	carry(t, from, to)
	if err := to.ReleaseReceipts(true); err != nil {
		t.Fatal(err)
	}
	var genuine *envelope.Envelope
	to.eachEnvelope(func(_ byte, _ []byte, e *envelope.Envelope) error {
		if e.Kind == envelope.KindReceipt && e.Target == id {
			genuine = e
		}
		return nil
	})
	if genuine == nil {
		t.Fatalf("control: %s wrote no receipt", to.id.Name)
	}
	return raw, genuine
}

// forgedReceipts makes n receipts for the envelope raw that name it and
// bear its expiry but reveal random secrets.
func forgedReceipts(t *testing.T, raw []byte, n int) [][]byte {
	t.Helper()
	target, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		var s [envelope.SecretSize]byte
		rand.Read(s[:])
		out[i] = envelope.NewReceipt(envelope.ComputeID(raw), target.Expiry, s, 5).Marshal()
	}
	return out
}

// secretsFiled counts the receipt secrets filed apart from their receipts.
func secretsFiled(t *testing.T, n *testNode) int {
	t.Helper()
	var c int
	err := n.st.View(func(tx *store.Tx) (err error) {
		c, err = tx.Count(colReceipts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCarriedReceiptsAreTheirOwnRecord (SPEC §6, issue 12): a relay that
// carries receipts files no secret beside them, yet a target arriving later
// is dropped by its genuine receipt and not by forged ones, also after a
// restart (the index made again at open answers the same), and after the
// quota evicted the receipts (their secrets are filed then).
func TestCarriedReceiptsAreTheirOwnRecord(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	raw, genuine := deliveredElsewhere(t, alice, bob, "delivered before Carol sees it")
	redated := *genuine
	redated.Expiry += 3600
	undelivered := envelopeOf(t, alice, mustSend(t, alice, "Bob", "not delivered").ID)
	batch := append(forgedReceipts(t, raw, 5), genuine.Marshal(), redated.Marshal())
	batch = append(batch, forgedReceipts(t, undelivered, 5)...)
	rep, err := carol.Ingest(batch)
	if err != nil || rep.Receipts != len(batch) {
		t.Fatalf("Carol carries %+v, %v; want %d receipts", rep, err, len(batch))
	}
	if n := secretsFiled(t, carol); n != 0 {
		t.Fatalf("carrying %d receipts filed %d secrets beside them", len(batch), n)
	}
	if len(carol.kept.m) != len(batch) {
		t.Fatalf("the index holds %d secrets, Carol carries %d receipts", len(carol.kept.m), len(batch))
	}
	reopened := func(when string) {
		t.Helper()
		before := maps.Clone(carol.kept.m)
		carol.reopen()
		if !maps.Equal(before, carol.kept.m) {
			t.Fatalf("%s: the index made at open holds %d secrets, %d before", when, len(carol.kept.m), len(before))
		}
	}
	delivered := func(when string) {
		t.Helper()
		if rep, _ := carol.Ingest([][]byte{raw}); rep.AlreadyDelivered != 1 || rep.New != 0 {
			t.Fatalf("%s: the delivered target was not dropped: %+v", when, rep)
		}
	}
	reopened("carried")
	delivered("after a restart")
	if rep, _ := carol.Ingest([][]byte{undelivered}); rep.New != 1 {
		t.Fatalf("forged receipts dropped an undelivered envelope: %+v", rep)
	}

	// Relaying turned down to nothing: the next arrival evicts every
	// receipt carried, and their secrets are filed instead, each apart.
	carol.SetRelayQuota(1)
	if rep, _ := carol.Ingest(strangerEnvelopes(t, clk, 1, time.Hour)); rep.Evicted != len(batch)+2 {
		t.Fatalf("evicted %+v, want the %d receipts and 2 envelopes", rep, len(batch))
	}
	if carol.Holds(envelope.ComputeID(genuine.Marshal())) {
		t.Fatal("control: the genuine receipt was not evicted")
	}
	if n := secretsFiled(t, carol); n != len(batch) {
		t.Fatalf("%d secrets filed for the %d receipts evicted", n, len(batch))
	}
	delivered("after the receipts were evicted")
	reopened("evicted")
	delivered("after the receipts were evicted and a restart")
}

// BenchmarkIngestReceipts measures a relay taking receipts for envelopes
// it carries (the commonest arrival under epidemic routing, issue 12): each
// is checked against its target, purges it and is kept to carry on, in
// batches of 64 on a memory store, as in the simulator.
func BenchmarkIngestReceipts(b *testing.B) {
	clk := newTestClock()
	n, err := InitMemory("Relay", DefaultConfig, Options{Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	const batch = 64
	total := 0
	for b.Loop() {
		b.StopTimer()
		envs, receipts := make([][]byte, batch), make([][]byte, batch)
		for i := range envs {
			var secret [envelope.SecretSize]byte
			rand.Read(secret[:])
			s := envelope.Sealing{Expiry: uint32(clk.Now().Add(time.Hour).Unix()), Hops: 5, Commit: envelope.Commitment(secret)}
			rand.Read(s.Key[:])
			rand.Read(s.Tag[:])
			e, _ := envelope.Seal(s, []byte("a carried message"))
			envs[i] = e.Marshal()
			receipts[i] = envelope.NewReceipt(envelope.ComputeID(envs[i]), s.Expiry, secret, 5).Marshal()
		}
		if rep, err := n.Ingest(envs); err != nil || rep.New != batch {
			b.Fatalf("targets: %+v, %v", rep, err)
		}
		b.StartTimer()
		rep, err := n.Ingest(receipts)
		if err != nil || rep.Purged != batch || rep.Receipts != batch {
			b.Fatalf("receipts: %+v, %v", rep, err)
		}
		total += batch
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "receipts/s")
}

// TestKeptSecretsForgetExpired: the index of kept secrets holds what may
// still prove an arrival delivered, not every receipt of the node's life;
// an entry is one secret at one expiry.
func TestKeptSecretsForgetExpired(t *testing.T) {
	var k keptSecrets
	const life = 3600
	for now := uint32(1_000_000); now < 1_000_000+24*3600; now += 5 { // a receipt every 5 s, a day
		k.add(secretKeyOf([envelope.SecretSize]byte{byte(now), byte(now >> 8), byte(now >> 16)}, now+life), now)
	}
	if alive := life / 5; len(k.m) > 2*alive+1024 {
		t.Fatalf("%d entries kept, %d alive", len(k.m), alive)
	}
	secret := [envelope.SecretSize]byte{1, 2, 3}
	target := &envelope.Envelope{Commit: envelope.Commitment(secret), Expiry: 2_000_000}
	if !k.add(secretKeyOf(secret, target.Expiry), 1_100_000) || k.add(secretKeyOf(secret, target.Expiry), 1_100_000) {
		t.Fatal("adding a secret twice did not report new, then not new")
	}
	if !k.proves(target) {
		t.Fatal("a live secret was not kept")
	}
	redated := *target
	redated.Expiry++
	if k.proves(&redated) {
		t.Fatal("a secret kept with one expiry proved an envelope with another")
	}
	k.remove([]keptKey{secretKeyOf(secret, target.Expiry)})
	if k.proves(target) {
		t.Fatal("a removed secret still proves delivery")
	}
}
