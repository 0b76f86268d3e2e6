package api

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// TestEventStream follows the stream while the node changes: every change
// is signalled, the stream ends when the server stops, and the UI endpoints
// answer as the node does in-process.
func TestEventStream(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bob, err := node.Init(filepath.Join(t.TempDir(), "bob"), pass, "Bob", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	self, _ := bob.Self()

	events := make(chan Event)
	done := make(chan error, 1)
	go func() {
		done <- f.c.Events(context.Background(), func(ev Event) error { events <- ev; return nil })
	}()
	if ev := <-events; ev.Type != "hello" || ev.Seq != 1 {
		t.Fatalf("first event %+v, want hello 1", ev)
	}
	if _, err := f.c.AddContact(ctx, self.Link, ""); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != "change" {
		t.Fatalf("after adding a contact: %+v", ev)
	}
	if _, err := f.c.Send(ctx, "Bob", "hello"); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != "change" {
		t.Fatalf("after sending: %+v", ev)
	}

	convs := must(f.c.Conversations(ctx))(t)
	same(t, "conversations", convs, must(f.n.Conversations())(t))
	if len(convs) != 1 || convs[0].Last == nil || convs[0].Last.Text != "hello" {
		t.Fatalf("conversations: %+v", convs)
	}
	cp := must(f.c.ConversationsPage(ctx, 0, 1))(t)
	same(t, "a page of conversations", cp, must(f.n.ConversationsPage(0, 1))(t))
	if cp.Total != 1 || len(cp.Conversations) != 1 || cp.Conversations[0].Contact.Name != "Bob" {
		t.Fatalf("conversations page: %+v", cp)
	}
	if cp := must(f.c.ConversationsPage(ctx, 1, 10))(t); cp.Total != 1 || len(cp.Conversations) != 0 {
		t.Fatalf("conversations past the end: %+v", cp)
	}
	var pageErr *Error
	if _, err := f.c.ConversationsPage(ctx, 0, 0); !errors.As(err, &pageErr) || pageErr.Code != CodeBadRequest || !strings.Contains(pageErr.Message, "limit") {
		t.Fatalf("limit 0: %v", err)
	}
	page := must(f.c.MessagesPage(ctx, "Bob", "", 10))(t)
	same(t, "page", page, must(f.n.MessagesPage("Bob", "", 10))(t))
	if err := f.c.MarkRead(ctx, "Bob"); err != nil {
		t.Fatal(err)
	}
	var apiErr *Error
	if _, err := f.c.MessagesPage(ctx, "Nobody", "", 10); !errors.As(err, &apiErr) || apiErr.Code != CodeNoContact {
		t.Fatalf("page of nobody: %v", err)
	}
	if _, err := f.c.MessagesPage(ctx, "Bob", "", 100000); !errors.As(err, &apiErr) || apiErr.Code != CodeBadRequest {
		t.Fatalf("page too long: %v", err)
	}

	f.stop()
	go func() {
		for range events { // drain what came before the end
		}
	}()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("after the server stopped, Events returned %v", err)
	}
	close(events)
}

func TestReadEvents(t *testing.T) {
	in := ": comment\n\nevent: hello\ndata: {\"seq\":1}\n\nevent: change\nid: 7\ndata: {\"type\":\"x\",\n data\": 2}\n\ndata: {\"type\":\"mesh\",\"seq\":3}\n\n"
	var got []Event
	err := ReadEvents(strings.NewReader(in), func(ev Event) error { got = append(got, ev); return nil })
	if err == nil {
		t.Fatalf("multi-line data that is not JSON decoded: %+v", got)
	}
	got = nil
	in = ": comment\n\nevent: hello\ndata: {\"seq\":1}\n\nevent: change\nid: 7\ndata: {\"seq\":2}\n\ndata: {\"type\":\"mesh\",\"seq\":3}\n\n"
	if err := ReadEvents(strings.NewReader(in), func(ev Event) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Event{{"hello", 1}, {"change", 2}, {"mesh", 3}}
	same(t, "events", got, want)
}

func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("event: hello\ndata: {\"seq\":1}\n\n"))
	f.Add([]byte(": beat\n\ndata: {\"type\":\"mesh\",\"seq\":3}\n\n"))
	f.Add([]byte("data: {\ndata: }\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_ = ReadEvents(strings.NewReader(string(b)), func(Event) error { n++; return nil })
		if n > len(b) {
			t.Fatalf("%d events from %d bytes", n, len(b))
		}
	})
}
