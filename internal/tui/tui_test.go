package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// TestViewDefusesHostileContent renders a list and a chat whose name and
// texts carry escape sequences and bidi overrides: what reaches the
// terminal holds only the client's own styling sequences.
func TestViewDefusesHostileContent(t *testing.T) {
	name := "Mallory\x1b]0;pwned\x07\u202e"
	text := "hi\x1b[2J\x1b[31mred\u009b31m\nsecond line"
	now := time.Now()
	m := &model{w: 80, h: 20, self: node.Self{Name: "Alice"}}
	last := node.Message{ID: "1", Direction: "in", Text: text, Time: now, Status: node.StatusReceived}
	m.convs = []node.Conversation{{Contact: node.Contact{Name: name, Fingerprint: "abcd", State: node.StateRequest}, Last: &last, Unread: 1}}
	check := func(view string) {
		t.Helper()
		for _, bad := range []string{"\x1b]0;", "\x07", "\x1b[2J", "\x1b[31m", "\u009b", "\u202e"} {
			if strings.Contains(view, bad) {
				t.Fatalf("the view holds %q:\n%q", bad, view)
			}
		}
	}
	list := m.View().Content
	check(list)
	if !strings.Contains(list, `Mallory\x1b]0;pwned\x07\u202e`) || !strings.Contains(list, "[request: a accept, x reject]") {
		t.Fatalf("list:\n%s", list)
	}
	m.open = "abcd"
	m.msgs = []node.Message{last, {ID: "2", Direction: "out", Text: "ok", Time: now, Status: node.StatusCarried}}
	m.carry = map[string]int{"2": 3}
	chat := m.View().Content
	check(chat)
	for _, want := range []string{`hi\x1b[2J\x1b[31mred\x9b31m`, "second line", "✓ carried by 3", "ctrl+a accept"} {
		if !strings.Contains(chat, want) {
			t.Fatalf("chat lacks %q:\n%s", want, chat)
		}
	}
	// Typed escape characters do not reach the input either.
	m.key(tea.KeyPressMsg{Text: "x\x1b[2J"})
	if strings.ContainsRune(string(m.input), 0x1b) {
		t.Fatalf("input %q", string(m.input))
	}
}
