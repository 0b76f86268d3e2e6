package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/grapevine-mesh/grapevine/internal/api"
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
	m.items = items(m.convs, nil)
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

// fakeSource is a node with one contact and one group.
type fakeSource struct {
	convs  []node.Conversation
	groups []node.RoomConversation
	posts  []node.RoomMessage
	sent   []string // "group ID: text" or "contact: text" or "ROOM: text"
	chans  []node.ChannelInfo
	anns   []node.AnnouncementChannel
	pub    map[string][]node.PublicPost
}

func (f *fakeSource) Channels(context.Context) ([]node.ChannelInfo, error) {
	if f.chans == nil {
		return []node.ChannelInfo{{Name: "nearby", Bits: 21, Pseudonym: strings.Repeat("ab", 32)}}, nil
	}
	return f.chans, nil
}
func (f *fakeSource) Announcements(context.Context) ([]node.AnnouncementChannel, error) {
	return f.anns, nil
}
func (f *fakeSource) ChannelPosts(_ context.Context, name string) ([]node.PublicPost, error) {
	return f.pub[name], nil
}
func (f *fakeSource) LatestPosts(context.Context) ([]node.RoomLatest, error) {
	var out []node.RoomLatest
	for room, ps := range f.pub {
		if len(ps) > 0 {
			out = append(out, node.RoomLatest{Room: room, Posts: len(ps), Last: ps[len(ps)-1]})
		}
	}
	return out, nil
}
func (f *fakeSource) PostChannel(_ context.Context, name, text string) (node.PublicPost, error) {
	f.sent = append(f.sent, name+": "+text)
	return node.PublicPost{}, nil
}
func (f *fakeSource) PostNearby(_ context.Context, text string, _ int, _ time.Duration) (node.PublicPost, error) {
	f.sent = append(f.sent, "nearby: "+text)
	return node.PublicPost{}, nil
}
func (f *fakeSource) Announce(_ context.Context, name, text string) (node.PublicPost, error) {
	f.sent = append(f.sent, "announce:"+name+": "+text)
	return node.PublicPost{}, nil
}

func (f *fakeSource) Self(context.Context) (node.Self, error) { return node.Self{Name: "Alice"}, nil }
func (f *fakeSource) Conversations(context.Context) ([]node.Conversation, error) {
	return f.convs, nil
}
func (f *fakeSource) MessagesPage(context.Context, string, string, int) (node.MessagePage, error) {
	return node.MessagePage{}, nil
}
func (f *fakeSource) Send(_ context.Context, ref, text string) (node.Message, error) {
	f.sent = append(f.sent, ref+": "+text)
	return node.Message{}, nil
}
func (f *fakeSource) Accept(context.Context, string) (node.Contact, error) {
	return node.Contact{}, errors.New("unexpected accept")
}
func (f *fakeSource) Reject(context.Context, string) error                { return errors.New("unexpected reject") }
func (f *fakeSource) MarkRead(context.Context, string) error              { return nil }
func (f *fakeSource) Events(context.Context, func(api.Event) error) error { return nil }
func (f *fakeSource) Groups(context.Context) ([]node.RoomConversation, error) {
	return f.groups, nil
}
func (f *fakeSource) GroupMessages(_ context.Context, id string) ([]node.RoomMessage, error) {
	if id != f.groups[0].ID {
		return nil, errors.New("no such group")
	}
	return f.posts, nil
}
func (f *fakeSource) SendGroup(_ context.Context, id, text string) (node.RoomMessage, error) {
	f.sent = append(f.sent, "group "+id+": "+text)
	return node.RoomMessage{}, nil
}

// run applies cmd's message (and what follows from it) to m.
func run(m *model, cmd tea.Cmd) {
	for cmd != nil {
		_, cmd = m.Update(cmd())
	}
}

// TestGroupsInTheChat: the list holds the group beside the contact, newest
// activity first; opening it shows its posts with their writers (hostile
// text defused), and enter posts to the group, not to a contact.
func TestGroupsInTheChat(t *testing.T) {
	now := time.Now()
	old := node.Message{ID: "1", Direction: "in", Text: "an old message", Time: now.Add(-time.Hour), Status: node.StatusReceived}
	post := node.RoomMessage{ID: "p2", Room: "g1", Sender: "qzx4abcd", Direction: "in", Text: "bridge\x1b[2J is out", Time: now}
	f := &fakeSource{
		convs: []node.Conversation{{Contact: node.Contact{Name: "Bob", Fingerprint: "bobfp", State: node.StateActive}, Last: &old}},
		groups: []node.RoomConversation{{RoomInfo: node.RoomInfo{ID: "g1", Name: "Rescue team", Epoch: 3,
			Members: []node.RoomMember{{Name: "me", Admin: true}, {Name: "Bob"}, {Name: "qzx4abcd"}}}, Posts: 2, Last: &post}},
		posts: []node.RoomMessage{{ID: "p1", Room: "g1", Sender: "me", Direction: "out", Text: "who has rope?", Time: now.Add(-time.Minute)}, post},
	}
	m := &model{ctx: context.Background(), src: f, w: 100, h: 20, self: node.Self{Name: "Alice"}}
	run(m, m.Init())
	list := m.View().Content
	gi, bi := strings.Index(list, "# Rescue team"), strings.Index(list, "Bob")
	if gi < 0 || bi < 0 || gi > bi || !strings.Contains(list, "3 members") || !strings.Contains(list, "qzx4abcd: bridge") {
		t.Fatalf("list (the group, newer, first):\n%s", list)
	}
	if strings.Contains(list, "\x1b[2J") {
		t.Fatalf("the list holds an escape sequence a member wrote")
	}
	_, cmd := m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
	run(m, cmd)
	if m.open != groupKey+"g1" {
		t.Fatalf("enter opened %q", m.open)
	}
	view := m.View().Content
	for _, want := range []string{"# Rescue team", "3 members, 1 admins", "you", "who has rope?", "qzx4abcd", `bridge\x1b[2J is out`, "post to the group"} {
		if !strings.Contains(view, want) {
			t.Fatalf("group view lacks %q:\n%s", want, view)
		}
	}
	for _, r := range "rope here" {
		m.key(tea.KeyPressMsg{Text: string(r), Code: r})
	}
	_, cmd = m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
	run(m, cmd)
	if len(f.sent) != 1 || f.sent[0] != "group g1: rope here" {
		t.Fatalf("sent %q", f.sent)
	}
	// a and x answer contact requests only.
	m.key(tea.KeyPressMsg{Code: tea.KeyEscape})
	m.sel = 0
	if _, cmd := m.listKey("a"); cmd != nil || m.status == "" {
		t.Errorf("a on a group: %v, status %q", cmd, m.status)
	}
}

// TestRoomsInTheChat: Nearby, a channel and a followed announcement channel
// are listed beside the contacts; a channel shows its posts under their
// posters' pseudonyms (hostile text defused) and enter posts to it; Nearby
// posts to Nearby; another's announcement channel is read-only.
func TestRoomsInTheChat(t *testing.T) {
	now := time.Now()
	poster := strings.Repeat("9f", 32)
	f := &fakeSource{
		chans: []node.ChannelInfo{{Name: "nearby", Bits: 21, Pseudonym: strings.Repeat("ab", 32)}, {Name: "#rescue", Bits: 21, Pseudonym: strings.Repeat("cd", 32)}},
		anns:  []node.AnnouncementChannel{{Name: "clinic", Owner: strings.Repeat("ee", 32)}},
		pub: map[string][]node.PublicPost{
			"#rescue":         {{ID: "r1", Room: "#rescue", Poster: poster, Direction: "in", Text: "water\x1b[2J at the school", Time: now}},
			"announce:clinic": {{ID: "a1", Room: "announce:clinic", Poster: strings.Repeat("ee", 32), Direction: "in", Text: "open at nine", Time: now.Add(-time.Hour)}},
		},
	}
	m := &model{ctx: context.Background(), src: f, w: 100, h: 20, self: node.Self{Name: "Alice"}}
	run(m, m.Init())
	list := m.View().Content
	for _, want := range []string{"# #rescue", "9f9f9f9f9f9f: water", "◎ Nearby", "! clinic", "No contacts yet"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, "\x1b[2J") {
		t.Fatal("the list holds an escape sequence a poster wrote")
	}
	if k := m.items[0].key(); k != roomKey+"#rescue" {
		t.Fatalf("first item %q, want the channel (newest post)", k)
	}
	// Contacts and groups come before the rooms, whatever their activity.
	old := node.Message{ID: "1", Direction: "in", Text: "hi", Time: now.Add(-48 * time.Hour), Status: node.StatusReceived}
	f.convs = []node.Conversation{{Contact: node.Contact{Name: "Bob", Fingerprint: "bobfp", State: node.StateActive}, Last: &old}}
	run(m, m.reload())
	if k := m.items[0].key(); k != "bobfp" || m.sel != 0 {
		t.Fatalf("first item %q, selected %d: want Bob's conversation, selected", k, m.sel)
	}
	f.convs = nil
	run(m, m.reload())
	_, cmd := m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
	run(m, cmd)
	view := m.View().Content
	for _, want := range []string{"# #rescue", "you post as cdcdcdcdcdcd today", "9f9f9f9f9f9f", `water\x1b[2J at the school`, "enter post"} {
		if !strings.Contains(view, want) {
			t.Fatalf("channel view lacks %q:\n%s", want, view)
		}
	}
	for _, r := range "rope here" {
		m.key(tea.KeyPressMsg{Text: string(r), Code: r})
	}
	_, cmd = m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
	if !strings.Contains(m.status, "stamping") {
		t.Errorf("status while posting: %q", m.status)
	}
	run(m, cmd)
	if len(f.sent) != 1 || f.sent[0] != "#rescue: rope here" {
		t.Fatalf("sent %q", f.sent)
	}
	// The announcement channel: read only.
	m.key(tea.KeyPressMsg{Code: tea.KeyEscape})
	open := func(key string) {
		t.Helper()
		for i, it := range m.items {
			if it.key() == key {
				m.sel = i
			}
		}
		_, cmd := m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
		run(m, cmd)
		if m.open != key {
			t.Fatalf("opened %q, want %q", m.open, key)
		}
	}
	open(roomKey + "announce:clinic")
	if view := m.View().Content; !strings.Contains(view, "open at nine") || !strings.Contains(view, "(read only)") {
		t.Fatalf("announcement view:\n%s", view)
	}
	m.key(tea.KeyPressMsg{Text: "x", Code: 'x'})
	if _, cmd := m.key(tea.KeyPressMsg{Code: tea.KeyEnter}); cmd != nil || !strings.Contains(m.status, "only the owner") {
		t.Errorf("posting to another's announcements: %v, status %q", cmd, m.status)
	}
	m.key(tea.KeyPressMsg{Code: tea.KeyEscape})
	open(roomKey + "nearby")
	for _, r := range "hi" {
		m.key(tea.KeyPressMsg{Text: string(r), Code: r})
	}
	_, cmd = m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
	run(m, cmd)
	if len(f.sent) != 2 || f.sent[1] != "nearby: hi" {
		t.Fatalf("sent %q", f.sent)
	}
}
