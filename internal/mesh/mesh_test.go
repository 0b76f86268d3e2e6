package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/session"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// testMesh is a set of nodes on one in-memory network, all inside a synctest
// bubble: time is virtual, so minutes of backoff and keepalives pass at once.
type testMesh struct {
	t      *testing.T
	net    *MemNetwork
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newTestMesh(t *testing.T) *testMesh {
	ctx, cancel := context.WithCancel(t.Context())
	return &testMesh{t: t, net: NewMemNetwork(), ctx: ctx, cancel: cancel}
}

// newTestNode makes a node that is closed when the test ends — after the
// deferred tm.stop, so no link outlives its node.
func newTestNode(t *testing.T, name string) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig
	cfg.ReceiptDelay = 0 // receipts at once, unless a test is about their delay
	return newTestNodeWith(t, name, cfg)
}

func newTestNodeWith(t *testing.T, name string, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.Init(filepath.Join(t.TempDir(), name), []byte("pw"), name, cfg, node.Options{KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// start runs n on the network as addr, dialling peers.
func (tm *testMesh) start(n *node.Node, addr string, peers ...string) (*Mesh, context.CancelFunc) {
	ctx, cancel := context.WithCancel(tm.ctx)
	m := New(n, Config{Listen: addr, Peers: peers, Transport: tm.net.Transport(addr)})
	tm.wg.Go(func() {
		if err := m.Serve(ctx); err != nil {
			tm.t.Errorf("%s: %v", addr, err)
		}
	})
	<-m.Ready()
	return m, cancel
}

func (tm *testMesh) stop() {
	tm.cancel()
	tm.wg.Wait()
}

// eventually polls cond in virtual time.
func eventually(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// befriend has a add b from b's invite and b accept, over the mesh.
func befriend(t testing.TB, a, b *node.Node, aName, bName string) {
	t.Helper()
	self, err := b.Self()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddContact(self.Link, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, bName+" sees "+aName+"'s request", 2*time.Second, func() bool { return contactState(t, b, aName) == node.StateRequest })
	if _, err := b.Accept(aName); err != nil {
		t.Fatal(err)
	}
	eventually(t, aName+" sees the accept", 2*time.Second, func() bool { return contactState(t, a, bName) == node.StateActive })
}

func contactState(t testing.TB, n *node.Node, name string) string {
	cs, err := n.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.State
		}
	}
	return ""
}

func lastMessage(t *testing.T, n *node.Node) node.Message {
	ms, err := n.Messages("")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		return node.Message{}
	}
	return ms[len(ms)-1]
}

// TestLineDeliversThroughTheMiddle runs A–B–C where A and C have no link:
// a contact request, its acceptance, a message and its receipt all travel
// through B.
func TestLineDeliversThroughTheMiddle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alice, bob, carol := newTestNode(t, "Alice"), newTestNode(t, "Bob"), newTestNode(t, "Carol")
		tm := newTestMesh(t)
		defer tm.stop()
		tm.start(alice, "a")
		tm.start(bob, "b", "a")
		tm.start(carol, "c", "b")

		befriend(t, alice, carol, "Alice", "Carol")
		sent, err := alice.Send("Carol", "through the grapevine")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "Carol receives", 2*time.Second, func() bool { return lastMessage(t, carol).Text == "through the grapevine" })
		eventually(t, "Alice learns it was delivered", 2*time.Second, func() bool {
			m := lastMessage(t, alice)
			return m.ID == sent.ID && m.Status == node.StatusDelivered
		})
	})
}

// TestReceiptsLeaveAfterARandomDelay: with receipts delayed by up to ten
// minutes, Carol carries what she opened like a relay and her receipt
// leaves later; Alice learns of the delivery then, not at once (SPEC §6).
func TestReceiptsLeaveAfterARandomDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := node.DefaultConfig
		cfg.ReceiptDelay = 10 * time.Minute
		alice, bob, carol := newTestNode(t, "Alice"), newTestNode(t, "Bob"), newTestNodeWith(t, "Carol", cfg)
		tm := newTestMesh(t)
		defer tm.stop()
		tm.start(alice, "a")
		tm.start(bob, "b", "a")
		tm.start(carol, "c", "b")
		befriend(t, alice, carol, "Alice", "Carol")
		sent, err := alice.Send("Carol", "a receipt that waits")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "Carol receives", 2*time.Second, func() bool { return lastMessage(t, carol).Text == "a receipt that waits" })
		id, _ := envelope.ParseID(sent.ID)
		if !carol.Holds(id) {
			t.Fatal("Carol does not carry what she opened while her receipt waits")
		}
		delivered := func() bool {
			m := lastMessage(t, alice)
			return m.ID == sent.ID && m.Status == node.StatusDelivered
		}
		eventually(t, "Alice learns it was delivered", 11*time.Minute, delivered)
		if carol.Holds(id) {
			t.Fatal("Carol still carries the envelope after her receipt left")
		}
	})
}

// TestSprayAndWaitOverLinks: Alice routes with spray-and-wait, 2 copies.
// She hands one to Bob, who is then down to his last copy and only offers
// it; Carol, the recipient, claims it — the request, then the message.
func TestSprayAndWaitOverLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := node.DefaultConfig
		cfg.Copies = 2
		alice, bob, carol := newTestNodeWith(t, "Alice", cfg), newTestNode(t, "Bob"), newTestNode(t, "Carol")
		tm := newTestMesh(t)
		defer tm.stop()
		tm.start(alice, "a")
		mb, _ := tm.start(bob, "b", "a")
		tm.start(carol, "c", "b")
		befriend(t, alice, carol, "Alice", "Carol") // Carol claims the request from Bob
		if _, err := alice.Send("Carol", "two copies only"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Carol receives", 2*time.Second, func() bool { return lastMessage(t, carol).Text == "two copies only" })
		offers := 0
		for _, p := range mb.Peers() {
			offers += p.OffersSent
		}
		if offers == 0 {
			t.Fatal("Bob never offered a last copy: the message did not go by spray-and-wait")
		}
	})
}

// TestCarriedWhileRecipientAway: C is away when A writes; A hands the
// envelope to B and leaves; C comes later, meets only B, and receives it.
func TestCarriedWhileRecipientAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alice, bob, carol := newTestNode(t, "Alice"), newTestNode(t, "Bob"), newTestNode(t, "Carol")
		self, _ := carol.Self()
		if _, err := alice.AddContact(self.Link, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send("Carol", "see you tomorrow"); err != nil {
			t.Fatal(err)
		}
		tm := newTestMesh(t)
		defer tm.stop()
		mb, _ := tm.start(bob, "b")
		_, stopAlice := tm.start(alice, "a", "b")
		eventually(t, "Bob carries Alice's two envelopes", time.Minute, func() bool { return mb.Status().Carried == 2 })
		eventually(t, "Alice's message shows as carried", time.Minute, func() bool { return lastMessage(t, alice).Status == node.StatusCarried })
		stopAlice()
		time.Sleep(time.Hour) // Alice is gone; an hour passes
		tm.start(carol, "c", "b")
		eventually(t, "Carol sees the request", 2*time.Second, func() bool { return contactState(t, carol, "Alice") == node.StateRequest })
		if _, err := carol.Accept("Alice"); err != nil { // a request's messages show once accepted
			t.Fatal(err)
		}
		if got := lastMessage(t, carol).Text; got != "see you tomorrow" {
			t.Fatalf("Carol's last message is %q", got)
		}
	})
}

// TestHostilePeersAreCutOff: garbage instead of a handshake, a frame over
// its type's limit, a frame of no known type, and a connection that never
// speaks are all cut off, and the node keeps serving a good neighbour.
func TestHostilePeersAreCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bob, carol := newTestNode(t, "Bob"), newTestNode(t, "Carol")
		tm := newTestMesh(t)
		defer tm.stop()
		mb, _ := tm.start(bob, "b")
		closed := func(c net.Conn) bool { // the node hung up: a read ends
			c.SetReadDeadline(time.Now().Add(time.Minute))
			_, err := io.ReadAll(c)
			return err == nil
		}

		garbage, err := tm.net.Transport("h1").Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		go garbage.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 4))
		if !closed(garbage) {
			t.Fatal("garbage was not cut off")
		}

		for i, f := range []session.Frame{{Type: 99}, {Type: session.TypeWant, Payload: make([]byte, session.MaxWant*32+32)}} {
			c, err := tm.net.Transport(fmt.Sprint("h2-", i)).Dial(t.Context(), "b") // each is penalised after
			if err != nil {
				t.Fatal(err)
			}
			key, _ := link.NewStatic(nil)
			// The hostile side allows itself anything.
			lc, err := link.Client(t.Context(), c, link.Config{Static: key})
			if err != nil {
				t.Fatal(err)
			}
			go lc.WriteFrame(byte(f.Type), f.Payload)
			if !closed(c) {
				t.Fatalf("frame type %v with %d bytes was not cut off", f.Type, len(f.Payload))
			}
		}

		silent, err := tm.net.Transport("h3").Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if !closed(silent) || time.Since(start) > 11*time.Second {
			t.Fatalf("a connection that never spoke stayed %s", time.Since(start))
		}

		// A good neighbour is served all along.
		tm.start(carol, "c", "b")
		eventually(t, "Carol links and syncs", time.Minute, func() bool {
			ps := mb.Peers()
			return len(ps) == 1 && ps[0].Synced && ps[0].Addr == "c"
		})
		// The garbage sender is refused for a while.
		again, _ := tm.net.Transport("h1").Dial(t.Context(), "b")
		if !closed(again) {
			t.Fatal("a penalised host was served again at once")
		}
	})
}

// TestIdleLinkIsCut: a linked peer that stops answering (no Pong, nothing)
// is dropped after the idle timeout; keepalives keep a quiet link up.
func TestIdleLinkIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alice, bob := newTestNode(t, "Alice"), newTestNode(t, "Bob")
		tm := newTestMesh(t)
		defer tm.stop()
		ma, _ := tm.start(alice, "a")
		tm.start(bob, "b", "a")
		eventually(t, "linked", time.Minute, func() bool { return len(ma.Peers()) == 1 })
		time.Sleep(10 * time.Minute) // quiet, but keepalives flow
		if len(ma.Peers()) != 1 {
			t.Fatal("a quiet but live link was dropped")
		}

		c, _ := tm.net.Transport("z").Dial(t.Context(), "a")
		key, _ := link.NewStatic(nil)
		if _, err := link.Client(t.Context(), c, link.Config{Static: key}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the mute peer is listed", time.Minute, func() bool { return len(ma.Peers()) == 2 })
		time.Sleep(50 * time.Second) // it never answers a Ping
		if n := len(ma.Peers()); n != 1 {
			t.Fatalf("%d peers after the idle timeout; the mute one should be gone", n)
		}
		c.Close()
	})
}

// TestDuplicateLinksCollapse: two nodes that both dial each other end up
// with one link, the same one on both sides.
func TestDuplicateLinksCollapse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alice, bob := newTestNode(t, "Alice"), newTestNode(t, "Bob")
		tm := newTestMesh(t)
		defer tm.stop()
		ma, _ := tm.start(alice, "a", "b")
		mb, _ := tm.start(bob, "b", "a")
		time.Sleep(5 * time.Minute) // redials with backoff meanwhile
		pa, pb := ma.Peers(), mb.Peers()
		if len(pa) != 1 || len(pb) != 1 {
			t.Fatalf("Alice has %d links and Bob %d; want one each", len(pa), len(pb))
		}
		if pa[0].Direction == pb[0].Direction {
			t.Fatal("the two sides kept different links")
		}
	})
}

// TestJunkFloodIsCut: a neighbour whose envelopes are mostly expired is cut
// off once past the junk limit.
func TestJunkFloodIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bob := newTestNode(t, "Bob")
		tm := newTestMesh(t)
		defer tm.stop()
		mb, _ := tm.start(bob, "b")
		c, err := tm.net.Transport("junk").Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		key, _ := link.NewStatic(nil)
		lc, err := link.Client(t.Context(), c, link.Config{Static: key})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range 3 * junkLimit {
				s := envelope.Sealing{Expiry: uint32(time.Now().Add(-time.Hour).Unix()), Hops: 3}
				rand.Read(s.Tag[:])
				e, _ := envelope.Seal(s, []byte("stale"))
				if lc.WriteFrame(byte(session.TypeEnvelope), e.Marshal()) != nil {
					return
				}
			}
		}()
		eventually(t, "the junk link is cut", time.Minute, func() bool { return len(mb.Peers()) == 0 && mb.penalised("junk") })
		c.Close()
	})
}

// TestContactsRecogniseEachOther: two contacts who link see each other's
// names among their peers; a stranger stays nameless on both sides.
func TestContactsRecogniseEachOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alice, bob, carol := newTestNode(t, "Alice"), newTestNode(t, "Bob"), newTestNode(t, "Carol")
		self, _ := bob.Self()
		if _, err := alice.AddContact(self.Link, ""); err != nil {
			t.Fatal(err)
		}
		bundle := filepath.Join(t.TempDir(), "b.gvb")
		for _, step := range []func() error{
			func() error { _, err := alice.Export(bundle); return err },
			func() error { _, err := bob.Import(bundle); return err },
			func() error { _, err := bob.Accept("Alice"); return err },
			func() error { _, err := bob.Export(bundle); return err },
			func() error { _, err := alice.Import(bundle); return err },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		tm := newTestMesh(t)
		defer tm.stop()
		ma, _ := tm.start(alice, "a")
		mb, _ := tm.start(bob, "b", "a")
		mc, _ := tm.start(carol, "c", "a")
		eventually(t, "all linked and synced (a hello comes first)", 2*time.Second, func() bool {
			return allSynced(ma, 2) && allSynced(mb, 1) && allSynced(mc, 1)
		})
		names := map[string]string{}
		for _, p := range ma.Peers() {
			names[p.Addr] = p.Contact
		}
		if names["b"] != "Bob" || names["c"] != "" {
			t.Fatalf("Alice sees her peers as %v; want Bob named and Carol not", names)
		}
		if pb := mb.Peers(); pb[0].Contact != "Alice" {
			t.Fatalf("Bob sees %q", pb[0].Contact)
		}
		if pc := mc.Peers(); pc[0].Contact != "" {
			t.Fatalf("the stranger Carol sees %q", pc[0].Contact)
		}
	})
}

// allSynced reports whether m has n peers and finished a round with each.
func allSynced(m *Mesh, n int) bool {
	ps := m.Peers()
	for _, p := range ps {
		if !p.Synced {
			return false
		}
	}
	return len(ps) == n
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1e9, 0)
	b := newTokenBucket(10, now)
	for i := range 10 {
		if w := b.take(1, now); w != 0 {
			t.Fatalf("take %d within the burst waits %s", i, w)
		}
	}
	if w := b.take(1, now); w != 100*time.Millisecond {
		t.Fatalf("one over the burst waits %s, want 100ms", w)
	}
	if w := b.take(1, now.Add(time.Second)); w != 0 {
		t.Fatalf("after a second's refill, waits %s", w)
	}
}
