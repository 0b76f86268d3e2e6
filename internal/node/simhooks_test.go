package node

import (
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/room"
)

// TestJoinDerivedChannel: keys derived once join a channel on another node
// (the simulator's shortcut past a second Argon2id), which then reads the
// channel's posts; a channel below the node's floor is refused, as by
// JoinChannel.
func TestJoinDerivedChannel(t *testing.T) {
	clk := newTestClock()
	alice, bob := publicNode(t, "Alice", clk, PublicPolicy{}), publicNode(t, "Bob", clk, PublicPolicy{})
	c, err := room.JoinChannel("#sim", "", testBits)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{alice, bob} {
		if err := n.JoinDerivedChannel(c.Keys()); err != nil {
			t.Fatal(err)
		}
	}
	mustPost(t, alice, "#sim", "hello")
	carry(t, alice, bob)
	posts, err := bob.ChannelMessages("#sim")
	if err != nil || len(posts) != 1 || posts[0].Text != "hello" {
		t.Fatalf("Bob read %+v, %v", posts, err)
	}
	easy, err := room.JoinChannel("#easy", "", testBits-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.JoinDerivedChannel(easy.Keys()); err == nil {
		t.Error("joined a channel below the node's floor")
	}
}
