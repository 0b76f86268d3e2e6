package session

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// hop is one link between a neighbour (far, the side that pushes) and
// the node under test (near).
type hop struct{ far, near *Session }

// carryFrames delivers frames to s and returns its replies; it counts the
// envelope frames among them in got.
func carryFrames(t *testing.T, s *Session, frames []Frame, got map[FrameType]int) []Frame {
	t.Helper()
	var out []Frame
	for _, f := range frames {
		got[f.Type]++
		reply, _, err := s.Handle(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, reply...)
	}
	return out
}

// drain moves frames both ways on a link until neither side has any left,
// storing what arrives as a driver would.
func drain(t *testing.T, h hop, got map[FrameType]int) {
	t.Helper()
	for range 20 {
		moved := false
		for _, dir := range [][2]*Session{{h.far, h.near}, {h.near, h.far}} {
			frames, _, err := dir[0].Pull()
			if err != nil {
				t.Fatal(err)
			}
			from, to := dir[0], dir[1]
			for len(frames) > 0 {
				moved = true
				frames = carryFrames(t, to, frames, got)
				if _, err := to.Flush(); err != nil {
					t.Fatal(err)
				}
				from, to = to, from // replies go back
			}
		}
		if !moved {
			return
		}
	}
	t.Fatal("the link never went quiet")
}

// relayed makes an envelope and a receipt for strangers, as a relay holds
// them, ingested at each node.
func relayed(t *testing.T, nodes ...*node.Node) []envelope.ID {
	t.Helper()
	env := stranger(t, 1, 5)[0]
	var target envelope.ID
	rand.Read(target[:])
	var secret [envelope.SecretSize]byte
	rcpt := envelope.NewReceipt(target, uint32(epoch.Add(9*time.Hour).Unix()), secret, 5).Marshal()
	for _, n := range nodes {
		ingest(t, n, [][]byte{env, rcpt})
	}
	return []envelope.ID{envelope.ComputeID(env), envelope.ComputeID(rcpt)}
}

// Three neighbours came to hold the same envelope and receipt by relay at
// the same moment, and all push them live to X: X receives each once, not
// three times. (Pushed whole, as before Have, X got three copies of each.)
func TestHaveSendsEachEnvelopeOnce(t *testing.T) {
	x := newNode(t, "X")
	var hops []hop
	var nbrs []*node.Node
	for _, name := range []string{"A", "B", "C"} {
		n := newNode(t, name)
		nbrs = append(nbrs, n)
		hops = append(hops, hop{New(n, Config{Initiator: true}), New(x, Config{})})
	}
	ids := relayed(t, nbrs...)
	got := map[FrameType]int{}
	// All three announce at once; X answers each.
	var answers [][]Frame
	for _, h := range hops {
		h.far.Offer(ids)
		frames, sent, err := h.far.Pull()
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) != 0 || len(frames) != 1 || frames[0].Type != TypeHave {
			t.Fatalf("a relay pushed %d envelopes in %d frames; want one Have", len(sent), len(frames))
		}
		answers = append(answers, carryFrames(t, h.near, frames, got))
	}
	for i, h := range hops {
		carryFrames(t, h.far, answers[i], got)
	}
	for _, h := range hops {
		drain(t, h, got)
	}
	// The links that waited ask for nothing once the time is up: X holds
	// both.
	for _, h := range hops {
		h.near.Release()
		drain(t, h, got)
	}
	for _, id := range ids {
		if !x.Holds(id) {
			t.Fatalf("X lacks %v", id)
		}
	}
	if got[TypeEnvelope] != len(ids) {
		t.Fatalf("X received %d envelopes for %d (frames: %v)", got[TypeEnvelope], len(ids), got)
	}
	if got[TypeWant] != 1 {
		t.Fatalf("X sent %d Wants, want 1", got[TypeWant])
	}
	var asked int
	for _, h := range hops {
		asked += h.near.Stats().AskedLater
	}
	if asked != 2*len(ids) {
		t.Fatalf("%d announcements waited for another link, want %d", asked, 2*len(ids))
	}
}

// X asks A for what A and B both announce; the link to A dies before it
// arrives. When the wait is over, B's link asks B, and X gets it.
func TestHaveClaimDiesWithItsLink(t *testing.T) {
	x, a, b := newNode(t, "X"), newNode(t, "A"), newNode(t, "B")
	ids := relayed(t, a, b)
	ha := hop{New(a, Config{Initiator: true}), New(x, Config{})}
	hb := hop{New(b, Config{Initiator: true}), New(x, Config{})}
	got := map[FrameType]int{}
	var wantA, wantB []Frame
	for _, p := range []struct {
		h   hop
		out *[]Frame
	}{{ha, &wantA}, {hb, &wantB}} {
		p.h.far.Offer(ids)
		frames, _, err := p.h.far.Pull()
		if err != nil {
			t.Fatal(err)
		}
		*p.out = carryFrames(t, p.h.near, frames, got)
	}
	if len(wantA) != 1 || wantA[0].Type != TypeWant || len(wantB) != 0 {
		t.Fatalf("X answered A with %v and B with %v; want a Want to A only", wantA, wantB)
	}
	// A's answer is lost with the link.
	carryFrames(t, ha.far, wantA, got)
	if _, _, err := ha.far.Pull(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Session{ha.far, ha.near} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if hb.near.Queued() != 0 {
		t.Fatal("B's link asked before the wait was over")
	}
	// ClaimTimeout later, the driver releases B's link.
	hb.near.Release()
	if hb.near.Queued() == 0 {
		t.Fatal("B's link has nothing to ask after the link to A died")
	}
	drain(t, hb, got)
	for _, id := range ids {
		if !x.Holds(id) {
			t.Fatalf("X lacks %v after the link that brought it died", id)
		}
	}
}

// An announced envelope that X holds is not wanted, unless it was announced
// with more hops left than X holds; what the peer announced is never pushed
// back; and a writer announces its own messages like any other, so that
// how an envelope leaves does not name its writer.
func TestHaveRules(t *testing.T) {
	a, x := newNode(t, "A"), newNode(t, "X")
	ids := relayed(t, a, x)
	sa, sx := New(a, Config{Initiator: true}), New(x, Config{})
	sa.Offer(ids)
	frames, _, err := sa.Pull()
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := sx.Handle(frames[0])
	if err != nil || len(out) != 0 {
		t.Fatalf("X answered %v (%v) to an announcement of what it holds", out, err)
	}
	sx.Offer(ids)
	if sx.Queued() != 0 {
		t.Fatal("X would push back what A announced")
	}
	// A higher hop budget than X holds raises X's: the number crosses, not
	// the copy. One above the protocol's cap is taken down to it, as an
	// envelope carrying it would be.
	for _, budget := range []uint8{9, 255} {
		p := append(append([]byte(nil), ids[0][:]...), budget)
		sy := New(x, Config{})
		out, next, err := sy.Receive(Frame{TypeHave, p})
		if err != nil || len(out) != 0 {
			t.Fatalf("X answered %v (%v) to an announcement with %d hops, more than it holds", out, err, budget)
		}
		if sy.Pending() != 1 || !next.Store {
			t.Fatalf("%d raises pending (Store %v), want 1", sy.Pending(), next.Store)
		}
		if _, err := sy.Flush(); err != nil {
			t.Fatal(err)
		}
		want := min(budget, node.MaxHops)
		if !x.Redundant(ids[0], want) || x.Redundant(ids[0], want+1) || sy.Stats().Raised != 1 {
			t.Fatalf("announced %d: X's budget not raised to %d (raised %d)", budget, want, sy.Stats().Raised)
		}
	}
	// The writer's own message is announced, and goes whole when wanted.
	befriend(t, a, x, "A", "X")
	m, err := a.Send("X", "hello")
	if err != nil {
		t.Fatal(err)
	}
	own, _ := envelope.ParseID(m.ID)
	s, r := New(a, Config{}), New(x, Config{Initiator: true})
	s.Offer([]envelope.ID{own})
	frames, sent, err := s.Pull()
	if err != nil || len(sent) != 0 || len(frames) != 1 || frames[0].Type != TypeHave {
		t.Fatalf("the writer's own message left as %v (%v), not announced", frames, err)
	}
	got := map[FrameType]int{}
	carryFrames(t, s, carryFrames(t, r, frames, got), got)
	drain(t, hop{s, r}, got)
	if msgs, err := x.Messages("A"); err != nil || got[TypeEnvelope] != 1 || len(msgs) != 1 {
		t.Fatalf("X did not get the announced message (%v, %d messages, %v)", got, len(msgs), err)
	}
}

func TestHaveViolations(t *testing.T) {
	a := newNode(t, "A")
	for _, p := range [][]byte{nil, make([]byte, 32), make([]byte, 34), make([]byte, (MaxHave+1)*haveSize)} {
		if _, _, err := New(a, Config{}).Handle(Frame{TypeHave, p}); !errors.Is(err, ErrProtocol) {
			t.Fatalf("a Have of %d bytes: %v, want a protocol violation", len(p), err)
		}
	}
}

// X asks A for an envelope A and B both announce, B with a larger hop
// budget. A's copy arrives; when the wait is over, X raises its copy's
// budget to B's, which carries the envelope further (hop budgets are
// blurred, so copies differ), without B's copy crossing. Without it, a
// flood across more links than the budget stopped short: 94 of 100
// messages delivered among 5,000 static nodes (99 when every copy was
// pushed whole, before Have).
func TestHaveWaitsForTheBetterCopy(t *testing.T) {
	x, id, hb, got := twoAnnounce(t, 20)
	if !x.Holds(id) || x.Redundant(id, 18) {
		t.Fatal("X should hold A's copy, with A's small budget")
	}
	hb.near.Release()
	drain(t, hb, got)
	if !x.Redundant(id, 18) {
		t.Fatal("X kept the smaller budget: B's was not taken")
	}
	if got[TypeEnvelope] != 1 {
		t.Fatalf("frames %v: a copy crossed for a hop budget", got)
	}
}

// X holds an envelope, and Y has announced its own copy to X, so X never
// pushes it to Y. A copy with a larger budget then reaches X from
// elsewhere: X announces it to Y again, and Y, whose copy goes less far,
// takes it. Without it a better copy stopped at the first node that had a
// worse one: 10,000 static nodes delivered 69 of 100 messages, where
// pushing every copy whole (before Have) delivered 99.
func TestHaveAnnouncesABetterCopy(t *testing.T) {
	x, y := newNode(t, "X"), newNode(t, "Y")
	env := stranger(t, 1, 5)[0]
	id := envelope.ComputeID(env)
	mine := bytes.Clone(env)
	envelope.SetHops(mine, 6) // leaves with 5: X, holding 5, does not want it
	ingest(t, x, [][]byte{env})
	ingest(t, y, [][]byte{mine})
	h := hop{New(y, Config{Initiator: true}), New(x, Config{})}
	got := map[FrameType]int{}
	h.far.Offer([]envelope.ID{id})
	drain(t, h, got)
	if got[TypeHave] != 1 || got[TypeWant] != 0 || got[TypeEnvelope] != 0 {
		t.Fatalf("frames %v; want one Have, nothing wanted", got)
	}
	better := bytes.Clone(env)
	envelope.SetHops(better, 20)
	ingest(t, x, [][]byte{better})
	h.near.Offer([]envelope.ID{id}) // what the driver does when X's store says it changed
	drain(t, h, got)
	if got[TypeHave] != 2 || !y.Redundant(id, 18) {
		t.Fatalf("frames %v: Y's budget was not raised to X's better copy's", got)
	}
	h.near.Offer([]envelope.ID{id}) // announced again at most: Y holds as good a copy
	drain(t, h, got)
	if got[TypeEnvelope] != 0 || got[TypeWant] != 0 {
		t.Fatalf("frames %v: a copy crossed for a hop budget", got)
	}
}

// As TestHaveWaitsForTheBetterCopy, but the driver tells B's link that A's
// copy arrived (Offer, as it does for everything newly held): X raises its
// copy's budget to B's at once, without waiting for Release and without
// B's copy crossing.
func TestHaveRaisesOnceTheOtherCame(t *testing.T) {
	x, id, hb, got := twoAnnounce(t, 20)
	if !x.Holds(id) || x.Redundant(id, 18) {
		t.Fatal("X should hold A's copy, with A's small budget")
	}
	hb.near.Offer([]envelope.ID{id}) // X's store says it holds id now
	if !x.Redundant(id, 18) || hb.near.Stats().Raised != 1 {
		t.Fatal("X kept the smaller budget after A's copy came, until Release")
	}
	drain(t, hb, got)
	hb.near.Release() // nothing is left to ask for
	drain(t, hb, got)
	if got[TypeEnvelope] != 1 || got[TypeWant] != 1 {
		t.Fatalf("frames %v; want A's copy only, wanted once", got)
	}
}

// A deferred envelope that came over another link with at least the
// announced budget is never asked for: Release finds nothing to do.
func TestHaveForgetsWhatCameElsewhere(t *testing.T) {
	x, id, hb, got := twoAnnounce(t, 0)
	if !x.Holds(id) {
		t.Fatal("X lacks A's copy")
	}
	hb.near.Offer([]envelope.ID{id})
	hb.near.Release()
	drain(t, hb, got)
	if got[TypeEnvelope] != 1 || got[TypeWant] != 1 {
		t.Fatalf("frames %v; want one Want and one envelope", got)
	}
}

// twoAnnounce has A and B announce one envelope to X, B's copy with hop
// budget bHops (0: the same copy as A's), and carries both announcements
// and X's answers, then A's link until it is quiet: X holds A's copy, and
// B's link waits on it.
func twoAnnounce(t *testing.T, bHops uint8) (x *node.Node, id envelope.ID, hb hop, got map[FrameType]int) {
	t.Helper()
	x, a, b := newNode(t, "X"), newNode(t, "A"), newNode(t, "B")
	env := stranger(t, 1, 5)[0]
	bs := env
	if bHops > 0 {
		bs = bytes.Clone(env)
		envelope.SetHops(bs, bHops)
	}
	ingest(t, a, [][]byte{env})
	ingest(t, b, [][]byte{bs})
	id = envelope.ComputeID(env)
	if envelope.ComputeID(bs) != id {
		t.Fatal("the hop budget changed the ID")
	}
	ha := hop{New(a, Config{Initiator: true}), New(x, Config{})}
	hb = hop{New(b, Config{Initiator: true}), New(x, Config{})}
	got = map[FrameType]int{}
	for _, h := range []hop{ha, hb} {
		h.far.Offer([]envelope.ID{id})
		frames, _, err := h.far.Pull()
		if err != nil {
			t.Fatal(err)
		}
		carryFrames(t, h.far, carryFrames(t, h.near, frames, got), got)
	}
	drain(t, ha, got)
	return x, id, hb, got
}
