package mesh

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flynn/noise"

	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/session"
)

// An attacker on the in-memory network: it dials from address self and
// completes the link handshake with a fresh link key (link keys are free).
func attackerLink(t *testing.T, tm *testMesh, self, victim string) (*link.Conn, net.Conn) {
	t.Helper()
	c, err := tm.net.Transport(self).Dial(tm.ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	key, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := link.Client(tm.ctx, c, link.Config{Static: key, Rand: rand.Reader, MaxPayload: func(t byte) int { return session.MaxPayload(session.FrameType(t)) }})
	if err != nil {
		t.Fatal(err)
	}
	return lc, c
}

// hello sends a well-formed Hello of random proofs.
func hello(t *testing.T, lc *link.Conn) {
	t.Helper()
	proofs := make([]byte, node.LinkHelloSize)
	rand.Read(proofs)
	if err := lc.WriteFrame(byte(session.TypeHello), proofs); err != nil {
		t.Fatal(err)
	}
}

// TestPingFloodWithoutReadingIsCut (finding 8): a neighbour sends Pings as
// fast as it can and never reads the Pongs. The node reads it no faster
// than its rate limit, its replies back up, and the link is cut within the
// write timeout instead of growing the node's memory without end.
func TestPingFloodWithoutReadingIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		victim := newTestNode(t, "Victim")
		tm := newTestMesh(t)
		defer tm.stop()
		m, _ := tm.start(victim, "v")
		lc, _ := attackerLink(t, tm, "evil", "v")
		hello(t, lc)
		start := time.Now()
		cut := false
		for range 200000 {
			if err := lc.WriteFrame(byte(session.TypePing), nil); err != nil {
				cut = true
				break
			}
		}
		took := time.Since(start)
		t.Logf("link cut after %s (write timeout %s)", took, m.cfg.WriteTimeout)
		if !cut {
			t.Fatal("the node kept reading 200,000 Pings whose Pongs nobody read")
		}
		if took > 2*m.cfg.WriteTimeout {
			t.Fatalf("the link was cut after %s", took)
		}
		synctest.Wait()
		if n := len(m.Peers()); n != 0 {
			t.Fatalf("%d links left", n)
		}
	})
}

// TestOneHostHoldsItsShare (finding 9): one address opens link after link
// with fresh link keys and keeps them alive. It holds at most MaxPerHost
// links; an honest neighbour still links and befriends the victim.
func TestOneHostHoldsItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		victim, friend := newTestNode(t, "Victim"), newTestNode(t, "Friend")
		tm := newTestMesh(t)
		defer tm.stop()
		m, _ := tm.start(victim, "v")
		var held []*link.Conn
		for range 20 {
			c, err := tm.net.Transport("evil").Dial(tm.ctx, "v")
			if err != nil {
				continue
			}
			key, _ := noise.DH25519.GenerateKeypair(rand.Reader)
			ctx, cancel := context.WithTimeout(tm.ctx, 15*time.Second)
			lc, err := link.Client(ctx, c, link.Config{Static: key, Rand: rand.Reader, MaxPayload: func(t byte) int { return session.MaxPayload(session.FrameType(t)) }})
			cancel()
			if err != nil {
				continue // turned away
			}
			proofs := make([]byte, node.LinkHelloSize)
			rand.Read(proofs)
			if err := lc.WriteFrame(byte(session.TypeHello), proofs); err != nil {
				continue // the victim closed it already: over the share, it was turned away
			}
			held = append(held, lc)
		}
		synctest.Wait()
		fromEvil := 0
		for _, p := range m.Peers() {
			if hostOf(p.Addr) == "evil" {
				fromEvil++
			}
		}
		t.Logf("one address tried 20 links: it holds %d", fromEvil)
		if fromEvil > m.cfg.MaxPerHost {
			t.Fatalf("one address holds %d links, over its share of %d", fromEvil, m.cfg.MaxPerHost)
		}
		tm.start(friend, "f", "v")
		befriend(t, victim, friend, "Victim", "Friend")
		for _, lc := range held {
			lc.Close()
		}
	})
}

// TestSilentConnectionsAreShed (finding 9): 200 connections from 100
// addresses open and say nothing. Handshakes in progress are bounded (and
// each ends after its 10 s deadline); an honest neighbour that arrives
// meanwhile still links once the silent ones time out.
func TestSilentConnectionsAreShed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		victim, friend := newTestNode(t, "Victim"), newTestNode(t, "Friend")
		tm := newTestMesh(t)
		defer tm.stop()
		m, _ := tm.start(victim, "v")
		var conns []net.Conn
		for i := range 200 {
			c, err := tm.net.Transport("silent-"+string(rune('a'+i%100))).Dial(tm.ctx, "v")
			if err == nil {
				conns = append(conns, c)
			}
		}
		synctest.Wait()
		m.mu.Lock()
		shaking := m.shakes
		m.mu.Unlock()
		t.Logf("200 silent connections: %d handshakes in progress (limit %d)", shaking, m.cfg.MaxHandshakes)
		if shaking > m.cfg.MaxHandshakes {
			t.Fatalf("%d handshakes in progress", shaking)
		}
		tm.start(friend, "f", "v") // refused while the slots are full; it redials
		// The silent handshakes time out after 10 s; the friend's backoff
		// brings it back within a minute.
		eventually(t, "Friend links", 2*time.Minute, func() bool {
			return linkedWith(m, "f")
		})
		befriend(t, victim, friend, "Victim", "Friend")
		for _, c := range conns {
			c.Close()
		}
	})
}

// TestForgedBeaconsAimNowhere (finding 11): a beacon could name any host
// and port; the node dials only what a beacon could honestly announce.
func TestForgedBeaconsAimNowhere(t *testing.T) {
	for addr, want := range map[string]bool{
		"[fe80::1%eth0]:7342": true, "169.254.3.4:7342": true, "192.168.1.20:7342": true,
		"10.0.0.1:22": false, "127.0.0.1:7342": false, "[::1]:7342": false, "[ff02::1]:7342": false,
		"0.0.0.0:7342": false, "[2001:db8::1]:7342": false,
	} {
		if got := dialable(mustAddrPort(t, addr)); got != want {
			t.Errorf("dialable(%s) = %v, want %v", addr, got, want)
		}
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestSlowHandshakesYield (the soak's slowloris): forty connections from
// twenty addresses each send a byte a second, never finishing a handshake,
// and reconnect at once when dropped, so every handshake slot is always
// taken. A friend dialling in still links within seconds: the oldest slow
// handshake yields its slot to a newcomer.
func TestSlowHandshakesYield(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		victim, friend := newTestNode(t, "Victim"), newTestNode(t, "Friend")
		tm := newTestMesh(t)
		defer tm.stop()
		m, _ := tm.start(victim, "v")
		ctx, stop := context.WithCancel(tm.ctx)
		var wg sync.WaitGroup
		for i := range 40 {
			tr := tm.net.Transport(fmt.Sprintf("slow-%d", i%20))
			wg.Go(func() {
				for ctx.Err() == nil {
					c, err := tr.Dial(ctx, "v")
					if err != nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					// A well-formed length (32), then the message a byte a
					// second: never wrong, never done within the deadline.
					msg := append([]byte{0, 32}, make([]byte, 32)...)
					for k := 0; ctx.Err() == nil && k < len(msg); k++ {
						if _, err := c.Write(msg[k : k+1]); err != nil {
							break
						}
						time.Sleep(time.Second)
					}
					c.Close()
				}
			})
		}
		time.Sleep(5 * time.Second)
		m.mu.Lock()
		held := m.shakes // a slot or two may be changing hands right now
		m.mu.Unlock()
		if held < m.cfg.MaxHandshakes-2 {
			stop()
			wg.Wait()
			t.Fatalf("the slow connections hold %d handshake slots of %d: the test shows nothing", held, m.cfg.MaxHandshakes)
		}
		began := time.Now()
		tm.start(friend, "f", "v")
		eventually(t, "Friend links", 30*time.Second, func() bool {
			return linkedWith(m, "f")
		})
		t.Logf("with every handshake slot held by slow connections, the friend linked after %v", time.Since(began))
		stop()
		wg.Wait()
	})
}

// linkedWith says whether m has a link up with the node at host.
func linkedWith(m *Mesh, host string) bool {
	for _, p := range m.Peers() {
		if hostOf(p.Addr) == host {
			return true
		}
	}
	return false
}

// TestKeepalivesAreJittered (the passive listener, SPEC §12.3): on an idle
// link a listener who sees only packet times records the node's Pings. They
// come after a random 10–20 s of silence, not every 15.000 s, so their
// timing is no fingerprint of Grapevine.
func TestKeepalivesAreJittered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		victim := newTestNode(t, "Victim")
		tm := newTestMesh(t)
		defer tm.stop()
		tm.start(victim, "v")
		lc, c := attackerLink(t, tm, "listener", "v")
		hello(t, lc)
		var gaps []time.Duration
		last := time.Now()
		for len(gaps) < 20 {
			typ, _, err := lc.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if session.FrameType(typ) != session.TypePing {
				continue // its Hello, the reconciliation
			}
			now := time.Now()
			gaps = append(gaps, now.Sub(last))
			last = now
			if err := lc.WriteFrame(byte(session.TypePong), nil); err != nil { // or it would cut the link
				t.Fatal(err)
			}
		}
		c.Close()
		gaps = gaps[1:] // the first counts from the link-up, not from a Ping
		lo, hi := slices.Min(gaps), slices.Max(gaps)
		t.Logf("19 keepalive gaps from %v to %v", lo, hi)
		if lo < 10*time.Second || hi >= 20*time.Second || hi-lo < 4*time.Second {
			t.Fatalf("keepalive gaps from %v to %v: want random within [10 s, 20 s)", lo, hi)
		}
	})
}
