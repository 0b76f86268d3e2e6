package node

import (
	"testing"
	"time"
)

// TestRoomConversations: rooms are listed with their posts, newest activity
// first, each with its newest post and its writer; a room without posts
// comes last; Room finds one by name or ID prefix.
func TestRoomConversations(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	befriend(t, alice, bob)
	for _, name := range []string{"Alpha", "Beta", "Quiet"} {
		if _, err := alice.CreateRoom(name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"Alpha", "Beta"} {
		if err := alice.InviteToRoom(name, "Bob"); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob)
		if err := bob.JoinRoom(name); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob)
	}
	if _, err := alice.SendRoom("Alpha", "first in alpha"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := bob.SendRoom("Beta", "bob in beta"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := alice.SendRoom("Beta", "alice in beta"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob)

	cs, err := alice.RoomConversations()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		s := c.Name
		if c.Last != nil {
			s += "/" + c.Last.Sender + ": " + c.Last.Text
		}
		got = append(got, s)
	}
	want := []string{"Beta/me: alice in beta", "Alpha/me: first in alpha", "Quiet"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("Alice's rooms: %q, want %q", got, want)
	}
	if cs[0].Posts != 2 || cs[1].Posts != 1 || cs[2].Posts != 0 || len(cs[0].Members) != 2 {
		t.Errorf("posts and members: %+v", cs)
	}
	bs, err := bob.RoomConversations()
	if err != nil || len(bs) != 2 || bs[0].Name != "Beta" || bs[0].Last.Sender != "Alice" || bs[0].Posts != 2 {
		t.Fatalf("Bob's rooms: %+v, %v", bs, err)
	}
	r, err := bob.Room(bs[1].ID[:6])
	if err != nil || r.Name != "Alpha" || r.Admin || len(r.Members) != 2 {
		t.Errorf("Room by ID prefix: %+v, %v", r, err)
	}
	if _, err := bob.Room("Quiet"); err == nil {
		t.Error("Bob finds a room he is not in")
	}
}

// TestRemoveMemberWhoIsNotMyContact: Bob, made an admin, removes Dave, whom
// Alice added and who is not Bob's contact, by the start of his fingerprint
// (as Bob's node lists him); Alice and Carol agree, and Dave's welcome of
// the new epoch never comes.
func TestRemoveMemberWhoIsNotMyContact(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol, dave := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk), newTestNode(t, "Dave", clk)
	for _, n := range []*testNode{bob, carol, dave} {
		befriend(t, alice, n)
	}
	befriend(t, bob, carol)
	if _, err := alice.CreateRoom("Crew"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{bob, carol, dave} {
		if err := alice.InviteToRoom("Crew", n.id.Name); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol, dave)
		if err := n.JoinRoom("Crew"); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol, dave)
	}
	if err := alice.MakeRoomAdmin("Crew", "Bob"); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, carol, dave)
	daveFP := dave.id.Public().Fingerprint()
	if err := bob.RemoveFromRoom("Crew", "Dave"); err == nil {
		t.Fatal("Bob removed a member by a name he does not know")
	}
	if err := bob.MakeRoomAdmin("Crew", daveFP[:2]); err == nil {
		t.Fatal("a 2-character fingerprint prefix was taken")
	}
	if err := bob.RemoveFromRoom("Crew", daveFP[:8]); err != nil {
		t.Fatal(err)
	}
	everyone(t, alice, bob, carol, dave)
	for _, n := range []*testNode{alice, bob, carol} {
		r, err := n.Room("Crew")
		if err != nil || len(r.Members) != 3 || r.Epoch != 5 {
			t.Fatalf("%s sees %+v, %v", n.id.Name, r, err)
		}
		for _, m := range r.Members {
			if m.Fingerprint == daveFP {
				t.Fatalf("%s still lists Dave", n.id.Name)
			}
		}
	}
	if r, _ := dave.Room("Crew"); r.Epoch != 4 {
		t.Errorf("Dave moved to epoch %d after his removal", r.Epoch)
	}
}
