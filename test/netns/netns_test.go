//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Every test runs in namespaces of its own, so they run in parallel.
//
// Addresses: each veth pair is a /24 of 169.254.0.0/16, the node in the
// middle (B) being .1 on each of its links.

// offline runs a command on a home whose node does not run, unlocking the
// store in-process with the passphrase.
func (n *gnode) offline(args ...string) string {
	n.t.Helper()
	out, _, err := n.cliCmd([]string{"GRAPEVINE_PASSPHRASE=" + passphrase}, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func tc(t *testing.T, ns *netns, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name, "tc"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tc %s in %s: %v\n%s", strings.Join(args, " "), ns.name, err, out)
	}
}

// TestLine: A–B–C in a line, linked by LAN discovery alone; A and C have no
// link. A adds C, C accepts, A writes; the message reaches C through B and
// its receipt comes back. B, which carried everything, holds no plaintext.
func TestLine(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	nsA, nsB, nsC := newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsB, "169.254.2.1/24", nsC, "169.254.2.2/24")
	a, b, c := newNode(t, nsA, "A"), newNode(t, nsB, "B"), newNode(t, nsC, "C")
	for _, n := range []*gnode{a, b, c} {
		n.start() // listening on :7342, discovery on every interface
	}
	b.waitPeers(2)
	a.waitPeers(1)
	c.waitPeers(1)

	a.add(c)
	c.waitContact(a.name, node.StateRequest)
	c.cli("contacts", "accept", a.name)
	a.waitContact(c.name, node.StateActive)
	text := "over the hill via B " + randHex(8)
	a.send(c, text)
	c.waitMessage(text, a.name, node.StatusReceived)
	a.waitMessage(text, c.name, node.StatusDelivered)

	// The only way was through B, which saw every envelope go by.
	if ps := a.peers(); len(ps) != 1 {
		t.Errorf("A has %d neighbours, want only B: %+v", len(ps), ps)
	}
	if ps := c.peers(); len(ps) != 1 {
		t.Errorf("C has %d neighbours, want only B: %+v", len(ps), ps)
	}
	var carried int
	for _, p := range b.peers() {
		carried += p.EnvelopesReceived
	}
	if carried < 4 { // request, accept, message, receipt at least
		t.Errorf("B received %d envelopes from its neighbours, want at least 4", carried)
	}
	if cs := b.contacts(); len(cs) != 0 {
		t.Errorf("B has contacts: %+v", cs)
	}
	if ms := b.messages(); len(ms) != 0 {
		t.Errorf("B has messages: %+v", ms)
	}
	// B's home, running or stopped, holds neither the text nor the names.
	check := func(when string) {
		for path, found := range grepTree(t, b.home, text, a.name, c.name) {
			t.Errorf("%s: B's %s holds %q in plaintext", when, path, found)
		}
	}
	check("while running")
	b.stop()
	check("after stopping")
	// A and C keep the text and each other's names, but sealed in their stores.
	for _, n := range []*gnode{a, c} {
		n.stop()
		for path, found := range grepTree(t, n.home, text, a.name, c.name) {
			t.Errorf("%s's %s holds %q in plaintext", n.label, path, found)
		}
	}
}

// TestCarry: C is down when A writes. B takes A's envelopes, A stops; C comes
// up later, meets only B and gets everything; once A is back, the receipt
// and the acceptance reach it through B.
func TestCarry(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	nsA, nsB, nsC := newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsB, "169.254.2.1/24", nsC, "169.254.2.2/24")
	a, b, c := newNode(t, nsA, "A"), newNode(t, nsB, "B"), newNode(t, nsC, "C")
	toB := []string{"--no-discovery", "--peer", "169.254.1.1:7342"}

	// C exists, but its node does not run.
	c.offline("init", "--name", c.name, "--receipt-delay", "1s")
	var cSelf node.Self
	if err := json.Unmarshal([]byte(c.offline("id", "--json")), &cSelf); err != nil || cSelf.Name != c.name || cSelf.Link == "" {
		t.Fatalf("C's id --json: %+v, %v", cSelf, err)
	}
	cLink := cSelf.Link

	b.start("--no-discovery")
	a.start(toB...)
	a.waitPeers(1)
	a.cli("contacts", "add", cLink)
	text := "while you were away " + randHex(8)
	a.cli("send", c.name, text)
	own := a.envelopeIDs(true)
	if len(own) < 2 {
		t.Fatalf("A holds %d own envelopes after a request and a message, want 2", len(own))
	}
	eventually(t, waitLong, "B to carry A's envelopes", func() (bool, string) {
		held := b.envelopeIDs(false)
		return hasAll(held, own), fmt.Sprintf("A's own %v, B holds %v", keys(own), keys(held))
	})
	if st := b.status(); st.Carried < len(own) {
		t.Errorf("B's status: carried %d, want at least %d", st.Carried, len(own))
	}
	a.stop() // exits cleanly, with status 0

	c.start("--no-discovery", "--peer", "169.254.2.1:7342")
	c.waitPeers(1)
	// Once synced, what C lacks comes at once (not with the next keepalive).
	c.waitContactWithin(prompt, a.name, node.StateRequest)
	if m, ok := c.message(text); ok {
		t.Errorf("C shows a message of a request not yet accepted: %+v", m)
	}
	c.cli("contacts", "accept", a.name)
	c.waitMessage(text, a.name, node.StatusReceived)

	a.start(toB...)
	a.waitPeers(1)
	a.waitMessageWithin(prompt, text, c.name, node.StatusDelivered)
	a.waitContact(c.name, node.StateActive)
	if ps := c.peers(); len(ps) != 1 || !strings.HasPrefix(ps[0].Addr, "169.254.2.1:") {
		t.Errorf("C's neighbours: %+v, want B alone", ps)
	}
}

// TestIslands: two islands, A1–B1 and A2–B2, each with traffic of its own
// and mail for the other island, which waits. A link between B1 and B2 added
// at runtime is found by discovery; then all the mail arrives, receipts come
// back, and the nodes converge on the same envelopes.
func TestIslands(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	nsA1, nsB1, nsA2, nsB2 := newNetns(t), newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA1, "169.254.1.2/24", nsB1, "169.254.1.1/24")
	veth(t, nsA2, "169.254.2.2/24", nsB2, "169.254.2.1/24")
	a1, b1 := newNode(t, nsA1, "A1"), newNode(t, nsB1, "B1")
	a2, b2 := newNode(t, nsA2, "A2"), newNode(t, nsB2, "B2")
	b1.start() // discovery on
	b2.start()
	a1.start("--no-discovery", "--peer", "169.254.1.1:7342")
	a2.start("--no-discovery", "--peer", "169.254.2.1:7342")
	a1.waitPeers(1)
	a2.waitPeers(1)

	// Mail for the other island: A1 to A2, B2 to B1. An invite's prekey
	// serves one accepted request, so each takes the invite shown when it
	// adds: A1 writes to A2 before the islands' own traffic, B2 to B1 after
	// (B1's first invite went to A1).
	x1, x2 := "A1 to A2 across "+randHex(8), "B2 to B1 across "+randHex(8)
	a1.add(a2)
	a1.send(a2, x1)
	cross1 := a1.envelopeIDs(true)

	// Each island's own traffic, both ways.
	island := func(a, b *gnode) {
		t1, t2 := a.label+" to "+b.label+" "+randHex(8), b.label+" to "+a.label+" "+randHex(8)
		a.add(b)
		a.send(b, t1)
		b.waitContact(a.name, node.StateRequest)
		b.cli("contacts", "accept", a.name)
		b.send(a, t2)
		b.waitMessage(t1, a.name, node.StatusReceived)
		a.waitMessage(t2, b.name, node.StatusReceived)
		a.waitMessage(t1, b.name, node.StatusDelivered)
		b.waitMessage(t2, a.name, node.StatusDelivered)
	}
	island(a1, b1)
	island(a2, b2)
	before := b2.envelopeIDs(true)
	b2.add(b1)
	b2.send(b1, x2)
	cross2 := map[string]bool{}
	for id := range b2.envelopeIDs(true) {
		if !before[id] {
			cross2[id] = true
		}
	}

	// The cross mail waits on its own island.
	for _, w := range []struct {
		ids       map[string]bool
		here, far []*gnode
	}{{cross1, []*gnode{a1, b1}, []*gnode{a2, b2}}, {cross2, []*gnode{a2, b2}, []*gnode{a1, b1}}} {
		for _, n := range w.here {
			eventually(t, waitLong, n.label+" to hold the mail for the other island", func() (bool, string) {
				held := n.envelopeIDs(false)
				return hasAll(held, w.ids), fmt.Sprintf("want %v, holds %v", keys(w.ids), keys(held))
			})
		}
		for _, n := range w.far {
			if held := n.envelopeIDs(false); hasAny(held, w.ids) {
				t.Fatalf("%s holds mail of the other island before they were joined", n.label)
			}
		}
	}
	if _, ok := a2.contact(a1.name); ok {
		t.Fatalf("A2 knows A1 before the islands were joined")
	}
	if m, ok := b1.message(x2); ok {
		t.Fatalf("B1 got %+v before the islands were joined", m)
	}

	// Join them: a new interface on each side, found by discovery.
	veth(t, nsB1, "169.254.3.1/24", nsB2, "169.254.3.2/24")
	b1.waitPeers(2)
	b2.waitPeers(2)
	a2.waitContact(a1.name, node.StateRequest)
	b1.waitContact(b2.name, node.StateRequest)
	a2.cli("contacts", "accept", a1.name)
	b1.cli("contacts", "accept", b2.name)
	a2.waitMessage(x1, a1.name, node.StatusReceived)
	b1.waitMessage(x2, b2.name, node.StatusReceived)
	a1.waitMessage(x1, a2.name, node.StatusDelivered)
	b2.waitMessage(x2, b1.name, node.StatusDelivered)
	a1.waitContact(a2.name, node.StateActive)
	b2.waitContact(b1.name, node.StateActive)

	// Everyone ends up holding the same envelopes (the receipts, now).
	all := []*gnode{a1, b1, a2, b2}
	eventually(t, waitLong, "the four nodes to hold the same envelopes", func() (bool, string) {
		sets := make([]map[string]bool, len(all))
		var desc []string
		for i, n := range all {
			sets[i] = n.envelopeIDs(false)
			desc = append(desc, fmt.Sprintf("%s: %v", n.label, keys(sets[i])))
		}
		for _, s := range sets[1:] {
			if !maps.Equal(s, sets[0]) {
				return false, strings.Join(desc, "; ")
			}
		}
		return len(sets[0]) > 0, strings.Join(desc, "; ")
	})
}

// TestKillMidSync: B syncs 30,000 envelopes from A over a slowed link and is
// killed with SIGKILL halfway. Restarted, it has everything it had accepted
// (the API answers from committed state only) and opens cleanly; linked to A
// again, it completes the sync.
func TestKillMidSync(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	const total = 30000
	nsA, nsB := newNetns(t), newNetns(t)
	ifA, _ := veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	a, b := newNode(t, nsA, "A"), newNode(t, nsB, "B")
	a.start("--no-discovery")

	path := filepath.Join(t.TempDir(), "strangers.gvb")
	ids := writeBundle(t, path, randomEnvelopes(total, 16))
	var rep node.ImportReport
	a.cliJSON(&rep, "import", "--json", path)
	if rep.New != total {
		t.Fatalf("A imported %+v, want %d new", rep, total)
	}
	if st := a.status(); st.Carried != total {
		t.Fatalf("A carries %d, want %d", st.Carried, total)
	}

	// About 3 MB from A to B at 2 Mbit/s: some 13 s, plenty to interrupt.
	// (A token bucket rather than netem, which not every kernel has.)
	tc(t, nsA, "qdisc", "add", "dev", ifA, "root", "tbf", "rate", "2mbit", "burst", "32kbit", "latency", "1s")
	toA := []string{"--no-discovery", "--peer", "169.254.1.2:7342"}
	b.start(toA...)
	var k int
	eventually(t, time.Minute, "B to hold some but not all", func() (bool, string) {
		st := b.status()
		if st.Carried > total*8/10 {
			t.Fatalf("B got %d of %d before it could be interrupted: the link is too fast", st.Carried, total)
		}
		k = st.Carried
		return k >= total/10, fmt.Sprintf("B carries %d", k)
	})
	b.kill()
	t.Logf("B killed holding %d of %d", k, total)

	// Alone (no peer, no discovery, and A dials nobody), nothing can arrive.
	logged := len(b.logText())
	b.start("--no-discovery")
	st := b.status()
	if st.Carried < k {
		t.Errorf("B carries %d after restarting, had accepted %d before SIGKILL", st.Carried, k)
	}
	held := b.envelopeIDs(false)
	if len(held) != st.Carried {
		t.Errorf("B lists %d envelopes, its status says %d", len(held), st.Carried)
	}
	for id := range held {
		if !ids[id] {
			t.Errorf("B holds %s, which A never had", id)
			break
		}
	}
	t.Logf("B holds %d after restarting", st.Carried)
	b.stop()
	if log := b.logText()[logged:]; strings.Contains(log, "level=ERROR") || strings.Contains(log, "level=WARN") {
		t.Errorf("B logged errors or warnings after restarting:\n%s", log)
	}

	tc(t, nsA, "qdisc", "del", "dev", ifA, "root")
	b.start(toA...)
	eventually(t, time.Minute, "B to hold all", func() (bool, string) {
		st := b.status()
		return st.Carried == total, fmt.Sprintf("B carries %d of %d", st.Carried, total)
	})
	if held := b.envelopeIDs(false); !maps.Equal(held, ids) {
		t.Errorf("B holds %d envelopes, not the %d of the bundle", len(held), len(ids))
	}
}

// TestHostile: a neighbour H sends B garbage, frames of unknown types,
// oversized frames, or nothing at all. B cuts each such connection (and
// refuses the address for a while after a protocol violation), and goes on
// serving A and C, who write to each other through it all along.
func TestHostile(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	nsA, nsB, nsC, nsH := newNetns(t), newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsC, "169.254.2.2/24", nsB, "169.254.2.1/24")
	ifH, _ := veth(t, nsH, "169.254.5.2/24", nsB, "169.254.5.1/24")
	// One address per misbehaviour, since B refuses an address that broke
	// the protocol.
	hAddr := func(i int) string { return fmt.Sprintf("169.254.5.%d", 10+i) }
	for i := range 8 {
		ipCmd(t, "-n", nsH.name, "addr", "add", hAddr(i)+"/24", "dev", ifH)
	}
	a, b, c := newNode(t, nsA, "A"), newNode(t, nsB, "B"), newNode(t, nsC, "C")
	b.start("--no-discovery")
	a.start("--no-discovery", "--peer", "169.254.1.1:7342")
	c.start("--no-discovery", "--peer", "169.254.2.1:7342")
	b.waitPeers(2)

	// The hostile neighbour, all along.
	type step struct {
		cfg hostileConfig
		res hostileResult
	}
	var steps []step
	var mu sync.Mutex
	run := func(mode string, i int) hostileResult {
		cfg := hostileConfig{Mode: mode, Target: "169.254.5.1:7342", Local: hAddr(i)}
		r := hostile(t, nsH, cfg)
		mu.Lock()
		steps = append(steps, step{cfg, r})
		mu.Unlock()
		return r
	}
	done := make(chan struct{})
	t.Cleanup(func() { <-done }) // before the namespaces go; each step is bounded
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() { run(modeSilent, 0) }) // takes the handshake timeout
		run(modePing, 1)
		run(modeGarbage, 2)
		run(modeRefused, 2)
		run(modeGarbage3, 3)
		run(modeBadType, 4)
		run(modeRefused, 4)
		run(modeOversize, 5)
		run(modeRefused, 5)
		wg.Wait()
		run(modePing, 6) // a fresh address is served
	}()

	// Meanwhile A and C become contacts and write through B.
	a.add(c)
	c.waitContact(a.name, node.StateRequest)
	c.cli("contacts", "accept", a.name)
	text1 := "during the attack " + randHex(8)
	a.send(c, text1)
	c.waitMessage(text1, a.name, node.StatusReceived)
	a.waitMessage(text1, c.name, node.StatusDelivered)

	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the hostile client did not finish")
	}
	text2 := "after the attack " + randHex(8)
	c.send(a, text2)
	a.waitMessage(text2, c.name, node.StatusReceived)
	c.waitMessage(text2, a.name, node.StatusDelivered)

	if !b.running() {
		t.Fatal("B is not running")
	}
	ps := b.waitPeers(2)
	for _, p := range ps {
		if strings.HasPrefix(p.Addr, "169.254.5.") {
			t.Errorf("B still lists the hostile neighbour: %+v", p)
		}
	}

	const handshakeTimeout = 10 // seconds, link.DefaultHandshakeTimeout
	mu.Lock()
	defer mu.Unlock()
	if len(steps) != 10 {
		t.Fatalf("%d hostile steps ran, want 10", len(steps))
	}
	for _, s := range steps {
		what := fmt.Sprintf("%s from %s", s.cfg.Mode, s.cfg.Local)
		r := s.res
		switch s.cfg.Mode {
		case modePing:
			if !r.Linked || !r.Pong {
				t.Errorf("%s: B did not answer a proper client: %+v", what, r)
			}
			continue
		case modeBadType, modeOversize:
			if !r.Linked {
				t.Errorf("%s: the handshake failed: %+v", what, r)
			}
		}
		if !r.Closed {
			t.Errorf("%s: B did not close the connection: %+v", what, r)
			continue
		}
		switch s.cfg.Mode {
		case modeSilent: // after the handshake timeout, not before
			if r.After < handshakeTimeout-1 || r.After > handshakeTimeout+5 {
				t.Errorf("%s: closed after %.1f s, want the handshake timeout (%d s)", what, r.After, handshakeTimeout)
			}
		case modeRefused: // penalised: dropped at once
			if r.After > 2 {
				t.Errorf("%s: closed after %.1f s, want at once", what, r.After)
			}
		default: // a violation: closed well before any timeout
			if r.After > handshakeTimeout/2 {
				t.Errorf("%s: closed after %.1f s, want at once", what, r.After)
			}
		}
	}
}

// TestFlood: a neighbour floods B, whose relay quota is 1 MiB, with twice
// that in valid-looking envelopes. B stays within its quota, and evicts the
// flood rather than what a legitimate neighbour handed it.
func TestFlood(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	const quota = 1 << 20
	nsA, nsB, nsH := newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsH, "169.254.5.2/24", nsB, "169.254.5.1/24")
	a, b := newNode(t, nsA, "A"), newNode(t, nsB, "B")
	b.start("--no-discovery", "--relay-quota", "1MiB")
	a.start("--no-discovery", "--peer", "169.254.1.1:7342")

	// A hands B 100 envelopes of about 1 KiB for strangers: a tenth of its quota.
	path := filepath.Join(t.TempDir(), "legit.gvb")
	legit := writeBundle(t, path, randomEnvelopes(100, 900))
	a.cli("import", path)
	eventually(t, waitLong, "B to carry A's envelopes", func() (bool, string) {
		held := b.envelopeIDs(false)
		return hasAll(held, legit), fmt.Sprintf("B holds %d", len(held))
	})

	r := hostile(t, nsH, hostileConfig{Mode: modeFlood, Target: "169.254.5.1:7342", Local: "169.254.5.2", Flood: 2000, Size: 900})
	if !r.Linked || !r.Pong || r.Sent != 2000 {
		t.Fatalf("the flood did not go through: %+v", r)
	}
	// B stores what it took in the background: wait until it has settled,
	// within its quota all along.
	var st, prev status
	eventually(t, waitLong, "B to settle after the flood", func() (bool, string) {
		st = b.status()
		if st.CarriedBytes > quota {
			t.Fatalf("B carries %d bytes, over its quota of %d", st.CarriedBytes, quota)
		}
		settled := st.Carried > len(legit) && st.Carried == prev.Carried && st.CarriedBytes == prev.CarriedBytes
		prev = st
		if !settled {
			time.Sleep(time.Second)
		}
		return settled, fmt.Sprintf("B carries %d envelopes, %d bytes", st.Carried, st.CarriedBytes)
	})
	t.Logf("B after the flood: carried %d envelopes, %d bytes, from %d sources", st.Carried, st.CarriedBytes, st.CarriedFrom)
	held := b.envelopeIDs(false)
	var lost int
	for id := range legit {
		if !held[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("B evicted %d of A's %d envelopes to make room for the flood", lost, len(legit))
	}
	if !b.running() {
		t.Error("B is not running")
	}
}

func hasAll(set, want map[string]bool) bool {
	for id := range want {
		if !set[id] {
			return false
		}
	}
	return true
}

func hasAny(set, want map[string]bool) bool {
	for id := range want {
		if set[id] {
			return true
		}
	}
	return false
}

// keys lists IDs shortened, sorted, for messages.
func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id[:min(8, len(id))])
	}
	slices.Sort(out)
	return out
}
