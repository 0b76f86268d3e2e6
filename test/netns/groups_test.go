//go:build linux

package netns

// Private groups (SPEC §15) end to end: real nodes in namespaces, driven by
// the CLI's groups, send --group and messages --group commands.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// groupMesh is five nodes: A, the group's admin, linked to the relay B,
// which is no member and no one's contact; B to C; C to D and to E. A reaches
// C in two hops and D and E in three, always through B.
//
//	A — B — C — D
//	         \
//	          E
type groupMesh struct {
	t                *testing.T
	a, b, c, d, e    *gnode
	group            string // the group's name
	members, outside []*gnode
}

// groupList is `groups --json`.
type groupList struct {
	Groups      []node.RoomInfo       `json:"groups"`
	Invitations []node.RoomInvitation `json:"invitations"`
}

// newGroupMesh starts the five nodes, makes C, D and E contacts of A, and
// has A make a group that the given members (of C, D, E) join.
func newGroupMesh(t *testing.T, members ...string) *groupMesh {
	t.Helper()
	nsA, nsB, nsC, nsD, nsE := newNetns(t), newNetns(t), newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	veth(t, nsB, "169.254.2.1/24", nsC, "169.254.2.2/24")
	veth(t, nsC, "169.254.3.1/24", nsD, "169.254.3.2/24")
	veth(t, nsC, "169.254.4.1/24", nsE, "169.254.4.2/24")
	g := &groupMesh{t: t, a: newNode(t, nsA, "A"), b: newNode(t, nsB, "B"), c: newNode(t, nsC, "C"),
		d: newNode(t, nsD, "D"), e: newNode(t, nsE, "E"), group: "Rescue " + randHex(4)}
	g.b.start("--no-discovery")
	g.a.start("--no-discovery", "--peer", "169.254.1.1:7342")
	g.c.start("--no-discovery", "--peer", "169.254.2.1:7342")
	g.d.start("--no-discovery", "--peer", "169.254.3.1:7342")
	g.e.start("--no-discovery", "--peer", "169.254.4.1:7342")
	g.b.waitPeers(2)
	g.c.waitPeers(3)

	// C, D and E become A's contacts (not each other's, nor B's).
	others := []*gnode{g.c, g.d, g.e}
	for _, n := range others {
		g.a.add(n)
	}
	for _, n := range others {
		n.waitContact(g.a.name, node.StateRequest)
		n.cli("contacts", "accept", g.a.name)
	}
	for _, n := range others {
		g.a.waitContact(n.name, node.StateActive)
	}

	g.a.cli("groups", "create", g.group)
	g.members = []*gnode{g.a}
	for _, n := range others {
		if slices.Contains(members, n.label) {
			g.members = append(g.members, n)
		} else {
			g.outside = append(g.outside, n)
		}
	}
	for _, n := range g.members[1:] {
		g.invite(n)
	}
	g.waitMembers(g.members, len(g.members))
	return g
}

// invite has A invite n, and n join once the invitation has arrived.
func (g *groupMesh) invite(n *gnode) {
	g.t.Helper()
	g.a.cli("groups", "add", g.group, n.name)
	eventually(g.t, waitLong, n.label+" to receive the invitation", func() (bool, string) {
		l := n.groupList()
		return slices.ContainsFunc(l.Invitations, func(i node.RoomInvitation) bool { return i.Name == g.group }),
			fmt.Sprintf("groups: %+v", l)
	})
	n.cli("groups", "join", g.group)
}

func (n *gnode) groupList() groupList {
	n.t.Helper()
	var l groupList
	n.cliJSON(&l, "groups", "--json")
	return l
}

// show is `groups show GROUP --json`; ok is false if the node is not in it.
func (n *gnode) show(group string) (node.RoomInfo, bool) {
	n.t.Helper()
	var r node.RoomInfo
	_, _, err := n.try(&r, "groups", "show", group, "--json")
	return r, err == nil
}

// roster is what every member must agree on: name, epoch, and each member's
// fingerprint with its admin flag.
func roster(r node.RoomInfo) string {
	var ms []string
	for _, m := range r.Members {
		ms = append(ms, fmt.Sprintf("%s:%v", m.Fingerprint[:8], m.Admin))
	}
	slices.Sort(ms)
	return fmt.Sprintf("%q epoch %d: %s", r.Name, r.Epoch, strings.Join(ms, " "))
}

// waitMembers waits until every node of ns lists the group with size
// members, all alike.
func (g *groupMesh) waitMembers(ns []*gnode, size int) string {
	g.t.Helper()
	var want string
	eventually(g.t, waitLong, fmt.Sprintf("%d nodes to agree on a group of %d", len(ns), size), func() (bool, string) {
		var views []string
		agree := true
		for _, n := range ns {
			r, ok := n.show(g.group)
			if !ok || len(r.Members) != size {
				agree = false
			}
			views = append(views, n.label+": "+roster(r))
		}
		for _, v := range views[1:] {
			agree = agree && strings.SplitN(v, ": ", 2)[1] == strings.SplitN(views[0], ": ", 2)[1]
		}
		want = strings.SplitN(views[0], ": ", 2)[1]
		return agree, strings.Join(views, "; ")
	})
	return want
}

// post has n write text to the group and returns the envelope's ID.
func (g *groupMesh) post(n *gnode, text string) string {
	g.t.Helper()
	n.cli("send", "--group", g.group, text)
	for _, m := range n.posts(g.group) {
		if m.Text == text && m.Direction == "out" {
			return m.ID
		}
	}
	g.t.Fatalf("%s does not list its own post %q", n.label, text)
	return ""
}

func (n *gnode) posts(group string) []node.RoomMessage {
	n.t.Helper()
	var ms []node.RoomMessage
	n.cliJSON(&ms, "messages", "--group", group, "--json")
	return ms
}

// waitPost waits until n reads text in the group, written by from.
func (g *groupMesh) waitPost(n *gnode, text, from string) {
	g.t.Helper()
	eventually(g.t, waitLong, fmt.Sprintf("%s to read %q", n.label, text), func() (bool, string) {
		ms := n.posts(g.group)
		return slices.ContainsFunc(ms, func(m node.RoomMessage) bool { return m.Text == text && m.Sender == from }),
			fmt.Sprintf("posts: %+v", ms)
	})
}

// sender is how n names the writer w: "me", a contact's name, or the start
// of w's fingerprint.
func sender(n, w *gnode) string {
	switch {
	case n == w:
		return "me"
	case n.label == "A":
		return w.name
	case w.label == "A":
		return w.name
	}
	return w.self().Fingerprint[:8]
}

// TestGroupThroughRelay: a group of four (A, C, D, E) over a line of three
// hops, every path between A and the others through B, which is no member.
// Each member posts; every post reaches every member, with its writer. B
// carried the posts' envelopes and opened none: it lists no group, no post,
// and its home holds neither the texts nor the group's name.
func TestGroupThroughRelay(t *testing.T) {
	requireNetns(t)
	// Not parallel (nor the two group tests below): five nodes start at once,
	// each making an identity with a memory-hard KDF, which would slow the
	// timing-sensitive tests that run in parallel (TestPassiveListener).
	g := newGroupMesh(t, "C", "D", "E")
	a, b := g.a, g.b
	texts := map[*gnode]string{}
	ids := map[string]bool{}
	for _, n := range g.members {
		texts[n] = fmt.Sprintf("%s to the group %s", n.label, randHex(6))
		ids[g.post(n, texts[n])] = true
	}
	for _, n := range g.members {
		for w, text := range texts {
			g.waitPost(n, text, sender(n, w))
		}
		if ms := n.posts(g.group); len(ms) != len(texts) {
			t.Errorf("%s lists %d posts, want %d: %+v", n.label, len(ms), len(texts), ms)
		}
	}

	// B carried every post, one envelope each, and read none.
	eventually(t, waitLong, "B to hold the posts' envelopes", func() (bool, string) {
		held := b.envelopeIDs(false)
		return hasAll(held, ids), fmt.Sprintf("posts %v, B holds %v", keys(ids), keys(held))
	})
	if l := b.groupList(); len(l.Groups) != 0 || len(l.Invitations) != 0 {
		t.Errorf("B, no member, lists %+v", l)
	}
	if _, ok := b.show(g.group); ok {
		t.Errorf("B shows the group")
	}
	if ms := b.messages(); len(ms) != 0 {
		t.Errorf("B has messages: %+v", ms)
	}
	if ps := a.peers(); len(ps) != 1 || !strings.HasPrefix(ps[0].Addr, "169.254.1.1:") {
		t.Errorf("A's neighbours: %+v, want B alone", ps)
	}
	needles := []string{g.group, a.name}
	for _, text := range texts {
		needles = append(needles, text)
	}
	for path, found := range grepTree(t, b.home, needles...) {
		t.Errorf("B's %s holds %q in plaintext", path, found)
	}
}

// TestGroupRemovedMemberOpensNothing: A removes E. The others agree on three
// members; C's next post and A's reach E's node (it syncs everything from C)
// and open there for no one but the members: E lists neither, and still shows
// the group as it was before its removal.
func TestGroupRemovedMemberOpensNothing(t *testing.T) {
	requireNetns(t)
	g := newGroupMesh(t, "C", "D", "E")
	a, c, d, e := g.a, g.c, g.d, g.e
	before := g.post(c, "before the removal "+randHex(6))
	for _, n := range []*gnode{a, d, e} {
		eventually(t, waitLong, n.label+" to read C's first post", func() (bool, string) {
			ms := n.posts(g.group)
			return slices.ContainsFunc(ms, func(m node.RoomMessage) bool { return m.ID == before }), fmt.Sprintf("%+v", ms)
		})
	}
	old, _ := e.show(g.group)

	a.cli("groups", "remove", g.group, e.name)
	g.waitMembers([]*gnode{a, c, d}, 3)
	after := map[string]string{}
	for _, n := range []*gnode{c, a} {
		text := fmt.Sprintf("%s after the removal %s", n.label, randHex(6))
		after[g.post(n, text)] = text
		g.waitPost(d, text, sender(d, n))
	}
	eventually(t, waitLong, "E to hold the later posts' envelopes", func() (bool, string) {
		held := e.envelopeIDs(false)
		for id := range after {
			if !held[id] {
				return false, fmt.Sprintf("E holds %v", keys(held))
			}
		}
		return true, ""
	})
	ms := e.posts(g.group)
	for _, m := range ms {
		if _, later := after[m.ID]; later {
			t.Errorf("E, removed, opened %+v", m)
		}
	}
	if len(ms) != 1 || ms[0].ID != before {
		t.Errorf("E lists %+v, want C's first post alone", ms)
	}
	if now, ok := e.show(g.group); !ok || roster(now) != roster(old) {
		t.Errorf("E's view moved after its removal: %s, was %s", roster(now), roster(old))
	}
	for _, text := range after {
		for path, found := range grepTree(t, e.home, text) {
			t.Errorf("E's %s holds %q in plaintext", path, found)
		}
	}
}

// TestGroupOfflineMemberConverges: the group is A, C and D. D is down while
// A adds E (who joins) and removes C: two membership changes, whose keys for
// D wait on C, its only neighbour — C still carries them after its own
// removal, unable to read them. D comes back and converges on the same
// name, epoch, members and admins as A and E, and reads the post written
// meanwhile.
func TestGroupOfflineMemberConverges(t *testing.T) {
	requireNetns(t)
	g := newGroupMesh(t, "C", "D")
	a, c, d, e := g.a, g.c, g.d, g.e
	d.stop()

	g.invite(e)
	g.waitMembers([]*gnode{a, c, e}, 4)
	a.cli("groups", "remove", g.group, c.name)
	want := g.waitMembers([]*gnode{a, e}, 3)
	text := "while D was away " + randHex(6)
	g.post(e, text)
	g.waitPost(a, text, e.name)

	d.start("--no-discovery", "--peer", "169.254.3.1:7342")
	if got := g.waitMembers([]*gnode{a, d, e}, 3); got != want {
		t.Errorf("D converged on %s, A and E were at %s", got, want)
	}
	g.waitPost(d, text, sender(d, e))
	if r, _ := d.show(g.group); slices.ContainsFunc(r.Members, func(m node.RoomMember) bool { return m.Name == c.name }) {
		t.Errorf("D still lists C: %+v", r.Members)
	}
	if ms := c.posts(g.group); slices.ContainsFunc(ms, func(m node.RoomMessage) bool { return m.Text == text }) {
		t.Errorf("C, removed, read %q", text)
	}
}
