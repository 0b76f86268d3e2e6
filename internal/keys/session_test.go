package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// party is one side of a session in the tests: its session and its clock.
type party struct {
	name string
	s    *Session
	// sent remembers what each envelope acknowledges when its receipt
	// comes back.
	sent map[envelope.ID]Sent
}

// pair makes a first contact between fresh identities at period p0: A's
// initiator session and B's responder session, as B has them after
// opening A's request.
func pair(t testing.TB, p0 Period) (a, b *party) {
	t.Helper()
	ida, idb := testIdentity(t, "Alice"), testIdentity(t, "Bob")
	inv, pk := testInvite(t, idb)
	fc, err := Initiate(ida, inv, p0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := Respond(idb, pk.Priv, ida.Public(), fc.EK)
	if err != nil || sk != fc.SK {
		t.Fatalf("responder derives another SK (%v)", err)
	}
	sb, err := NewResponderSession(sk, p0, fc.Ratchet, fc.KEMKey)
	if err != nil {
		t.Fatal(err)
	}
	return &party{name: "A", s: fc.Session, sent: map[envelope.ID]Sent{}},
		&party{name: "B", s: sb, sent: map[envelope.ID]Sent{}}
}

func (p *party) seal(t testing.TB, at Period, text string) *envelope.Envelope {
	t.Helper()
	e, sent, err := p.s.Seal(at, []byte(text), 2000000000, 12, rand.Reader)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	p.sent[e.ID()] = sent
	return e
}

// slot finds the slot an envelope's tag is expected in.
func (p *party) slot(e *envelope.Envelope, now Period) (Slot, bool) {
	for _, sl := range p.s.Expected() {
		if sl.Tag == e.Tag {
			return sl, true
		}
	}
	return Slot{}, false
}

// open recognises and opens e; on success the session moves on.
func (p *party) open(e *envelope.Envelope, now Period) (Opened, error) {
	sl, ok := p.slot(e, now)
	if !ok {
		return Opened{}, errors.New("tag not expected")
	}
	s, op, err := p.s.Open(e, sl, now)
	if err != nil {
		return op, err
	}
	p.s = s
	return op, nil
}

// receipt tells the writer of e that it arrived.
func (p *party) receipt(e *envelope.Envelope) {
	if s, ok := p.sent[e.ID()]; ok && s.Prefixed {
		p.s.Acked(s.Epoch)
	}
}

func mustOpen(t testing.TB, p *party, e *envelope.Envelope, now Period, want string) Opened {
	t.Helper()
	op, err := p.open(e, now)
	if err != nil {
		t.Fatalf("%s cannot open %q: %v", p.name, want, err)
	}
	if string(op.Content) != want {
		t.Fatalf("%s opened %q, want %q", p.name, op.Content, want)
	}
	return op
}

func TestConversationStepsAndAcks(t *testing.T) {
	const p0 = 20000
	a, b := pair(t, p0)
	m1 := a.seal(t, p0, "epoch 0, before any answer")
	if got := len(m1.Marshal()); got != envelope.HeaderSize+64+envelope.Overhead {
		t.Fatalf("a short epoch-0 text is %d bytes on the wire", got)
	}
	mustOpen(t, b, m1, p0, "epoch 0, before any answer")
	a.receipt(m1)

	// B's first envelope opens epoch 1 with a prefix carrying its key and
	// the ML-KEM ciphertext answering A's key: the 1,536 bucket.
	r1 := b.seal(t, p0, "accept")
	if b.s.Send.N != 1 || b.s.Send.CT == nil {
		t.Fatalf("B's first envelope did not open epoch 1 with a KEM answer: %+v", b.s.Send)
	}
	if got := len(r1.Body); got != 1536+envelope.Overhead {
		t.Fatalf("accept body is %d bytes, want %d", got, 1536+envelope.Overhead)
	}
	op := mustOpen(t, a, r1, p0, "accept")
	if !op.Stepped || a.s.DK != nil || !a.s.Answer {
		t.Fatalf("A did not mirror B's step: %+v", op)
	}
	r2 := b.seal(t, p0, "second, still prefixed")
	if !b.sent[r2.ID()].Prefixed {
		t.Fatal("B dropped the prefix before any acknowledgement")
	}
	b.receipt(r1) // A's receipt reaches B
	r3 := b.seal(t, p0, "third, acknowledged")
	if b.sent[r3.ID()].Prefixed {
		t.Fatal("B still sends the prefix after the acknowledgement")
	}
	// Out of order: r3 (no prefix) before r2 (prefix).
	mustOpen(t, a, r3, p0, "third, acknowledged")
	mustOpen(t, a, r2, p0, "second, still prefixed")
	if _, err := a.open(r2, p0); err == nil {
		t.Fatal("an envelope opened twice")
	}

	// A answers: epoch 2, and its prefix closes epoch 0 at one counter.
	m2 := a.seal(t, p0+1, "A's epoch 2")
	if a.s.Send.N != 2 {
		t.Fatalf("A sends in epoch %d, want 2", a.s.Send.N)
	}
	mustOpen(t, b, m2, p0+1, "A's epoch 2")
	for _, r := range b.s.Recv {
		if r.N == 0 {
			t.Fatal("B still watches A's epoch 0 though everything of it arrived")
		}
	}
	if len(b.s.Recv) != 1 || b.s.Recv[0].N != 2 {
		t.Fatalf("B watches epochs %+v, want only 2", b.s.Recv)
	}
}

func TestTamperedPrefixChangesNothing(t *testing.T) {
	a, b := pair(t, 100)
	r1 := b.seal(t, 100, "accept")
	before, _ := jsonOf(a.s)
	raw := r1.Marshal()
	for _, i := range []int{envelope.HeaderSize + SaltSize, envelope.HeaderSize + SaltSize + 5, envelope.HeaderSize + SaltSize + 40, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		e, err := envelope.Parse(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.open(e, 100); err == nil {
			t.Fatalf("a copy altered at byte %d opened", i)
		}
		if after, _ := jsonOf(a.s); !bytes.Equal(before, after) {
			t.Fatalf("a forged copy (byte %d) changed the session", i)
		}
	}
	mustOpen(t, a, r1, 100, "accept") // the genuine copy still opens
}

func TestDowngradeIsRefused(t *testing.T) {
	a, b := pair(t, 100)
	b.s.PeerEK = nil // B "forgets" to answer A's ML-KEM key
	r1 := b.seal(t, 100, "classical only")
	if _, err := a.open(r1, 100); !errors.Is(err, ErrDowngrade) {
		t.Fatalf("a first answer without the ML-KEM ciphertext: %v, want ErrDowngrade", err)
	}
}

func TestKEMRefreshAfterAPeriod(t *testing.T) {
	a, b := pair(t, 100)
	mustOpen(t, a, b.seal(t, 100, "accept"), 100, "accept")
	m := a.seal(t, 100, "same period: no new KEM key")
	if a.s.Send.EK != nil {
		t.Fatal("A announced an ML-KEM key although one was answered this period")
	}
	mustOpen(t, b, m, 100, "same period: no new KEM key")
	r := b.seal(t, 101, "a day later: B announces one")
	if b.s.Send.EK == nil || b.s.DK == nil {
		t.Fatal("B did not announce a fresh ML-KEM key a period after the last")
	}
	mustOpen(t, a, r, 101, "a day later: B announces one")
	m = a.seal(t, 101, "A answers it")
	if a.s.Send.CT == nil {
		t.Fatal("A did not answer B's ML-KEM key")
	}
	mustOpen(t, b, m, 101, "A answers it")
	if b.s.DK != nil || b.s.KEMPeriod != 101 {
		t.Fatal("B still waits for an answer")
	}
}

// TestRandomConversation drives a pair through random sends, deliveries in
// any order, lost receipts, duplicates and passing days, and checks that
// every envelope opens exactly once on the other side.
func TestRandomConversation(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomConversation(t, seed) })
	}
}

func randomConversation(t *testing.T, seed uint64) {
	rng := mrand.New(mrand.NewPCG(seed, 7))
	now := Period(30000)
	a, b := pair(t, now)
	type flight struct {
		e    *envelope.Envelope
		text string
		from *party
		to   *party
		at   Period
	}
	var air []flight
	var receipts []flight
	opened := map[envelope.ID]bool{}
	count := 0
	for step := 0; step < 600; step++ {
		inFlight := func(p *party) int {
			n := 0
			for _, f := range air {
				if f.from == p {
					n++
				}
			}
			return n
		}
		switch x := rng.IntN(100); {
		case x < 20 && inFlight(a) < 12:
			text := fmt.Sprintf("a%d", count)
			count++
			air = append(air, flight{a.seal(t, now, text), text, a, b, now})
		case x < 40 && inFlight(b) < 12:
			text := fmt.Sprintf("b%d", count)
			count++
			air = append(air, flight{b.seal(t, now, text), text, b, a, now})
		case x < 75 && len(air) > 0:
			i := rng.IntN(len(air))
			f := air[i]
			air = append(air[:i], air[i+1:]...)
			if testing.Verbose() {
				sl, ok := f.to.slot(f.e, now)
				t.Logf("step %d: deliver %s (sent %+v) slot %+v %v", step, f.text, f.from.sent[f.e.ID()], sl, ok)
			}
			mustOpen(t, f.to, f.e, now, f.text)
			opened[f.e.ID()] = true
			if rng.IntN(4) > 0 {
				receipts = append(receipts, f)
			}
			if rng.IntN(10) == 0 { // a duplicate copy arrives later
				if _, err := f.to.open(f.e, now); err == nil {
					t.Fatalf("step %d: %q opened twice", step, f.text)
				}
			}
		case x < 90 && len(receipts) > 0:
			i := rng.IntN(len(receipts))
			if testing.Verbose() {
				t.Logf("step %d: receipt of %s", step, receipts[i].text)
			}
			receipts[i].from.receipt(receipts[i].e)
			receipts = append(receipts[:i], receipts[i+1:]...)
		case x < 93:
			now++
			// Envelopes live seven periods: what is older has expired.
			kept := air[:0]
			for _, f := range air {
				if f.at+7 > now {
					kept = append(kept, f)
				}
			}
			air = kept
			for _, p := range []*party{a, b} {
				p.s.Forget(now - 8)
			}
		}
	}
	for _, f := range air { // everything still in the air arrives at last
		mustOpen(t, f.to, f.e, now, f.text)
	}
	for _, p := range []*party{a, b} {
		if len(p.s.Recv) > MaxRecv {
			t.Fatalf("%s watches %d epochs", p.name, len(p.s.Recv))
		}
	}
}

// expects reports whether p's session watches e's tag.
func (p *party) expects(e *envelope.Envelope, now Period) bool {
	_, ok := p.slot(e, now)
	return ok
}

// TestPostCompromiseSecurity copies A's whole session (an attacker who
// imaged the device), lets the pair exchange one round trip, and feeds the
// copy every envelope of B's it sees: after the round trip it opens and
// recognises nothing, cannot forge an envelope B accepts, and cannot make
// or check link proofs.
func TestPostCompromiseSecurity(t *testing.T) {
	const p = 500
	a, b := pair(t, p)
	mustOpen(t, b, a.seal(t, p, "hello"), p, "hello")
	mustOpen(t, a, b.seal(t, p, "accept"), p, "accept")
	mustOpen(t, b, a.seal(t, p, "before the copy"), p, "before the copy")

	eve := &party{name: "copy of A", s: a.s.Clone(), sent: map[envelope.ID]Sent{}}
	watch := func(e *envelope.Envelope) bool { // the copy follows every envelope B writes
		_, err := eve.open(e, p)
		return err == nil
	}

	// One round trip: B writes (answering A's key), A answers, B answers.
	// The copy reads B's first envelope: the attack is real until A steps.
	r := b.seal(t, p, "b1")
	if !watch(r) {
		t.Fatal("the copy cannot even read what B wrote right after the copy")
	}
	mustOpen(t, a, r, p, "b1")
	m := a.seal(t, p, "a1")
	mustOpen(t, b, m, p, "a1")
	r = b.seal(t, p, "b2")
	watch(r)
	mustOpen(t, a, r, p, "b2")
	a.receipt(m)
	b.receipt(r)

	// After it: nothing in either direction is readable or recognisable.
	for i := range 5 {
		text := fmt.Sprintf("after %d", i)
		m := a.seal(t, p, text)
		if eve.expects(m, p) {
			t.Fatalf("the copy recognises A's envelope %q", text)
		}
		mustOpen(t, b, m, p, text)
		r := b.seal(t, p, text)
		if eve.expects(r, p) {
			t.Fatalf("the copy recognises B's envelope %q", text)
		}
		if _, err := eve.open(r, p); err == nil {
			t.Fatalf("the copy opened B's envelope %q", text)
		}
		mustOpen(t, a, r, p, text)
		a.receipt(m)
		b.receipt(r)
	}
	forged, _, err := eve.s.Seal(p, []byte("forged"), 2000000000, 12, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if b.expects(forged, p) {
		if _, err := b.open(forged, p); err == nil {
			t.Fatal("B accepted an envelope forged by the copy")
		}
	}
	checks := map[string]bool{}
	for _, k := range b.s.CheckKeys(p) {
		checks[string(k)] = true
	}
	if k, ok := eve.s.ProofKey(p); ok && checks[string(k)] {
		t.Fatal("the copy can still prove itself as A on a link")
	}
	for _, k := range eve.s.CheckKeys(p) {
		if pk, _ := b.s.ProofKey(p); string(pk) == string(k) {
			t.Fatal("the copy can still recognise B on a link")
		}
	}
	// The honest pair still recognise each other.
	if k, ok := a.s.ProofKey(p); !ok || !checks[string(k)] {
		t.Fatal("A's link proof does not match what B checks")
	}
}

// TestForwardSecrecy seizes B after a round trip and gives the attacker
// every envelope the pair exchanged: B's session opens none of them again.
func TestForwardSecrecy(t *testing.T) {
	const p = 600
	a, b := pair(t, p)
	var all []*envelope.Envelope
	send := func(from, to *party, text string) {
		e := from.seal(t, p, text)
		all = append(all, e)
		mustOpen(t, to, e, p, text)
		from.receipt(e)
	}
	send(a, b, "request text")
	send(b, a, "accept")
	send(a, b, "a1")
	send(b, a, "b1")
	send(a, b, "a2")
	seized := b.s.Clone()
	for _, e := range all {
		for _, sl := range seized.Expected() {
			if sl.Tag != e.Tag {
				continue
			}
			if _, _, err := seized.Open(e, sl, p); err == nil {
				t.Fatalf("the seized session opens an envelope it already opened (%x)", e.Tag[:4])
			}
		}
	}
}

// TestHybridRoot breaks X25519 entirely: the attacker holds every X25519
// secret of both sides (so it has SK, the first root and the DH of B's
// first step) but no ML-KEM secret, and still cannot compute the root or
// open B's first epoch.
func TestHybridRoot(t *testing.T) {
	const p = 700
	a, b := pair(t, p)
	rk0 := a.s.RK
	a0 := a.s.Self
	r := b.seal(t, p, "accept")
	b1 := b.s.Self
	dh, err := x25519(b1.Priv, a0.Pub)
	if err != nil {
		t.Fatal(err)
	}
	real, err := decapsulate(a.s.DK, b.s.Send.CT) // only A's ML-KEM key gives this
	if err != nil {
		t.Fatal(err)
	}
	for i, kss := range [][]byte{real, nil, make([]byte, 32)} { // control, classical only, a guessed secret
		rk, es, _ := rootStep(rk0, dh, kss, b1.Pub, a0.Pub, b.s.Send.CT)
		if i == 0 {
			if rk != b.s.RK {
				t.Fatal("control: the test does not compute the root as the session does")
			}
			continue
		}
		if rk == b.s.RK {
			t.Fatal("the root after B's step follows from X25519 alone")
		}
		c := newChain(es[:], make([]byte, 32))
		ck, _ := c.step()
		pk, _ := a.s.Next.Periods.At(p) // the attacker has the tag seed too
		mk := messageKey(ck, pk)
		if _, err := envelope.Open(sealKeyOf(mk, r.Body[:SaltSize]), r, SaltSize+headerLen(flagKey|flagCT)); err == nil {
			t.Fatal("B's first envelope opens without the ML-KEM secret")
		}
	}
	mustOpen(t, a, r, p, "accept")
	if a.s.RK != b.s.RK {
		t.Fatal("the two sides disagree on the root")
	}
}

// TestRestoredSessionNeverRepeatsAKey restores an old copy of a session and
// seals again: the same counter gives a different AEAD key and receipt
// commitment, because the salt is fresh.
func TestRestoredSessionNeverRepeatsAKey(t *testing.T) {
	a, b := pair(t, 800)
	mustOpen(t, a, b.seal(t, 800, "accept"), 800, "accept")
	backup := a.s.Clone()
	m1 := a.seal(t, 800, "before the restore")
	a.s = backup
	m2 := a.seal(t, 800, "after the restore")
	if m1.Tag != m2.Tag {
		t.Fatal("expected the restored counter to repeat its tag (documented)")
	}
	if bytes.Equal(m1.Body[:SaltSize], m2.Body[:SaltSize]) || m1.Commit == m2.Commit {
		t.Fatal("a restored session repeated a salt or a receipt commitment")
	}
}
