//go:build linux

package netns

// Nearby (SPEC §15.13) end to end: real nodes in namespaces, driven by the
// CLI's nearby commands.

import (
	"fmt"
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
