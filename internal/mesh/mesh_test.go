package mesh

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
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

func newTestNode(t *testing.T, name string) *node.Node {
	t.Helper()
	n, err := node.Init(filepath.Join(t.TempDir(), name), []byte("pw"), name, node.DefaultConfig, node.Options{KDF: store.TestKDF})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// start runs n on the network as addr, dialling peers.
func (tm *testMesh) start(n *node.Node, addr string, peers ...string) (*Mesh, context.CancelFunc) {
	ctx, cancel := context.WithCancel(tm.ctx)
	m := New(n, Config{Listen: addr, Peers: peers, Transport: tm.net.Transport(addr)})
	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		if err := m.Serve(ctx); err != nil {
			tm.t.Errorf("%s: %v", addr, err)
		}
	}()
	return m, cancel
}

func (tm *testMesh) stop() {
	tm.cancel()
	tm.wg.Wait()
}

// eventually polls cond in virtual time.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contactState(t *testing.T, n *node.Node, name string) string {
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
		defer alice.Close()
		defer bob.Close()
		defer carol.Close()
		tm := newTestMesh(t)
		defer tm.stop()
		tm.start(alice, "a")
		tm.start(bob, "b", "a")
		tm.start(carol, "c", "b")

		self, err := carol.Self()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.AddContact(self.Link, ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Carol sees Alice's request", time.Minute, func() bool { return contactState(t, carol, "Alice") == node.StateRequest })
		if _, err := carol.Accept("Alice"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Alice sees the accept", time.Minute, func() bool { return contactState(t, alice, "Carol") == node.StateActive })
		sent, err := alice.Send("Carol", "through the grapevine")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "Carol receives", time.Minute, func() bool { return lastMessage(t, carol).Text == "through the grapevine" })
		eventually(t, "Alice learns it was delivered", time.Minute, func() bool {
			m := lastMessage(t, alice)
			return m.ID == sent.ID && m.Status == node.StatusDelivered
		})
	})
}

// TestCarriedWhileRecipientAway: C is away when A writes; A hands the
// envelope to B and leaves; C comes later, meets only B, and receives it.
func TestCarriedWhileRecipientAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alice, bob, carol := newTestNode(t, "Alice"), newTestNode(t, "Bob"), newTestNode(t, "Carol")
		defer alice.Close()
		defer bob.Close()
		defer carol.Close()
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
		stopAlice()
		time.Sleep(time.Hour) // Alice is gone; an hour passes
		tm.start(carol, "c", "b")
		eventually(t, "Carol sees the request", time.Minute, func() bool { return contactState(t, carol, "Alice") == node.StateRequest })
		if _, err := carol.Accept("Alice"); err != nil { // a request's messages show once accepted
			t.Fatal(err)
		}
		if got := lastMessage(t, carol).Text; got != "see you tomorrow" {
			t.Fatalf("Carol's last message is %q", got)
		}
	})
}
