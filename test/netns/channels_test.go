//go:build linux

package netns

// Nearby (SPEC §15.13) end to end: real nodes in namespaces, driven by the
// CLI's nearby commands.

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

func (n *gnode) nearby() []node.PublicPost {
	n.t.Helper()
	var ps []node.PublicPost
	n.cliJSON(&ps, "nearby", "--json")
	return ps
}

func (n *gnode) waitNearby(text string) {
	n.t.Helper()
	eventually(n.t, waitLong, fmt.Sprintf("%s to read %q in Nearby", n.label, text), func() (bool, string) {
		ps := n.nearby()
		return slices.ContainsFunc(ps, func(p node.PublicPost) bool { return p.Text == text }), fmt.Sprintf("nearby: %+v", ps)
	})
}

// TestNearbyHopLimit: on a line A–B–C–D of nodes that are not contacts, a
// Nearby post of A with hop limit 2 reaches B and C and not D. A later post
// with hop limit 3 reaching D shows that D synced with C after C held the
// first post: D was offered what C carries, and the first was not among it.
func TestNearbyHopLimit(t *testing.T) {
	requireNetns(t)
	nsA, nsB, nsC, nsD := newNetns(t), newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsB, "169.254.2.1/24", nsC, "169.254.2.2/24")
	veth(t, nsC, "169.254.3.1/24", nsD, "169.254.3.2/24")
	a, b, c, d := newNode(t, nsA, "A"), newNode(t, nsB, "B"), newNode(t, nsC, "C"), newNode(t, nsD, "D")
	b.start("--no-discovery")
	c.start("--no-discovery", "--peer", "169.254.2.1:7342")
	a.start("--no-discovery", "--peer", "169.254.1.1:7342")
	d.start("--no-discovery", "--peer", "169.254.3.1:7342")
	b.waitPeers(2)
	c.waitPeers(2)

	near := "two hops only " + randHex(4)
	a.cli("nearby", "post", near, "--hops", "2")
	b.waitNearby(near)
	c.waitNearby(near)
	far := "three hops " + randHex(4)
	a.cli("nearby", "post", far, "--hops", "3")
	d.waitNearby(far)
	if ps := d.nearby(); slices.ContainsFunc(ps, func(p node.PublicPost) bool { return p.Text == near }) {
		t.Errorf("D, three hops from A, reads the post of hop limit 2: %+v", ps)
	}
	for id := range d.envelopeIDs(false) {
		for _, p := range c.nearby() {
			if p.Text == near && p.ID == id {
				t.Errorf("D carries the envelope %s of the post of hop limit 2", id)
			}
		}
	}
}

// TestUnstampedSpamStopsAtTheFirstRelay: a neighbour of B floods it with
// public posts whose stamps are worthless while A's envelopes for strangers
// cross B to C. B stores none of the spam, C never sees any, and A's
// envelopes all arrive (SPEC §15.12).
func TestUnstampedSpamStopsAtTheFirstRelay(t *testing.T) {
	requireNetns(t)
	nsA, nsB, nsC, nsH := newNetns(t), newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsB, "169.254.2.1/24", nsC, "169.254.2.2/24")
	veth(t, nsH, "169.254.5.2/24", nsB, "169.254.5.1/24")
	a, b, c := newNode(t, nsA, "A"), newNode(t, nsB, "B"), newNode(t, nsC, "C")
	b.start("--no-discovery")
	a.start("--no-discovery", "--peer", "169.254.1.1:7342")
	c.start("--no-discovery", "--peer", "169.254.2.1:7342")

	path := filepath.Join(t.TempDir(), "legit.gvb")
	legit := writeBundle(t, path, randomEnvelopes(50, 300))
	spamIDs := map[string]bool{}
	done := make(chan hostileResult, 1)
	go func() {
		done <- hostile(t, nsH, hostileConfig{Mode: modeSpam, Target: "169.254.5.1:7342", Local: "169.254.5.2", Flood: 500, Size: 200})
	}()
	a.cli("import", path)
	r := <-done
	if !r.Linked || r.Sent != 500 || !(r.Pong || r.Closed) {
		t.Fatalf("the spam did not all reach B: %+v", r)
	}
	eventually(t, waitLong, "C to get A's envelopes across B", func() (bool, string) {
		held := c.envelopeIDs(false)
		n := 0
		for id := range legit {
			if held[id] {
				n++
			}
		}
		return n == len(legit), fmt.Sprintf("C holds %d of A's %d", n, len(legit))
	})
	// The spam the hostile client sent is made afresh in its own process:
	// B and C must hold no public post at all.
	for _, n := range []*gnode{b, c} {
		for _, e := range n.envelopes() {
			if !legit[e.ID] && !e.Own {
				spamIDs[e.ID] = true
			}
		}
	}
	if len(spamIDs) > 0 {
		t.Errorf("B and C hold %d envelopes besides A's: the spam got past the first relay", len(spamIDs))
	}
	if !b.running() {
		t.Error("B is not running")
	}
}
