package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

func TestConversationsUnreadAndPages(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	carol := newTestNode(t, "Carol", clk)
	befriend(t, alice, bob)
	befriend(t, alice, carol)

	changes, cancel := alice.Subscribe()
	defer cancel()
	for i := range 7 {
		clk.Advance(time.Second)
		mustSend(t, bob, "Alice", fmt.Sprintf("hello %d", i))
	}
	clk.Advance(time.Second)
	mustSend(t, carol, "Alice", "from Carol")
	carry(t, bob, alice)
	select {
	case <-changes:
	default:
		t.Fatal("an import that brought messages signalled no change")
	}
	clk.Advance(time.Minute)
	carry(t, carol, alice)

	convs, err := alice.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 2 {
		t.Fatalf("conversations: %+v", convs)
	}
	byName := map[string]Conversation{}
	for _, c := range convs {
		byName[c.Contact.Name] = c
	}
	if c := byName["Bob"]; c.Unread != 7 || c.Messages != 7 || c.Last == nil || c.Last.Text != "hello 6" {
		t.Fatalf("Bob's conversation: %+v", c)
	}
	if c := byName["Carol"]; c.Unread != 1 {
		t.Fatalf("Carol's conversation: %+v", c)
	}
	// Newest first: Carol wrote last.
	if convs[0].Contact.Name != "Carol" {
		t.Fatalf("newest first: got %s first", convs[0].Contact.Name)
	}

	// Pages, oldest first within a page, walking back.
	p, err := alice.MessagesPage("Bob", "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !p.More || len(p.Messages) != 3 || p.Messages[0].Text != "hello 4" || p.Messages[2].Text != "hello 6" {
		t.Fatalf("first page: %+v", p)
	}
	p, err = alice.MessagesPage("Bob", p.Messages[0].ID, 3)
	if err != nil || !p.More || p.Messages[0].Text != "hello 1" {
		t.Fatalf("second page: %+v %v", p, err)
	}
	p, err = alice.MessagesPage("Bob", p.Messages[0].ID, 3)
	if err != nil || p.More || len(p.Messages) != 1 || p.Messages[0].Text != "hello 0" {
		t.Fatalf("last page: %+v %v", p, err)
	}

	for len(changes) > 0 {
		<-changes
	}
	if err := alice.MarkRead("Bob"); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatal("marking read signalled no change")
	}
	<-changes
	if err := alice.MarkRead("Bob"); err != nil { // nothing new: no write, no signal
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Fatal("marking read twice signalled a change")
	}
	alice.reopen() // read marks survive a restart
	convs, err = alice.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range convs {
		want := map[string]int{"Bob": 0, "Carol": 1}[c.Contact.Name]
		if c.Unread != want {
			t.Fatalf("after reopen, %s has %d unread, want %d", c.Contact.Name, c.Unread, want)
		}
	}
}

func TestSubscribeCoalescesAndCancels(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	ch, cancel := alice.Subscribe()
	mustAdd(t, alice, bob.link())
	mustSend(t, alice, "Bob", "one")
	mustSend(t, alice, "Bob", "two")
	if len(ch) != 1 {
		t.Fatalf("%d signals waiting, want 1 (coalesced)", len(ch))
	}
	<-ch
	cancel()
	cancel() // twice is fine
	mustSend(t, alice, "Bob", "three")
	if len(ch) != 0 {
		t.Fatal("a cancelled subscription was signalled")
	}
}

func TestCarriersCounted(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	befriend(t, alice, bob)
	m := mustSend(t, alice, "Bob", "over two links")
	id, err := envelope.ParseID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.MessagesPage("Bob", "", 10)
	if err != nil || len(p.Carriers) != 0 {
		t.Fatalf("queued: %+v %v", p.Carriers, err)
	}
	for range 2 { // two neighbours took it
		if err := alice.MarkCarried([]envelope.ID{id}); err != nil {
			t.Fatal(err)
		}
	}
	p, err = alice.MessagesPage("Bob", "", 10)
	if err != nil || p.Carriers[m.ID] != 2 || p.Contact.Name != "Bob" {
		t.Fatalf("carried by two: %+v %v", p, err)
	}
}
