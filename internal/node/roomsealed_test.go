package node

import (
	"slices"
	"testing"
)

// TestRemovalReachesMembersAnotherAdminAdded: Alice made Bob an admin, and
// Bob added Dave, who is no contact of Alice's. Alice removes Carol: Dave
// gets the new epoch by sealed welcomes in a group message of the old one
// (SPEC §15.4) and reads Alice's next post; Carol reads none of it. Before
// sealed welcomes the removal failed ("not an active contact").
func TestRemovalReachesMembersAnotherAdminAdded(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol, dave := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk), newTestNode(t, "Dave", clk)
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	befriend(t, bob, dave)
	befriend(t, bob, carol)
	all := []*testNode{alice, bob, carol, dave}
	info, err := alice.CreateRoom("Clinic")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Bob", "Carol"} {
		if err := alice.InviteToRoom("Clinic", name); err != nil {
			t.Fatal(err)
		}
		everyone(t, all...)
		n := map[string]*testNode{"Bob": bob, "Carol": carol}[name]
		if err := n.JoinRoom("Clinic"); err != nil {
			t.Fatal(err)
		}
		everyone(t, all...)
	}
	if err := alice.MakeRoomAdmin("Clinic", "Bob"); err != nil {
		t.Fatal(err)
	}
	everyone(t, all...)
	if err := bob.InviteToRoom("Clinic", "Dave"); err != nil {
		t.Fatal(err)
	}
	everyone(t, all...)
	if err := dave.JoinRoom("Clinic"); err != nil {
		t.Fatal(err)
	}
	everyone(t, all...)
	for _, n := range all {
		if rs, err := n.Rooms(); err != nil || len(rs) != 1 || len(rs[0].Members) != 4 {
			t.Fatalf("%s's rooms before the removal: %+v, %v", n.id.Name, rs, err)
		}
	}

	if err := alice.RemoveFromRoom("Clinic", "Carol"); err != nil {
		t.Fatalf("Alice removes Carol while Dave is no contact of hers: %v", err)
	}
	everyone(t, all...)
	if _, err := alice.SendRoom("Clinic", "Carol is out"); err != nil {
		t.Fatal(err)
	}
	everyone(t, all...)
	for _, n := range []*testNode{bob, dave} {
		if got := roomTexts(t, n, info.ID); !slices.ContainsFunc(got, func(s string) bool { return len(s) > 12 && s[len(s)-12:] == "Carol is out" }) {
			t.Fatalf("%s reads %q", n.id.Name, got)
		}
		if rs, _ := n.Rooms(); len(rs[0].Members) != 3 {
			t.Fatalf("%s's room has %d members after the removal", n.id.Name, len(rs[0].Members))
		}
	}
	if got := roomTexts(t, carol, info.ID); slices.ContainsFunc(got, func(s string) bool { return len(s) > 12 && s[len(s)-12:] == "Carol is out" }) {
		t.Fatalf("Carol, removed, reads %q", got)
	}
	if ms, _ := dave.RoomMessages("Clinic"); slices.ContainsFunc(ms, func(m RoomMessage) bool { return m.Text == "" }) {
		t.Fatalf("the sealed welcomes show as a post: %+v", ms)
	}
}
