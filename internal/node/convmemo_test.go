package node

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestConversationsKeptRight checks the kept conversation list (convMemo),
// and the chats' pages cut from it, against ones made afresh after every
// kind of write that changes them:
// messages sent and received, states moving to carried and delivered,
// read marks, a request and its acceptance, a rename, a removal, and
// messages expiring with the history window. It also checks that writes
// that do not touch conversations (envelopes carried for others) keep it.
func TestConversationsKeptRight(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk)
	dave := newTestNode(t, "Dave", clk)
	forget := func() {
		alice.mu.Lock()
		alice.convs = nil
		alice.events.cache = viewCache{}
		alice.mu.Unlock()
	}
	// state is the list and every chat's pages (two messages a page).
	state := func(fresh bool) string {
		t.Helper()
		if fresh {
			forget()
		}
		convs, err := alice.Conversations()
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(convs)
		for _, c := range convs {
			before := ""
			for {
				if fresh {
					forget()
				}
				p, err := alice.MessagesPage(c.Contact.Fingerprint, before, 2)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(p)
				out = append(append(out, '\n'), b...)
				if !p.More {
					break
				}
				before = p.Messages[0].ID
			}
		}
		return string(out)
	}
	check := func(step string) {
		t.Helper()
		if kept, fresh := state(false), state(true); kept != fresh {
			t.Fatalf("%s: the kept list and pages\n%s\ndiffer from fresh ones\n%s", step, kept, fresh)
		}
	}
	check("empty")
	befriend(t, alice, bob)
	check("befriended Bob")
	for i := range 3 {
		clk.Advance(time.Second)
		mustSend(t, bob, "Alice", fmt.Sprintf("hello %d", i))
	}
	alice.Conversations() // kept now: what follows must invalidate it
	carry(t, bob, alice)
	check("received from Bob")
	clk.Advance(time.Second)
	sent := mustSend(t, alice, "Bob", "hi Bob")
	check("sent to Bob")
	id, err := envelope.ParseID(sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkCarried([]envelope.ID{id}); err != nil { // a neighbour took it
		t.Fatal(err)
	}
	check("carried")
	carry(t, alice, bob)
	carry(t, bob, alice) // receipts: delivered
	check("delivered")
	if err := alice.MarkRead("Bob"); err != nil {
		t.Fatal(err)
	}
	check("read")
	mustAdd(t, carol, alice.link())
	mustSend(t, carol, "Alice", "may I?")
	carry(t, carol, alice)
	check("a request")
	if _, err := alice.Accept("Carol"); err != nil {
		t.Fatal(err)
	}
	check("accepted")
	if _, err := alice.Rename("Carol", "Caroline"); err != nil {
		t.Fatal(err)
	}
	check("renamed")

	// Envelopes carried for others do not remake the list.
	befriend(t, bob, dave)
	mustSend(t, dave, "Bob", "not for Alice")
	alice.Conversations()
	alice.mu.Lock()
	gen := alice.convGen
	alice.mu.Unlock()
	if rep := carry(t, dave, alice); rep.New == 0 {
		t.Fatalf("Alice carried nothing: %+v", rep)
	}
	alice.mu.Lock()
	kept := alice.convGen == gen
	alice.mu.Unlock()
	if !kept {
		t.Error("carrying others' mail remade the conversation list")
	}
	check("carried for others")

	if _, err := alice.Remove("Caroline"); err != nil {
		t.Fatal(err)
	}
	check("removed")
	// The history window passes: the messages expire.
	clk.Advance(DefaultConfig.History + time.Hour)
	check("history expired, before maintenance")
	if err := alice.Maintain(); err != nil {
		t.Fatal(err)
	}
	check("history expired")
}
