package node

import (
	"fmt"
	"testing"
)

// BenchmarkUIQueries measures what the UI asks on every change: the
// conversation list (200 contacts, each with a message) and the newest page
// of a conversation of 2,000 messages. test/browser's TestLargeHistoryTimes
// (-large) measures 1,000 and 10,000 through a real browser.
func BenchmarkUIQueries(b *testing.B) {
	n, err := InitMemory("Big", DefaultConfig, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	var first string
	for i := range 200 {
		o, _ := InitMemory(fmt.Sprintf("Person %d", i), DefaultConfig, Options{})
		s, _ := o.Self()
		o.Close()
		c, err := n.AddContact(s.Link, "")
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			first = c.Fingerprint
			for j := range 2000 {
				if _, err := n.Send(first, fmt.Sprintf("message %d: the water point by the school is open", j)); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := n.Send(c.Fingerprint, "hello"); err != nil {
			b.Fatal(err)
		}
	}
	// Cold: as the first list after the node opened, every record decoded.
	b.Run("conversations-cold", func(b *testing.B) {
		for b.Loop() {
			n.mu.Lock()
			n.events.cache, n.convs = viewCache{}, nil
			n.mu.Unlock()
			if cs, err := n.Conversations(); err != nil || len(cs) != 200 {
				b.Fatal(len(cs), err)
			}
		}
	})
	// After a change to a message: the records are decoded already.
	b.Run("conversations-changed", func(b *testing.B) {
		for b.Loop() {
			n.mu.Lock()
			n.convGen++
			n.mu.Unlock()
			if cs, err := n.Conversations(); err != nil || len(cs) != 200 {
				b.Fatal(len(cs), err)
			}
		}
	})
	b.Run("conversations", func(b *testing.B) {
		for b.Loop() {
			if cs, err := n.Conversations(); err != nil || len(cs) != 200 {
				b.Fatal(len(cs), err)
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			if p, err := n.MessagesPage(first, "", 50); err != nil || len(p.Messages) != 50 {
				b.Fatal(err)
			}
		}
	})
}
