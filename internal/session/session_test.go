package session

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

var epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func newNode(t testing.TB, name string) *node.Node {
	t.Helper()
	return newNodeWith(t, name, node.DefaultConfig)
}

func newNodeWith(t testing.TB, name string, cfg node.Config) *node.Node {
	t.Helper()
	cfg.ReceiptDelay = 0 // these tests are about the link: receipts leave at once
	n, err := node.Init(filepath.Join(t.TempDir(), name), []byte("pw"), name, cfg,
		node.Options{KDF: store.TestKDF(), Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// stranger makes envelopes for nobody in the test, as a relay sees them.
func stranger(t testing.TB, n int, hops uint8) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		s := envelope.Sealing{Expiry: uint32(epoch.Add(time.Duration(1+i%48) * time.Hour).Unix()), Hops: hops}
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

func ingest(t testing.TB, n *node.Node, raws [][]byte) {
	t.Helper()
	if _, err := n.Ingest(raws); err != nil {
		t.Fatal(err)
	}
}

// pump moves frames between two sessions until neither has anything left
// to say, as a link would, and returns the frames and bytes exchanged.
func pump(t testing.TB, a, b *Session) (frames, bytes int) {
	return pumpRecord(t, a, b, nil)
}

// pumpRecord is pump that tells rec every frame, with the side that sent it.
func pumpRecord(t testing.TB, a, b *Session, rec func(from string, f Frame)) (frames, bytes int) {
	t.Helper()
	toB, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	var toA []Frame
	deliver := func(s *Session, in []Frame) []Frame {
		var out []Frame
		for _, f := range in {
			if rec != nil {
				from := "initiator"
				if s == a {
					from = "responder"
				}
				rec(from, f)
			}
			frames++
			bytes += 1 + len(f.Payload)
			reply, _, err := s.Handle(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, reply...)
		}
		if _, err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	drain := func(s *Session) []Frame {
		var out []Frame
		for {
			frames, _, err := s.Next(64)
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) == 0 {
				return out
			}
			out = append(out, frames...)
		}
	}
	for len(toA) > 0 || len(toB) > 0 || a.Queued() > 0 || b.Queued() > 0 {
		toB = append(toB, drain(a)...)
		toA = append(toA, drain(b)...)
		nextA := deliver(b, toB)
		nextB := deliver(a, toA)
		toA, toB = nextA, nextB
	}
	return frames, bytes
}

func ids(n *node.Node) []envelope.ID {
	var out []envelope.ID
	for _, h := range n.Inventory() {
		out = append(out, h.ID)
	}
	slices.SortFunc(out, func(x, y envelope.ID) int { return slices.Compare(x[:], y[:]) })
	return out
}

func TestSyncConverges(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	common := stranger(t, 300, 5)
	ingest(t, a, common)
	ingest(t, b, common)
	ingest(t, a, stranger(t, 40, 5))
	ingest(t, b, stranger(t, 25, 5))
	sa := New(a, Config{Initiator: true, Source: "b"})
	sb := New(b, Config{Source: "a"})
	pump(t, sa, sb)
	if got, want := len(ids(a)), 365; got != want {
		t.Fatalf("A holds %d envelopes, want %d", got, want)
	}
	if !slices.Equal(ids(a), ids(b)) {
		t.Fatal("A and B hold different sets after sync")
	}
	if !sa.Stats().Synced || !sb.Stats().Synced {
		t.Fatal("a finished round is not reported as synced on both sides")
	}
	if sa.Stats().EnvelopesSent != 40 || sb.Stats().EnvelopesSent != 25 {
		t.Fatalf("sent %d and %d envelopes, want exactly the differences 40 and 25", sa.Stats().EnvelopesSent, sb.Stats().EnvelopesSent)
	}
	// A second round finds nothing to send.
	frames, _ := pump(t, sa, sb)
	if sa.Stats().EnvelopesSent != 40 || frames > 4 {
		t.Fatalf("second round exchanged %d frames and resent envelopes", frames)
	}
}

func TestHopsDecrementAndStop(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	ingest(t, a, stranger(t, 5, 1))
	ingest(t, a, stranger(t, 7, 0))
	sa, sb := New(a, Config{Initiator: true}), New(b, Config{})
	pump(t, sa, sb)
	inv := b.Inventory()
	if len(inv) != 5 {
		t.Fatalf("B holds %d envelopes; only the 5 with a hop left may travel", len(inv))
	}
	for _, h := range inv {
		if h.Hops != 0 {
			t.Fatalf("forwarded copy has %d hops, want 0", h.Hops)
		}
	}
	// B cannot pass them on, and does not get the 0-hop ones pushed again.
	c := newNode(t, "C")
	pump(t, New(b, Config{Initiator: true}), New(c, Config{}))
	if n := len(c.Inventory()); n != 0 {
		t.Fatalf("C got %d envelopes with no hops left", n)
	}
}

func TestReceiptsGoFirst(t *testing.T) {
	a := newNode(t, "A")
	ingest(t, a, stranger(t, 20, 5))
	var target envelope.ID
	rand.Read(target[:])
	var secret [envelope.SecretSize]byte
	r := envelope.NewReceipt(target, uint32(epoch.Add(99*time.Hour).Unix()), secret, 5)
	ingest(t, a, [][]byte{r.Marshal()})
	s := New(a, Config{})
	var all []envelope.ID
	for _, h := range a.Inventory() {
		all = append(all, h.ID)
	}
	s.enqueue(all, queueBacklog) // live pushes of relayed envelopes are announced (TestHave)
	frames, _, err := s.Next(3)
	if err != nil || len(frames) != 3 {
		t.Fatalf("Next: %d, %v", len(frames), err)
	}
	if e, _ := envelope.Parse(frames[0].Payload); e.Kind != envelope.KindReceipt {
		t.Fatal("the receipt did not go first")
	}
	e1, _ := envelope.Parse(frames[1].Payload)
	e2, _ := envelope.Parse(frames[2].Payload)
	if e1.Expiry > e2.Expiry {
		t.Fatal("later expiry sent before sooner")
	}
}

func TestLivePushSkipsTheSource(t *testing.T) {
	a := newNode(t, "A")
	s := New(a, Config{})
	env := stranger(t, 1, 5)[0]
	if _, _, err := s.Handle(Frame{TypeEnvelope, env}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Offer([]envelope.ID{envelope.ComputeID(env)})
	if s.Queued() != 0 {
		t.Fatal("an envelope would go back to the peer it came from")
	}
}

func TestProtocolViolations(t *testing.T) {
	a := newNode(t, "A")
	for _, tc := range []struct {
		name string
		cfg  Config
		f    Frame
	}{
		{"unknown type", Config{}, Frame{Type: 99}},
		{"oversized want", Config{}, Frame{TypeWant, make([]byte, (MaxWant+1)*32)}},
		{"ragged want", Config{}, Frame{TypeWant, make([]byte, 33)}},
		{"empty want", Config{}, Frame{TypeWant, nil}},
		{"garbage envelope", Config{}, Frame{TypeEnvelope, []byte("not an envelope at all, not even close")}},
		{"neg before open", Config{}, Frame{TypeNeg, []byte{0x61}}},
		{"open to the initiator", Config{Initiator: true}, Frame{TypeNegOpen, []byte{0x61}}},
		{"garbage negentropy", Config{}, Frame{TypeNegOpen, []byte{0x61, 0xff, 0xff}}},
		{"ping with payload", Config{}, Frame{TypePing, []byte{1}}},
		{"short hello", Config{}, Frame{TypeHello, make([]byte, 16)}},
		{"ragged hello", Config{}, Frame{TypeHello, make([]byte, node.LinkHelloSize+1)}},
		{"oversized hello", Config{}, Frame{TypeHello, make([]byte, 513*16)}},
		{"spray without copies", Config{}, Frame{TypeSpray, nil}},
		{"spray of 0 copies", Config{}, Frame{TypeSpray, append([]byte{0}, stranger(t, 1, 5)[0]...)}},
		{"spray of 128 copies", Config{}, Frame{TypeSpray, append([]byte{128}, stranger(t, 1, 5)[0]...)}},
		{"garbage spray", Config{}, Frame{TypeSpray, []byte{2, 1, 2, 3}}},
		{"empty offer", Config{}, Frame{TypeOffer, nil}},
		{"ragged offer", Config{}, Frame{TypeOffer, make([]byte, 47)}},
		{"oversized offer", Config{}, Frame{TypeOffer, make([]byte, (MaxOffer+1)*48)}},
		{"empty receipt offer", Config{}, Frame{TypeReceiptOffer, nil}},
		{"ragged receipt offer", Config{}, Frame{TypeReceiptOffer, make([]byte, 96)}},
		{"oversized receipt offer", Config{}, Frame{TypeReceiptOffer, make([]byte, (MaxReceiptOffer+1)*64)}},
		{"empty have", Config{}, Frame{TypeHave, nil}},
		{"ragged have", Config{}, Frame{TypeHave, make([]byte, 32)}},
		{"oversized have", Config{}, Frame{TypeHave, make([]byte, (MaxHave+1)*33)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := New(a, tc.cfg).Handle(tc.f)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want a protocol violation", err)
			}
		})
	}
}

// befriend makes a and b contacts, handing their envelopes over directly.
func befriend(t *testing.T, a, b *node.Node, aName, bName string) {
	t.Helper()
	inv, err := b.Invite()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddContact(inv.Link(), bName); err != nil {
		t.Fatal(err)
	}
	hand := func(from, to *node.Node) {
		var ids []envelope.ID
		for _, h := range from.Inventory() {
			ids = append(ids, h.ID)
		}
		outs, err := from.Forward(ids, func(envelope.ID) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		var raws [][]byte
		for _, o := range outs {
			raws = append(raws, o.Raw)
		}
		ingest(t, to, raws)
	}
	hand(a, b)
	if _, err := b.Accept(aName); err != nil {
		t.Fatal(err)
	}
	hand(b, a)
	hand(a, b)
}

func copiesAt(t *testing.T, n *node.Node, id envelope.ID) (uint8, bool) {
	t.Helper()
	h := n.Describe([]envelope.ID{id})
	if len(h) == 0 {
		return 0, false
	}
	return h[0].Copies, true
}

// Binary spray-and-wait with 4 copies: A hands 2 to C, C hands 1 to D;
// D, down to its last copy, only offers it: E (a stranger) declines and
// gets nothing, B (the recipient) claims it and reads the message.
func TestSprayAndWait(t *testing.T) {
	cfg := node.DefaultConfig
	cfg.Copies = 4
	a := newNodeWith(t, "A", cfg)
	b, c, d, e := newNode(t, "B"), newNode(t, "C"), newNode(t, "D"), newNode(t, "E")
	befriend(t, a, b, "A", "B")
	m, err := a.Send("B", "sprayed")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := envelope.ParseID(m.ID)
	if got, _ := copiesAt(t, a, id); got != 4 {
		t.Fatalf("A starts with %d copies, want 4", got)
	}
	pump(t, New(a, Config{Initiator: true}), New(c, Config{}))
	ca, _ := copiesAt(t, a, id)
	cc, _ := copiesAt(t, c, id)
	if ca != 2 || cc != 2 {
		t.Fatalf("after A meets C: A has %d copies and C %d, want 2 and 2", ca, cc)
	}
	pump(t, New(c, Config{Initiator: true}), New(d, Config{}))
	cc, _ = copiesAt(t, c, id)
	cd, _ := copiesAt(t, d, id)
	if cc != 1 || cd != 1 {
		t.Fatalf("after C meets D: C has %d copies and D %d, want 1 and 1", cc, cd)
	}
	// E, a stranger, dials D and reconciles twice on the same link: the
	// second round's Want is not a claim.
	se, sd := New(e, Config{Initiator: true}), New(d, Config{})
	pump(t, se, sd)
	pump(t, se, sd)
	if _, held := copiesAt(t, e, id); held {
		t.Fatal("a last copy went to a neighbour that is not its recipient")
	}
	if sd.Stats().OffersSent == 0 {
		t.Fatal("D did not offer its last copy")
	}
	pump(t, New(b, Config{Initiator: true}), New(d, Config{}))
	msgs, err := b.Messages("A")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Text != "sprayed" {
		t.Fatalf("B has %v, want the sprayed message", msgs)
	}
}

// A link that breaks while a Spray is in the air loses no copies: the
// sender takes back what the peer never acknowledged. Once acknowledged,
// the copies are the peer's, and closing the link gives nothing back.
func TestSprayCopiesSurviveABrokenLink(t *testing.T) {
	cfg := node.DefaultConfig
	cfg.Copies = 8
	a := newNodeWith(t, "A", cfg)
	b, c := newNode(t, "B"), newNode(t, "C")
	befriend(t, a, b, "A", "B")
	m, err := a.Send("B", "sprayed")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := envelope.ParseID(m.ID)

	// The writer's budget varies a little (so that it does not name the
	// writer, SPEC §12.7): whatever it is, none may be lost.
	start, _ := copiesAt(t, a, id)
	if start < 4 {
		t.Fatalf("A starts with %d copies", start)
	}
	give, keep := start/2, start-start/2
	// A offers and sends its Spray, which the link loses.
	sa := New(a, Config{Initiator: true})
	sa.Offer([]envelope.ID{id})
	frames, _, err := sa.Next(64)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 1 || frames[0].Type != TypeSpray || frames[0].Payload[0] != give {
		t.Fatalf("A sent %v, want one Spray with %d copies", frames, give)
	}
	if got, _ := copiesAt(t, a, id); got != keep {
		t.Fatalf("A keeps %d copies while the Spray is in the air, want %d", got, keep)
	}
	if err := sa.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := copiesAt(t, a, id); got != start {
		t.Fatalf("after the link broke A has %d copies, want all %d back", got, start)
	}
	if got := sa.Stats().CopiesReturned; got != int(give) {
		t.Fatalf("the session counts %d copies returned, want %d", got, give)
	}

	// Over a link that works, C stores its half and acknowledges it.
	sa, sc := New(a, Config{Initiator: true}), New(c, Config{})
	var acks int
	pumpRecord(t, sa, sc, func(from string, f Frame) {
		if f.Type == TypeSprayAck {
			acks++
			if from != "responder" || len(f.Payload) == 0 || len(f.Payload)%sprayAckSize != 0 {
				t.Errorf("ack from the %s with %d bytes", from, len(f.Payload))
			}
		}
	})
	if acks == 0 {
		t.Fatal("C acknowledged nothing")
	}
	for _, s := range []*Session{sa, sc} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ca, _ := copiesAt(t, a, id)
	cc, _ := copiesAt(t, c, id)
	if ca != keep || cc != give {
		t.Fatalf("after an acknowledged spray and a closed link A has %d copies and C %d, want %d and %d", ca, cc, keep, give)
	}
}

// A SprayAck of a length that is not a whole number of prefixes is a
// protocol violation; one naming nothing awaited is ignored.
func TestSprayAckFraming(t *testing.T) {
	s := New(newNode(t, "A"), Config{})
	if _, _, err := s.Handle(Frame{TypeSprayAck, make([]byte, 7)}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("7-byte ack: %v, want a protocol violation", err)
	}
	if _, _, err := s.Handle(Frame{TypeSprayAck, nil}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("empty ack: %v, want a protocol violation", err)
	}
	if _, _, err := s.Handle(Frame{TypeSprayAck, make([]byte, sprayAckSize*(MaxSprayAck+1))}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized ack: %v, want a protocol violation", err)
	}
	if _, _, err := s.Handle(Frame{TypeSprayAck, make([]byte, 16)}); err != nil {
		t.Fatalf("ack of nothing awaited: %v", err)
	}
}

// Under spray-and-wait a receipt follows the copies: B, the recipient,
// writes its receipt with one copy and so only offers it. E, which never
// held the message, declines; C, which carries a copy, claims it and drops
// its copy; A, the writer, claims it from C and learns the message arrived.
func TestSprayedReceiptFollowsTheCopies(t *testing.T) {
	cfg := node.DefaultConfig
	cfg.Copies = 4
	a := newNodeWith(t, "A", cfg)
	cfg.Copies = 1
	b := newNodeWith(t, "B", cfg)
	c, e := newNode(t, "C"), newNode(t, "E")
	befriend(t, a, b, "A", "B")
	m, err := a.Send("B", "sprayed")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := envelope.ParseID(m.ID)
	pump(t, New(a, Config{Initiator: true}), New(c, Config{})) // C: 2 copies
	before := ids(b)
	pump(t, New(c, Config{Initiator: true}), New(b, Config{})) // B: 1 copy, opened
	// The receipt B wrote just now:
	var receipt envelope.ID
	for _, h := range b.Inventory() {
		if h.Receipt && h.Own && !slices.Contains(before, h.ID) {
			receipt = h.ID
		}
	}
	if got, held := copiesAt(t, b, receipt); !held || got != 1 {
		t.Fatalf("B holds its receipt: %v, with %d copies; want 1", held, got)
	}
	sb := New(b, Config{Initiator: true})
	pump(t, sb, New(e, Config{}))
	if _, held := copiesAt(t, e, receipt); held {
		t.Fatal("a receipt went to a neighbour that never held its message")
	}
	if sb.Stats().OffersSent == 0 {
		t.Fatal("B did not offer its receipt")
	}
	pump(t, New(b, Config{Initiator: true}), New(c, Config{}))
	if _, held := copiesAt(t, c, receipt); !held {
		t.Fatal("C, holding a copy, did not claim the receipt")
	}
	if _, held := copiesAt(t, c, id); held {
		t.Fatal("C kept its copy after the receipt")
	}
	pump(t, New(c, Config{Initiator: true}), New(a, Config{}))
	msgs, err := a.Messages("B")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Status != node.StatusDelivered {
		t.Fatalf("A's message: %+v, want delivered", msgs)
	}
}

func FuzzHandle(f *testing.F) {
	a := newNode(f, "A")
	ingest(f, a, stranger(f, 50, 5))
	f.Add(byte(TypeNegOpen), []byte{0x61, 0x00, 0x00})
	f.Add(byte(TypeWant), make([]byte, 64))
	f.Add(byte(TypeEnvelope), stranger(f, 1, 5)[0])
	f.Add(byte(TypeSpray), append([]byte{3}, stranger(f, 1, 5)[0]...))
	f.Add(byte(TypeOffer), make([]byte, 96))
	f.Add(byte(TypeReceiptOffer), make([]byte, 128))
	f.Add(byte(TypePing), []byte{})
	f.Add(byte(TypeHave), make([]byte, 2*haveSize))
	f.Add(byte(TypeHave), append(make([]byte, envelope.IDSize), 4))
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		for _, cfg := range []Config{{}, {Initiator: true}} {
			s := New(a, cfg)
			if _, err := s.Open(); err != nil {
				t.Fatal(err)
			}
			out, _, err := s.Handle(Frame{FrameType(typ), payload})
			if err != nil && !errors.Is(err, ErrProtocol) {
				t.Fatalf("a peer's frame caused a non-protocol error: %v", err)
			}
			for _, o := range out {
				if len(o.Payload) > MaxPayload(o.Type) {
					t.Fatalf("reply of type %d is %d bytes, over its limit", o.Type, len(o.Payload))
				}
			}
		}
	})
}

// carry moves everything one node holds to another through a bundle file.
func carry(t *testing.T, from, to *node.Node) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.gvb")
	if _, err := from.Export(path); err != nil {
		t.Fatal(err)
	}
	if _, err := to.Import(path); err != nil {
		t.Fatal(err)
	}
}

func TestHelloRecognisesContactsOnly(t *testing.T) {
	a, b, c := newNode(t, "Ann"), newNode(t, "Ben"), newNode(t, "Cat")
	self, _ := b.Self()
	if _, err := a.AddContact(self.Link, ""); err != nil {
		t.Fatal(err)
	}
	carry(t, a, b)
	if _, err := b.Accept("Ann"); err != nil {
		t.Fatal(err)
	}
	carry(t, b, a)
	binding := make([]byte, 32)
	rand.Read(binding)
	link := func(x, y *node.Node) (*Session, *Session) {
		sx := New(x, Config{Initiator: true, Binding: binding})
		sy := New(y, Config{Binding: binding})
		for _, pair := range [][2]*Session{{sx, sy}, {sy, sx}} {
			hello, err := pair[0].Hello()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := pair[1].Handle(hello[0]); err != nil {
				t.Fatal(err)
			}
		}
		return sx, sy
	}
	sa, sb := link(a, b)
	if sa.Stats().Contact != "Ben" || sb.Stats().Contact != "Ann" {
		t.Fatalf("contacts linked as %q and %q; want Ben and Ann", sa.Stats().Contact, sb.Stats().Contact)
	}
	sa, sc := link(a, c)
	if sa.Stats().Contact != "" || sc.Stats().Contact != "" {
		t.Fatalf("strangers named each other %q and %q", sa.Stats().Contact, sc.Stats().Contact)
	}
	hello, _ := sb.Hello()
	if _, _, err := sa.Handle(hello[0]); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a second hello on a link gave %v", err)
	}
}

// TestClaimsAreBounded (SPEC §12.7): a stranger offers envelopes under
// tags it saw, again and again with made-up IDs, to learn from the Wants
// which node they are for. A link answers at most MaxClaims offers.
func TestClaimsAreBounded(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	befriend(t, a, b, "A", "B")
	var tags [][envelope.TagSize]byte
	for range 40 {
		m, err := a.Send("B", "x")
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range a.Inventory() {
			if h.ID.String() == m.ID {
				raw, _ := a.Forward([]envelope.ID{h.ID}, nil)
				e, _ := envelope.Parse(raw[0].Raw)
				tags = append(tags, e.Tag)
			}
		}
	}
	sb := New(b, Config{})
	wanted, late := 0, 0
	for i := range 20 {
		p := make([]byte, 0, len(tags)*offerSize)
		for _, tag := range tags {
			var id envelope.ID
			rand.Read(id[:])
			p = append(append(p, id[:]...), tag[:]...)
		}
		out, _, err := sb.Handle(Frame{Type: TypeOffer, Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range out {
			wanted += len(f.Payload) / envelope.IDSize
			if (i+1)*len(tags) > MaxClaims+len(tags) {
				late += len(f.Payload) / envelope.IDSize
			}
		}
	}
	t.Logf("%d offers under B's tags: %d claimed, %d after the first %d offers", 20*len(tags), wanted, late, MaxClaims)
	if wanted == 0 || late != 0 {
		t.Fatalf("%d claims, %d of them past the first %d offers", wanted, late, MaxClaims)
	}
}

func TestFrameTypeString(t *testing.T) {
	for typ, want := range map[FrameType]string{TypeNegOpen: "NegOpen", TypeReceiptOffer: "ReceiptOffer", TypePong: "Pong", 0: "FrameType(0)", 200: "FrameType(200)"} {
		if got := typ.String(); got != want {
			t.Errorf("FrameType(%d).String() = %q, want %q", byte(typ), got, want)
		}
	}
}

// TestReceiptsBeforeMessagesAtLinkUp: relay R1 carries A's message, relay R2
// carries the receipt that proves it delivered. When R1 dials R2, R1 wants
// the receipt and would push the message; it holds the message back until
// the receipt it wanted has arrived, which purges the message: the message
// never crosses the link.
func TestReceiptsBeforeMessagesAtLinkUp(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	r1, r2 := newNode(t, "R1"), newNode(t, "R2")
	befriend(t, a, b, "A", "B")
	m, err := a.Send("B", "crossing")
	if err != nil {
		t.Fatal(err)
	}
	msgID, _ := envelope.ParseID(m.ID)
	pump(t, New(a, Config{Initiator: true}), New(r1, Config{})) // R1 carries the message
	pump(t, New(a, Config{Initiator: true}), New(b, Config{}))  // B reads it, writes its receipt
	pump(t, New(b, Config{Initiator: true}), New(r2, Config{})) // R2 carries the receipt
	if _, held := copiesAt(t, r2, msgID); held {
		t.Fatal("R2 holds the message already: the test shows nothing")
	}
	sent := 0
	s1 := New(r1, Config{Initiator: true})
	pumpRecord(t, s1, New(r2, Config{}), func(from string, f Frame) {
		if from == "initiator" && f.Type == TypeEnvelope {
			if e, _ := envelope.Parse(f.Payload); e != nil && envelope.ComputeID(f.Payload) == msgID {
				sent++
			}
		}
	})
	if sent != 0 {
		t.Fatalf("R1 sent the delivered message %d times", sent)
	}
	if _, held := copiesAt(t, r1, msgID); held {
		t.Fatal("R1 still carries the message after the receipt")
	}
}

// TestProvenDeliveredIsNotWanted: a relay that purged a message because the
// receipt it received opened the message's commitment does not ask a
// neighbour for that message again (the neighbour would send something
// delivered already); a relay that only holds a receipt it could not check
// (forgeable) still asks.
func TestProvenDeliveredIsNotWanted(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	r1, r2, r4 := newNode(t, "R1"), newNode(t, "R2"), newNode(t, "R4")
	befriend(t, a, b, "A", "B")
	m, err := a.Send("B", "delivered already")
	if err != nil {
		t.Fatal(err)
	}
	msgID, _ := envelope.ParseID(m.ID)
	pump(t, New(a, Config{Initiator: true}), New(r1, Config{})) // R1 carries the message
	pump(t, New(a, Config{Initiator: true}), New(r2, Config{})) // so do R2
	pump(t, New(a, Config{Initiator: true}), New(r4, Config{})) // and R4
	pump(t, New(a, Config{Initiator: true}), New(b, Config{}))  // B reads it, writes its receipt
	pump(t, New(b, Config{Initiator: true}), New(r1, Config{})) // R1 gets the receipt: purges the message
	if _, held := copiesAt(t, r1, msgID); held {
		t.Fatal("R1 still holds the message after its receipt")
	}
	wanted := func(from, to *node.Node) bool {
		got := false
		pumpRecord(t, New(from, Config{Initiator: true}), New(to, Config{}), func(side string, f Frame) {
			if side == "initiator" && f.Type == TypeWant {
				for p := f.Payload; len(p) >= envelope.IDSize; p = p[envelope.IDSize:] {
					got = got || envelope.ID(p[:envelope.IDSize]) == msgID
				}
			}
		})
		return got
	}
	if wanted(r1, r2) {
		t.Fatal("R1 asked R2 for a message it saw proven delivered")
	}
	// A stranger holding only a receipt it cannot check (the message never
	// passed it) asks R4, which carries the message, as it should: such a
	// receipt proves nothing.
	r3 := newNode(t, "R3")
	pump(t, New(b, Config{Initiator: true}), New(r3, Config{}))
	if !wanted(r3, r4) {
		t.Fatal("a node with an unchecked receipt did not ask for the message")
	}
}
