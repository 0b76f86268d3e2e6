package browser

import (
	"strings"
	"testing"
)

// TestTerminalChannel drives `grapevine chat` in tmux with public rooms:
// Bob's post to #rescue shows up live in Alice's list and in the channel
// under Bob's pseudonym there; what Alice posts from the chat (stamped)
// reaches Bob; Nearby is listed and opens.
func TestTerminalChannel(t *testing.T) {
	alice := startNode(t, "Alice")
	bob := startNode(t, "Bob", "--peer", alice.listen)
	bob.until(t, `"synced": true`, "peers", "--json")
	alice.cli(t, "channels", "join", "#rescue")
	bob.cli(t, "channels", "join", "#rescue")

	term := newTmux(t, grapevineBin(t)+" --home "+alice.home+" chat")
	term.wait("the list with the rooms", "Grapevine · Alice · chats", "# #rescue", "◎ Nearby")
	bob.cli(t, "send", "#rescue", "water at the school")
	var pseudonym string
	for _, l := range strings.Split(bob.cli(t, "channels"), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "#rescue" {
			pseudonym = f[2]
		}
	}
	if len(pseudonym) != 12 {
		t.Fatalf("Bob's pseudonym in #rescue: %q", pseudonym)
	}
	term.wait("Bob's post in the list, live", pseudonym+": water at the school")
	// The selection started on Nearby but does not stick to it: the
	// channel, with the newest post, is first and selected.
	term.keys(false, "Enter")
	term.wait("the channel", "Grapevine · Alice · # #rescue", pseudonym, "water at the school", "enter post")
	term.keys(true, "rope at the bridge")
	term.keys(false, "Enter")
	term.wait("Alice's post", "you", "rope at the bridge")
	bob.until(t, "rope at the bridge", "messages", "#rescue")

	term.keys(false, "Escape")
	term.wait("back to the list", "Grapevine · Alice · chats")
	term.keys(false, "Down")
	term.keys(false, "Enter")
	term.wait("Nearby", "Grapevine · Alice · ◎ Nearby", "No posts yet")
	bob.cli(t, "send", "nearby", "bridge is down")
	term.wait("Bob's Nearby post, live", "bridge is down")
	term.keys(false, "C-c")
}
