package node

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// testClock is a settable time source shared by the nodes of a test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestClock() *testClock { return &testClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)} }

type testNode struct {
	*Node
	t    testing.TB
	home string
	clk  *testClock
}

func newTestNode(t testing.TB, name string, clk *testClock) *testNode {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	n, err := Init(home, []byte("pw-"+name), name, DefaultConfig, Options{Now: clk.Now, KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, t: t, home: home, clk: clk}
	t.Cleanup(func() { tn.Close() })
	return tn
}

// reopen closes and unlocks the home again, as a new process would.
func (tn *testNode) reopen() {
	tn.t.Helper()
	tn.Close()
	n, err := Open(tn.home, []byte("pw-"+tn.id.Name), Options{Now: tn.clk.Now})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.Node = n
}

func (tn *testNode) link() string {
	tn.t.Helper()
	s, err := tn.Self()
	if err != nil {
		tn.t.Fatal(err)
	}
	return s.Link
}

// carry moves every envelope from one node to another through a bundle file.
func carry(t testing.TB, from, to *testNode) ImportReport {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.gvb")
	if _, err := from.Export(path); err != nil {
		t.Fatal(err)
	}
	rep, err := to.Import(path)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func mustAdd(t testing.TB, n *testNode, link string) Contact {
	t.Helper()
	c, err := n.AddContact(link, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSend(t *testing.T, n *testNode, to, text string) Message {
	t.Helper()
	m, err := n.Send(to, text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func messages(t *testing.T, n *testNode) []Message {
	t.Helper()
	ms, err := n.Messages("")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func contactState(t testing.TB, n *testNode, name string) string {
	t.Helper()
	cs, err := n.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.State
		}
	}
	return "absent"
}

// befriend makes a and b active contacts through one round trip.
func befriend(t testing.TB, a, b *testNode) {
	t.Helper()
	mustAdd(t, a, b.link())
	carry(t, a, b)
	if _, err := b.Accept(a.id.Name); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)
	if s := contactState(t, a, b.id.Name); s != StateActive {
		t.Fatalf("after befriending, %s sees %s as %s", a.id.Name, b.id.Name, s)
	}
}

// friendsAndCarrier gives Alice and Bob, active contacts, and Carol, a
// stranger who carries their mail.
func friendsAndCarrier(t *testing.T) (*testClock, *testNode, *testNode, *testNode) {
	t.Helper()
	clk := newTestClock()
	alice, bob, carol := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk)
	befriend(t, alice, bob)
	return clk, alice, bob, carol
}

func envelopeOf(t *testing.T, n *testNode, id string) []byte {
	t.Helper()
	var out []byte
	n.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
		if envelope.ComputeID(raw).String() == id {
			out = append([]byte(nil), raw...)
		}
		return nil
	})
	if out == nil {
		t.Fatalf("%s holds no envelope %s", n.id.Name, id)
	}
	return out
}

// TestHundredCharacterTextSizes checks the wire sizes SPEC §5 promises: a
// 100-character text that opens a ratchet step (it carries the new key)
// fits 256 bytes, and one that carries no key 192.
func TestHundredCharacterTextSizes(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	befriend(t, alice, bob)
	text := strings.Repeat("x", 100)
	m := mustSend(t, alice, "Bob", text) // Bob's accept brought a new key: Alice steps
	if raw := envelopeOf(t, alice, m.ID); len(raw) > 256 {
		t.Fatalf("a 100-character text with a ratchet step takes %d bytes on the wire, limit 256", len(raw))
	} else {
		t.Logf("100-character text with a ratchet step: %d bytes", len(raw))
	}
	carry(t, alice, bob)
	carry(t, bob, alice) // the receipt: Bob holds Alice's new key
	m = mustSend(t, alice, "Bob", text)
	if raw := envelopeOf(t, alice, m.ID); len(raw) > 192 {
		t.Fatalf("a 100-character text takes %d bytes on the wire, limit 192", len(raw))
	} else {
		t.Logf("100-character text: %d bytes", len(raw))
	}
	carry(t, alice, bob)
	if ms := messages(t, bob); len(ms) != 2 || ms[1].Text != text {
		t.Fatalf("Bob got %+v", ms)
	}
}

func TestOneSidedRequestThenAccept(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	mustAdd(t, bob, alice.link())
	mustSend(t, bob, "Alice", "hi, it's Bob") // before Alice answers
	rep := carry(t, bob, alice)
	if rep.Requests != 1 || rep.Messages != 0 || rep.RequestMessages != 1 {
		t.Fatalf("want 1 request, got %+v", rep)
	}
	if s := contactState(t, alice, "Bob"); s != StateRequest {
		t.Fatalf("Alice sees Bob as %s, want request", s)
	}
	if ms := messages(t, alice); len(ms) != 0 {
		t.Fatalf("a request's messages reached the inbox: %+v", ms)
	}
	if _, err := alice.Send("Bob", "x"); err == nil {
		t.Fatal("could write to a request before accepting it")
	}
	if rep := carry(t, alice, bob); rep.Delivered != 0 {
		t.Fatalf("Bob learnt of delivery before Alice accepted: %+v", rep)
	}
	if rep := carry(t, bob, alice); rep.Messages+rep.RequestMessages+rep.Requests != 0 {
		t.Fatalf("a request re-imported was opened again: %+v", rep)
	}
	if _, err := alice.Accept("Bob"); err != nil {
		t.Fatal(err)
	}
	if ms := messages(t, alice); len(ms) != 1 || ms[0].Text != "hi, it's Bob" {
		t.Fatalf("after accepting, Alice has %+v", ms)
	}
	mustSend(t, alice, "Bob", "hello Bob")
	carry(t, alice, bob)
	if s := contactState(t, bob, "Alice"); s != StateActive {
		t.Fatalf("Bob sees Alice as %s after she accepted", s)
	}
	ms := messages(t, bob)
	if len(ms) != 2 || ms[1].Text != "hello Bob" || ms[1].Direction != "in" || ms[0].Status != StatusDelivered {
		t.Fatalf("Bob has %+v", ms)
	}
	mustSend(t, bob, "Alice", "again")
	carry(t, bob, alice)
	if ms := messages(t, alice); ms[len(ms)-1].Text != "again" {
		t.Fatalf("Alice has %+v", ms)
	}
}

func TestSimultaneousAdd(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	mustAdd(t, alice, bob.link())
	mustAdd(t, bob, alice.link())
	mustSend(t, alice, "Bob", "from alice 1")
	mustSend(t, bob, "Alice", "from bob 1")
	// Both bundles are written before either side saw anything.
	pa, pb := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if _, err := alice.Export(pa); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Export(pb); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Import(pa); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Import(pb); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{alice, bob} {
		other := map[string]string{"Alice": "Bob", "Bob": "Alice"}[n.id.Name]
		if s := contactState(t, n, other); s != StateActive {
			t.Fatalf("%s sees %s as %s", n.id.Name, other, s)
		}
		prekeys := 0
		n.st.View(func(tx *store.Tx) error {
			return tx.ForEach(colPrekeys, func([]byte, time.Time) error { prekeys++; return nil })
		})
		if prekeys != 0 {
			t.Fatalf("%s still keeps the prekey the other's request used", n.id.Name)
		}
	}
	for round := 2; round <= 3; round++ {
		mustSend(t, alice, "Bob", "from alice")
		mustSend(t, bob, "Alice", "from bob")
		carry(t, alice, bob)
		carry(t, bob, alice)
	}
	for _, n := range []*testNode{alice, bob} {
		in := 0
		for _, m := range messages(t, n) {
			if m.Direction == "in" {
				in++
			}
		}
		if in != 3 {
			t.Fatalf("%s received %d messages, want 3: %+v", n.id.Name, in, messages(t, n))
		}
	}
}

func TestCarrierRelaysAndReceiptPurges(t *testing.T) {
	_, alice, bob, carol := friendsAndCarrier(t)
	m := mustSend(t, alice, "Bob", "through Carol")
	carry(t, alice, carol)
	envelopeOf(t, carol, m.ID) // Carol carries it
	carry(t, carol, bob)
	if ms := messages(t, bob); ms[len(ms)-1].Text != "through Carol" {
		t.Fatalf("Bob has %+v", ms)
	}
	rep := carry(t, bob, carol)
	if rep.Purged == 0 {
		t.Fatalf("Bob's receipt purged nothing at Carol: %+v", rep)
	}
	for _, e := range mustEnvelopes(t, carol) {
		if e.ID == m.ID {
			t.Fatal("Carol still holds the delivered envelope")
		}
	}
	carry(t, carol, alice)
	if ms := messages(t, alice); ms[len(ms)-1].Status != StatusDelivered {
		t.Fatalf("Alice's message is %s after the receipt came back", ms[len(ms)-1].Status)
	}
	// The purged envelope does not come back either.
	rep = carry(t, alice, carol)
	for _, e := range mustEnvelopes(t, carol) {
		if e.ID == m.ID {
			t.Fatalf("the delivered envelope came back to Carol: %+v", rep)
		}
	}
}

func mustEnvelopes(t *testing.T, n *testNode) []EnvelopeInfo {
	t.Helper()
	es, err := n.Envelopes()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestForgedReceiptPurgesNothing(t *testing.T) {
	clk, alice, _, carol := friendsAndCarrier(t)
	m := mustSend(t, alice, "Bob", "do not drop me")
	carry(t, alice, carol)
	raw := envelopeOf(t, carol, m.ID)
	e, _ := envelope.Parse(raw)
	id, _ := envelope.ParseID(m.ID)
	var secret [16]byte
	rand.Read(secret[:])
	forged := envelope.NewReceipt(id, e.Expiry, secret, 5).Marshal()
	for _, n := range []*testNode{carol, alice} {
		rep, err := n.Ingest([][]byte{forged})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Forged != 1 || rep.Purged != 0 || rep.Delivered != 0 {
			t.Fatalf("%s: forged receipt gave %+v", n.id.Name, rep)
		}
	}
	envelopeOf(t, carol, m.ID)
	envelopeOf(t, alice, m.ID)
	if ms := messages(t, alice); ms[len(ms)-1].Status != StatusQueued {
		t.Fatalf("a forged receipt marked the message %s", ms[len(ms)-1].Status)
	}
	// A forged receipt that arrives before its target does not block it either.
	dave := newTestNode(t, "Dave", clk)
	if _, err := dave.Ingest([][]byte{forged}); err != nil {
		t.Fatal(err)
	}
	if rep, _ := dave.Ingest([][]byte{raw}); rep.New != 1 {
		t.Fatalf("the target was refused after a forged receipt: %+v", rep)
	}
}

func TestForwardSecrecyAfterRetention(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	befriend(t, alice, bob)
	m := mustSend(t, alice, "Bob", "read me only this week")
	captured := envelopeOf(t, alice, m.ID) // an observer keeps a copy
	if !canOpenWithStoredKeys(t, bob, captured) {
		t.Fatal("control: Bob's stored keys cannot open the envelope even now")
	}
	// The envelope never reaches Bob in time. After the retention window his
	// device is seized with its passphrase: the keys that sealed it are gone.
	clk.Advance(DefaultConfig.Retention + 2*keys.PeriodLength)
	bob.reopen()
	if canOpenWithStoredKeys(t, bob, captured) {
		t.Fatal("a seized device opened an envelope older than the retention window")
	}
}

// canOpenWithStoredKeys tries everything the node's store holds, ignoring
// expiry: every session (and proposal), every tag it can still derive from
// long ago to tomorrow.
func canOpenWithStoredKeys(t *testing.T, n *testNode, raw []byte) bool {
	e, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	err = n.st.View(func(tx *store.Tx) error {
		cs, err := allContacts(tx)
		for _, c := range cs {
			sessions := c.Sessions
			if c.Proposal != nil {
				sessions = append(sessions, c.Proposal)
			}
			for _, ps := range sessions {
				for _, sl := range ps.S.Expected() {
					if sl.Tag != e.Tag {
						continue
					}
					if _, _, err := ps.S.Open(e, sl, keys.PeriodOf(n.now())); err == nil {
						found = true
					}
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestDuplicateIngestChangesNothing(t *testing.T) {
	_, alice, bob, carol := friendsAndCarrier(t)
	mustSend(t, alice, "Bob", "once")
	path := filepath.Join(t.TempDir(), "a.gvb")
	if _, err := alice.Export(path); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{carol, bob} {
		if _, err := n.Import(path); err != nil {
			t.Fatal(err)
		}
		before, msgsBefore := mustEnvelopes(t, n), messages(t, n)
		rep, err := n.Import(path)
		if err != nil {
			t.Fatal(err)
		}
		if rep.New != 0 || rep.Messages != 0 || rep.Duplicate+rep.AlreadyDelivered != rep.Received {
			t.Fatalf("%s: second import of the same bundle did %+v", n.id.Name, rep)
		}
		if after := mustEnvelopes(t, n); !equalJSON(before, after) {
			t.Fatalf("%s: envelopes changed: %v -> %v", n.id.Name, before, after)
		}
		if after := messages(t, n); !equalJSON(msgsBefore, after) {
			t.Fatalf("%s: messages changed", n.id.Name)
		}
	}
}

func equalJSON(a, b any) bool {
	var x, y bytes.Buffer
	return json.NewEncoder(&x).Encode(a) == nil && json.NewEncoder(&y).Encode(b) == nil && bytes.Equal(x.Bytes(), y.Bytes())
}

func TestMessagesBeforeTheirRequestAreOpenedLater(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	mustAdd(t, alice, bob.link())
	mustSend(t, alice, "Bob", "one")
	mustSend(t, alice, "Bob", "two")
	var request [][]byte
	var rest [][]byte
	alice.eachEnvelope(func(_ byte, raw []byte, e *envelope.Envelope) error {
		cp := append([]byte(nil), raw...)
		if len(e.Body) >= envelope.IntroPrefixSize+envelope.Overhead && request == nil && isRequest(t, bob, e) {
			request = append(request, cp)
		} else {
			rest = append(rest, cp)
		}
		return nil
	})
	if len(request) != 1 || len(rest) != 2 {
		t.Fatalf("want 1 request and 2 messages, got %d and %d", len(request), len(rest))
	}
	rep, _ := bob.Ingest(rest)
	if rep.New != 2 || rep.Messages != 0 {
		t.Fatalf("messages before their request: %+v", rep)
	}
	rep, _ = bob.Ingest(request)
	if rep.Requests != 1 || rep.RequestMessages != 2 || rep.New != 0 {
		t.Fatalf("the request should open the messages already held: %+v", rep)
	}
	// No receipt before accepting; the three envelopes are carried as a
	// relay carries them (SPEC §6).
	if es := mustEnvelopes(t, bob); len(es) != 3 || es[0].Own || es[1].Own || es[2].Own || es[0].Kind != "sealed" {
		t.Fatalf("Bob holds %+v", es)
	}
	if _, err := bob.Accept("Alice"); err != nil {
		t.Fatal(err)
	}
	if err := bob.ReleaseReceipts(true); err != nil {
		t.Fatal(err)
	}
	if es := mustEnvelopes(t, bob); len(es) != 4 { // three receipts and the accept; the envelopes purged
		t.Fatalf("after accepting, Bob holds %+v", es)
	}
	// All in one batch, request last: opened by the rescan, nothing counted as carried.
	carol := newTestNode(t, "Carol", clk)
	mustAdd(t, alice, carol.link())
	var batch [][]byte
	alice.eachEnvelope(func(_ byte, raw []byte, e *envelope.Envelope) error {
		if ref, ok := carol.idx.lookup(e.Tag); !ok || ref.kind != slotIntro {
			batch = append(batch, append([]byte(nil), raw...))
		}
		return nil
	})
	alice.eachEnvelope(func(_ byte, raw []byte, e *envelope.Envelope) error {
		if ref, ok := carol.idx.lookup(e.Tag); ok && ref.kind == slotIntro {
			batch = append(batch, append([]byte(nil), raw...))
		}
		return nil
	})
	rep, _ = carol.Ingest(batch)
	if rep.Requests != 1 || rep.New != len(batch)-1 || rep.Messages != 0 {
		t.Fatalf("one batch with the request last: %+v", rep)
	}
}

func isRequest(t *testing.T, n *testNode, e *envelope.Envelope) bool {
	ref, ok := n.idx.lookup(e.Tag)
	return ok && ref.kind == slotIntro
}

func TestReusedPrekeyGivesDistinctSessions(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk)
	link := alice.link()
	mustAdd(t, bob, link)
	mustAdd(t, carol, link) // the same invite, so the same one-time prekey
	mustSend(t, bob, "Alice", "from bob")
	mustSend(t, carol, "Alice", "from carol")
	carry(t, bob, alice)
	carry(t, carol, alice)
	for _, who := range []string{"Bob", "Carol"} {
		if _, err := alice.Accept(who); err != nil {
			t.Fatal(err)
		}
	}
	if ms := messages(t, alice); len(ms) != 2 {
		t.Fatalf("Alice has %+v", ms)
	}
	var b, c contactRecord
	alice.st.View(func(tx *store.Tx) error {
		getJSON(tx, colContacts, []byte(bob.Identity().Fingerprint()), &b)
		getJSON(tx, colContacts, []byte(carol.Identity().Fingerprint()), &c)
		return nil
	})
	if b.Sessions[0].S.RK == c.Sessions[0].S.RK || b.Sessions[0].S.ID == c.Sessions[0].S.ID {
		t.Fatal("two users of one prekey share session keys")
	}
	if alice.link() == link {
		t.Fatal("the invite still shows a used prekey")
	}
}

func TestRejectIgnoresThatIdentity(t *testing.T) {
	clk := newTestClock()
	alice, mallory := newTestNode(t, "Alice", clk), newTestNode(t, "Mallory", clk)
	mustAdd(t, mallory, alice.link())
	mustSend(t, mallory, "Alice", "buy now")
	carry(t, mallory, alice)
	if err := alice.Reject("Mallory"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, mallory, "Alice", "buy again")
	carry(t, mallory, alice)
	if s := contactState(t, alice, "Mallory"); s != "absent" {
		t.Fatalf("Mallory is %s after reject", s)
	}
	// Nothing tells Mallory her messages reached Alice's device.
	carry(t, alice, mallory)
	for _, m := range messages(t, mallory) {
		if m.Status != StatusQueued {
			t.Fatalf("a rejected sender sees %q for %q", m.Status, m.Text)
		}
	}
	if ms := messages(t, alice); len(ms) != 0 {
		t.Fatalf("Alice has %+v", ms)
	}
}

func TestWrongPassphraseChangesNothing(t *testing.T) {
	clk := newTestClock()
	alice := newTestNode(t, "Alice", clk)
	alice.Close()
	var before [][]byte
	for _, name := range []string{store.FileName, store.KeyFileName} {
		b, _ := os.ReadFile(filepath.Join(alice.home, name))
		before = append(before, b)
	}
	_, err := Open(alice.home, []byte("wrong"), Options{Now: clk.Now})
	if !errors.Is(err, store.ErrWrongPassphrase) {
		t.Fatalf("want ErrWrongPassphrase, got %v", err)
	}
	for i, name := range []string{store.FileName, store.KeyFileName} {
		if after, _ := os.ReadFile(filepath.Join(alice.home, name)); len(after) == 0 || !bytes.Equal(before[i], after) {
			t.Fatalf("a wrong passphrase changed %s", name)
		}
	}
	alice.reopen()
}

func TestCorruptBundleKeepsWhatWasStored(t *testing.T) {
	_, alice, bob, carol := friendsAndCarrier(t)
	for i := range 5 {
		mustSend(t, alice, "Bob", strings.Repeat("m", i+1))
	}
	path := filepath.Join(t.TempDir(), "a.gvb")
	if _, err := alice.Export(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	carry(t, bob, carol) // Carol already holds Bob's receipts
	held := len(mustEnvelopes(t, carol))
	bad := append([]byte(nil), good[:len(good)-30]...) // truncated in the last record
	bad[40] ^= 0xff                                    // and damaged in the first
	os.WriteFile(path, bad, 0o600)
	rep, err := carol.Import(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete || rep.Damaged < 2 || rep.New == 0 {
		t.Fatalf("damaged import: %+v", rep)
	}
	if got := len(mustEnvelopes(t, carol)); got != held+rep.New {
		t.Fatalf("Carol holds %d, want %d", got, held+rep.New)
	}
	os.WriteFile(path, []byte("this is not a bundle\n"), 0o600)
	if _, err := carol.Import(path); err == nil || !strings.Contains(err.Error(), "not a grapevine bundle") {
		t.Fatalf("want a not-a-bundle error, got %v", err)
	}
	if got := len(mustEnvelopes(t, carol)); got != held+rep.New {
		t.Fatal("a refused import changed what Carol holds")
	}
}

func TestExpiredItemsGoAway(t *testing.T) {
	clk, alice, _, carol := friendsAndCarrier(t)
	mustSend(t, alice, "Bob", "soon gone")
	carry(t, alice, carol)
	if len(mustEnvelopes(t, carol)) == 0 {
		t.Fatal("Carol carries nothing")
	}
	clk.Advance(DefaultConfig.Retention + time.Hour)
	carol.reopen()
	if es := mustEnvelopes(t, carol); len(es) != 0 {
		t.Fatalf("expired envelopes are still held: %+v", es)
	}
	rep := carry(t, alice, carol)
	if rep.Received != 0 {
		t.Fatalf("expired envelopes were exported: %+v", rep)
	}
}

func TestParseRouting(t *testing.T) {
	for in, want := range map[string]uint8{"epidemic": 0, "spray:1": 1, "spray:16": 16, "spray:127": 127} {
		if got, err := ParseRouting(in); err != nil || got != want {
			t.Errorf("ParseRouting(%q) = %d, %v", in, got, err)
		}
		if FormatRouting(want) != in {
			t.Errorf("FormatRouting(%d) = %q, want %q", want, FormatRouting(want), in)
		}
	}
	for _, in := range []string{"", "spray", "spray:0", "spray:128", "flood", "spray:x"} {
		if _, err := ParseRouting(in); err == nil {
			t.Errorf("ParseRouting(%q) accepted", in)
		}
	}
}

// TestAnswersToANewEpochAreRecognised: a send that opens a new epoch names
// the tags of the peer's next one; the index must expect them at once, or
// the answer is carried past its recipient as someone else's mail until
// something else refreshes the index.
func TestAnswersToANewEpochAreRecognised(t *testing.T) {
	_, alice, bob, _ := friendsAndCarrier(t)
	for i := range 4 {
		mustSend(t, alice, "Bob", "ping")
		carry(t, alice, bob)
		mustSend(t, bob, "Alice", "pong")
		carry(t, bob, alice)
		if got := len(messages(t, alice)); got != 2*(i+1) {
			t.Fatalf("round %d: Alice has %d messages, want %d", i, got, 2*(i+1))
		}
	}
}
