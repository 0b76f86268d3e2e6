package node

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

func roomTexts(t *testing.T, n *testNode, ref string) []string {
	t.Helper()
	ms, err := n.RoomMessages(ref)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Sender+": "+m.Text)
	}
	return out
}

// everyone carries every node's envelopes to every other node, twice over
// (answers travel in the second round).
func everyone(t testing.TB, ns ...*testNode) {
	t.Helper()
	for range 2 {
		for _, a := range ns {
			for _, b := range ns {
				if a != b {
					carry(t, a, b)
				}
			}
		}
	}
}

// TestRoomOverPairwiseSessions runs a private group across four nodes:
// Alice creates it and invites Bob, Carol and Dave (her contacts); they
// join; posts reach every member as one envelope each, carried by a
// stranger who is no member; Alice removes Dave, whose node still gets the
// later envelopes and opens none.
func TestRoomOverPairwiseSessions(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol, dave := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk), newTestNode(t, "Dave", clk)
	relay := newTestNode(t, "Relay", clk)
	for _, n := range []*testNode{bob, carol, dave} {
		befriend(t, alice, n)
	}
	info, err := alice.CreateRoom("Rescue team")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Bob", "Carol", "Dave"} {
		if err := alice.InviteToRoom("Rescue team", name); err != nil {
			t.Fatal(err)
		}
	}
	everyone(t, alice, bob, carol, dave)
	for _, n := range []*testNode{bob, carol, dave} {
		inv, err := n.RoomInvitations()
		if err != nil || len(inv) != 1 || inv[0].Name != "Rescue team" || inv[0].From != "Alice" {
			t.Fatalf("%s's invitations: %+v, %v", n.id.Name, inv, err)
		}
		if err := n.JoinRoom("Rescue team"); err != nil {
			t.Fatal(err)
		}
	}
	// Joins reach Alice one by one; each add welcomes the members so far.
	for _, n := range []*testNode{bob, carol, dave} {
		carry(t, n, alice)
		everyone(t, alice, bob, carol, dave)
	}
	if err := alice.InviteToRoom("Rescue team", "Bob"); err == nil {
		t.Fatal("a member was invited again")
	}
	for _, n := range []*testNode{alice, bob, carol, dave} {
		rs, err := n.Rooms()
		if err != nil || len(rs) != 1 || rs[0].ID != info.ID || len(rs[0].Members) != 4 {
			t.Fatalf("%s's rooms: %+v, %v", n.id.Name, rs, err)
		}
	}

	// A post from Bob travels through the relay only.
	m, err := bob.SendRoom("Rescue team", "bridge is out")
	if err != nil {
		t.Fatal(err)
	}
	carry(t, bob, relay)
	for _, n := range []*testNode{alice, carol, dave} {
		rep := carry(t, relay, n)
		want := bob.id.Public().Fingerprint()[:8] + ": bridge is out" // not their contact
		if n == alice {
			want = "Bob: bridge is out"
		}
		if got := roomTexts(t, n, info.ID); !slices.Contains(got, want) {
			t.Fatalf("%s reads %q (%+v)", n.id.Name, got, rep)
		}
	}
	if _, err := relay.Rooms(); err != nil {
		t.Fatal(err)
	}
	envelopeOf(t, relay, m.ID) // the relay carries the one envelope

	// Dave is removed; Carol's next post reaches him and stays closed.
	if err := alice.RemoveFromRoom("Rescue team", "Dave"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, carol)
	cm, err := carol.SendRoom("Rescue team", "meet at the school")
	if err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, carol, dave)
	envelopeOf(t, dave, cm.ID) // Dave holds the envelope
	carolFP := carol.id.Public().Fingerprint()[:8]
	if got := roomTexts(t, alice, info.ID); !slices.Contains(got, "Carol: meet at the school") {
		t.Fatalf("Alice reads %q", got)
	}
	if got := roomTexts(t, bob, info.ID); !slices.Contains(got, carolFP+": meet at the school") {
		t.Fatalf("Bob reads %q", got)
	}
	if got := roomTexts(t, dave, info.ID); slices.Contains(got, carolFP+": meet at the school") || len(got) != 1 {
		t.Fatalf("Dave reads %q after his removal", got)
	}
	if rs, _ := alice.Rooms(); len(rs[0].Members) != 3 {
		t.Fatalf("Alice's room has %d members after the removal", len(rs[0].Members))
	}
	// The state survives a restart.
	bob.reopen()
	if _, err := bob.SendRoom("Rescue team", "after a restart"); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, carol)
	if got := roomTexts(t, carol, info.ID); !slices.Contains(got, bob.id.Public().Fingerprint()[:8]+": after a restart") {
		t.Fatalf("Carol reads %q", got)
	}
}

// roomOf returns a node's only room.
func roomOf(t *testing.T, n *testNode) (RoomInfo, bool) {
	t.Helper()
	rs, err := n.Rooms()
	if err != nil || len(rs) > 1 {
		t.Fatalf("%s's rooms: %+v, %v", n.id.Name, rs, err)
	}
	if len(rs) == 0 {
		return RoomInfo{}, false
	}
	return rs[0], true
}

// TestRoomRenameAdminLeave: Alice renames the room and makes Bob an admin;
// Carol leaves through an admin who is her contact; everyone left agrees, and
// Carol's node no longer has the room.
func TestRoomRenameAdminLeave(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk)
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	befriend(t, bob, carol)
	if _, err := alice.CreateRoom("Clinic"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{bob, carol} {
		if err := alice.InviteToRoom("Clinic", n.id.Name); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol)
		if err := n.JoinRoom("Clinic"); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol)
	}
	if err := bob.RenameRoom("Clinic", "Hijacked"); err == nil {
		t.Fatal("a member who is not an admin renamed the room")
	}
	if err := alice.RenameRoom("Clinic", "Village clinic"); err != nil {
		t.Fatal(err)
	}
	if err := alice.MakeRoomAdmin("Village clinic", "Bob"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, carol)
	for _, n := range []*testNode{alice, bob, carol} {
		r, ok := roomOf(t, n)
		if !ok || r.Name != "Village clinic" || len(r.Members) != 3 {
			t.Fatalf("%s sees %+v", n.id.Name, r)
		}
	}
	if r, _ := roomOf(t, carol); !slices.ContainsFunc(r.Members, func(m RoomMember) bool { return m.Name == "Bob" && m.Admin }) {
		t.Fatalf("Carol does not see Bob as an admin: %+v", r.Members)
	}
	if err := carol.LeaveRoom("Village clinic"); err != nil {
		t.Fatal(err)
	}
	if _, ok := roomOf(t, carol); ok {
		t.Fatal("Carol still has the room after leaving")
	}
	everyone(t, alice, bob, carol)
	for _, n := range []*testNode{alice, bob} {
		r, _ := roomOf(t, n)
		if len(r.Members) != 2 || slices.ContainsFunc(r.Members, func(m RoomMember) bool { return m.Name == "Carol" }) {
			t.Fatalf("%s still lists Carol: %+v", n.id.Name, r.Members)
		}
	}
	if _, err := bob.SendRoom("Village clinic", "two of us now"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, carol)
	if got := roomTexts(t, alice, "Village clinic"); !slices.Contains(got, "Bob: two of us now") {
		t.Fatalf("Alice reads %q", got)
	}
}

// TestOfflineMemberConvergesAtTheNode: Carol is away while Alice adds Erin
// and removes Dave; posts are written meanwhile. When Carol comes back
// everything reaches her in one bundle from Bob (not Alice): she lists the
// same members as Alice and reads the posts of the epochs she is in.
func TestOfflineMemberConvergesAtTheNode(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol, dave, erin := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk),
		newTestNode(t, "Dave", clk), newTestNode(t, "Erin", clk)
	for _, n := range []*testNode{bob, carol, dave, erin} {
		befriend(t, alice, n)
	}
	if _, err := alice.CreateRoom("Team"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{bob, carol, dave} {
		if err := alice.InviteToRoom("Team", n.id.Name); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol, dave)
		if err := n.JoinRoom("Team"); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol, dave)
	}
	// Carol goes away.
	if err := alice.InviteToRoom("Team", "Erin"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, dave, erin)
	if err := erin.JoinRoom("Team"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, dave, erin)
	if _, err := erin.SendRoom("Team", "hello from Erin"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemoveFromRoom("Team", "Dave"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, erin)
	if _, err := bob.SendRoom("Team", "Dave is gone"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, erin)
	// Carol is back: Bob carries everything (Alice's welcomes to her too).
	carry(t, bob, carol)
	want, _ := roomOf(t, alice)
	got, ok := roomOf(t, carol)
	if !ok || got.Epoch != want.Epoch || len(got.Members) != len(want.Members) || len(got.Members) != 4 {
		t.Fatalf("Carol sees %+v, Alice %+v", got, want)
	}
	texts := roomTexts(t, carol, "Team")
	for _, w := range []string{"hello from Erin", "Dave is gone"} {
		if !slices.ContainsFunc(texts, func(s string) bool { return strings.HasSuffix(s, ": "+w) }) {
			t.Fatalf("Carol reads %q, missing %q", texts, w)
		}
	}
}

// TestRefusedChangeLeavesTheRoomAsItWas: a change commit refuses (here, a
// newcomer who is not a contact) leaves the room as it was, so that an
// ingest batch that goes on after the refusal stores no half-made epoch.
func TestRefusedChangeLeavesTheRoomAsItWas(t *testing.T) {
	clk := newTestClock()
	alice, stranger := newTestNode(t, "Alice", clk), newTestNode(t, "Stranger", clk)
	info, err := alice.CreateRoom("Rescue team")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := hex.DecodeString(info.ID)
	m := room.NewMember(stranger.id, [32]byte(g), stranger.id.Sign.Public().(ed25519.PublicKey))
	err = alice.update(func(tx *store.Tx) error {
		r, err := alice.loadRoom(tx, info.ID, true)
		if err != nil {
			return err
		}
		before := r.Head().Hash
		err = alice.commit(tx, r, &room.Change{Kind: room.KindAdd, Member: m}, &m.Ed, func(fp string) (*contactRecord, error) { return loadContact(tx, fp) })
		if !errors.As(err, new(notCommitted)) {
			t.Errorf("adding a stranger: %v, want a refusal", err)
		}
		if r.Head().Hash != before {
			t.Error("the refused change moved the room's head")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
