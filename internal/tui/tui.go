// Package tui is `grapevine chat`: a full-screen terminal client of the
// running node (Bubble Tea), with the conversation list, a chat view whose
// message states change live, a send box, and contact requests to accept or
// reject; the private groups (SPEC §15) the node is in, each with its
// posts and a send box; and the public rooms: Nearby, the channels joined
// and the announcement channels owned or followed, with their posters'
// pseudonyms. Everything a contact chose (names, texts) is cleaned of escape
// sequences and bidi controls before it reaches the terminal (termtext).
package tui

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/termtext"
)

// Source is what the client uses of the node (an *api.Client).
type Source interface {
	Self(ctx context.Context) (node.Self, error)
	Conversations(ctx context.Context) ([]node.Conversation, error)
	MessagesPage(ctx context.Context, ref, before string, limit int) (node.MessagePage, error)
	Send(ctx context.Context, ref, text string) (node.Message, error)
	Accept(ctx context.Context, ref string) (node.Contact, error)
	Reject(ctx context.Context, ref string) error
	MarkRead(ctx context.Context, ref string) error
	Events(ctx context.Context, fn func(api.Event) error) error
	Groups(ctx context.Context) ([]node.RoomConversation, error)
	GroupMessages(ctx context.Context, group string) ([]node.RoomMessage, error)
	SendGroup(ctx context.Context, group, text string) (node.RoomMessage, error)
	Channels(ctx context.Context) ([]node.ChannelInfo, error)
	Announcements(ctx context.Context) ([]node.AnnouncementChannel, error)
	ChannelPosts(ctx context.Context, name string) ([]node.PublicPost, error)
	LatestPosts(ctx context.Context) ([]node.RoomLatest, error)
	PostChannel(ctx context.Context, name, text string) (node.PublicPost, error)
	PostNearby(ctx context.Context, text string, hops int, lifetime time.Duration) (node.PublicPost, error)
	Announce(ctx context.Context, name, text string) (node.PublicPost, error)
}

// roomKey stands for a public room (the open chat, the selection): "room:"
// and its name as the API has it ("#name", "nearby", "announce:" and a
// local name).
const roomKey = "room:"

// publicRoom is a public room as listed: Nearby, a channel, or an
// announcement channel (mine: I post to it).
type publicRoom struct {
	Ref  string // as the API names it
	Name string // as shown
	Kind string // "nearby", "channel" or "announce"
	Mine bool
	Me   string           // my pseudonym in it (channels and Nearby)
	Last *node.PublicPost // the newest post, if any
}

// groupKey is what stands for a group where a contact's fingerprint stands
// for a contact (the open chat, the selection): fingerprints have no colon.
const groupKey = "group:"

// item is one line of the list: a contact's conversation or a group.
type item struct {
	conv  *node.Conversation
	group *node.RoomConversation
	room  *publicRoom
}

func (it item) key() string {
	if it.room != nil {
		return roomKey + it.room.Ref
	}
	if it.group != nil {
		return groupKey + it.group.ID
	}
	return it.conv.Contact.Fingerprint
}

func (it item) activity() time.Time {
	switch {
	case it.room != nil && it.room.Last != nil:
		return it.room.Last.Time
	case it.room != nil:
		return time.Time{}
	case it.group != nil && it.group.Last != nil:
		return it.group.Last.Time
	case it.group != nil:
		return time.Time{}
	case it.conv.Last != nil:
		return it.conv.Last.Time
	}
	return it.conv.Added
}

// items lists the conversations and groups together, newest activity first
// (each list keeps its own order among equals), then the public rooms.
func items(convs []node.Conversation, groups []node.RoomConversation, rooms ...publicRoom) []item {
	out := make([]item, 0, len(convs)+len(groups)+len(rooms))
	for i := range convs {
		out = append(out, item{conv: &convs[i]})
	}
	for i := range groups {
		out = append(out, item{group: &groups[i]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].activity().After(out[j].activity()) })
	// The public rooms come after, newest post first, as in the web UI:
	// Nearby is always there and must not push a contact's request down.
	pub := make([]item, 0, len(rooms))
	for i := range rooms {
		pub = append(pub, item{room: &rooms[i]})
	}
	sort.SliceStable(pub, func(i, j int) bool { return pub[i].activity().After(pub[j].activity()) })
	return append(out, pub...)
}

// history is how many messages of a conversation the chat view keeps.
const history = 200

// Messages of the program.
type (
	changed   struct{}            // the node changed: reload
	loaded    struct{ m *model }  // fresh data
	failed    struct{ err error } // a request failed
	streamEnd struct{ err error } // the event stream ended
	sent      struct{}            // a message or post was queued
)

type model struct {
	ctx    context.Context // Run's: requests end when the client does
	src    Source
	log    *slog.Logger
	self   node.Self
	convs  []node.Conversation
	groups []node.RoomConversation
	rooms  []publicRoom
	items  []item // convs, groups and rooms, as listed
	sel    int
	chosen bool   // the user moved the selection: it follows its item
	open   string // fingerprint of the open chat, groupKey+ID for a group, "" for the list
	msgs   []node.Message
	posts  []node.RoomMessage // of the open group
	pub    []node.PublicPost  // of the open public room
	carry  map[string]int     // message ID → links it went out on
	input  []rune
	status string
	w, h   int
	quit   bool
}

// Run runs the client until the user quits or ctx ends.
func Run(ctx context.Context, src Source, log *slog.Logger, opts ...tea.ProgramOption) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self, err := src.Self(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &model{ctx: ctx, src: src, log: log, self: self, w: 80, h: 24}
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)...)
	go func() {
		err := src.Events(ctx, func(ev api.Event) error {
			if ev.Type != "mesh" {
				p.Send(changed{})
			}
			return nil
		})
		p.Send(streamEnd{err})
	}()
	_, err = p.Run()
	if err != nil && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to run the terminal client: %w", err)
	}
	return nil
}

func (m *model) Init() tea.Cmd { return m.reload() }

// reload fetches the conversations and the open chat.
func (m *model) reload() tea.Cmd {
	ctx, src, open := m.ctx, m.src, m.open
	return func() tea.Msg {
		next := &model{}
		var err error
		if next.convs, err = src.Conversations(ctx); err != nil {
			return failed{err}
		}
		if next.groups, err = src.Groups(ctx); err != nil {
			return failed{err}
		}
		if next.rooms, err = loadRooms(ctx, src); err != nil {
			return failed{err}
		}
		next.items = items(next.convs, next.groups, next.rooms...)
		if ref, ok := strings.CutPrefix(open, roomKey); ok {
			posts, err := src.ChannelPosts(ctx, ref)
			if err != nil {
				return failed{err}
			}
			next.pub = posts[max(0, len(posts)-history):]
		} else if id, ok := strings.CutPrefix(open, groupKey); ok {
			posts, err := src.GroupMessages(ctx, id)
			if err != nil {
				return failed{err}
			}
			next.posts = posts[max(0, len(posts)-history):]
		} else if open != "" {
			page, err := src.MessagesPage(ctx, open, "", history)
			if err != nil {
				return failed{err}
			}
			next.msgs, next.carry = page.Messages, page.Carriers
			for _, c := range next.convs {
				if c.Contact.Fingerprint == open && c.Unread > 0 {
					if err := src.MarkRead(ctx, open); err != nil {
						return failed{err}
					}
				}
			}
		}
		next.open = open
		return loaded{next}
	}
}

// loadRooms lists Nearby, the channels joined and the announcement
// channels, each with its newest post.
func loadRooms(ctx context.Context, src Source) ([]publicRoom, error) {
	cs, err := src.Channels(ctx)
	if err != nil {
		return nil, err
	}
	as, err := src.Announcements(ctx)
	if err != nil {
		return nil, err
	}
	var rooms []publicRoom
	for _, c := range cs {
		if c.Name == "nearby" {
			rooms = append(rooms, publicRoom{Ref: "nearby", Name: "Nearby", Kind: "nearby", Me: c.Pseudonym})
		} else {
			rooms = append(rooms, publicRoom{Ref: c.Name, Name: c.Name, Kind: "channel", Me: c.Pseudonym})
		}
	}
	seen := map[string]int{}
	for _, a := range as {
		if i, ok := seen[a.Name]; ok {
			rooms[i].Mine = rooms[i].Mine || a.Mine
			continue
		}
		seen[a.Name] = len(rooms)
		rooms = append(rooms, publicRoom{Ref: "announce:" + a.Name, Name: a.Name, Kind: "announce", Mine: a.Mine})
	}
	latest, err := src.LatestPosts(ctx)
	if err != nil {
		return nil, err
	}
	for i := range rooms {
		for j := range latest {
			if latest[j].Room == rooms[i].Ref {
				rooms[i].Last = &latest[j].Last
			}
		}
	}
	return rooms, nil
}

func (m *model) current() *item {
	if m.sel >= 0 && m.sel < len(m.items) {
		return &m.items[m.sel]
	}
	return nil
}

// openConv is the open chat's contact conversation (nil for a group).
func (m *model) openConv() *node.Conversation {
	for i := range m.convs {
		if m.convs[i].Contact.Fingerprint == m.open {
			return &m.convs[i]
		}
	}
	return nil
}

// openRoom is the open public room (nil for a contact's chat or a group).
func (m *model) openRoom() *publicRoom {
	for i := range m.rooms {
		if roomKey+m.rooms[i].Ref == m.open {
			return &m.rooms[i]
		}
	}
	return nil
}

// openGroup is the open group (nil for a contact's chat).
func (m *model) openGroup() *node.RoomConversation {
	for i := range m.groups {
		if groupKey+m.groups[i].ID == m.open {
			return &m.groups[i]
		}
	}
	return nil
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
	case changed:
		return m, m.reload()
	case loaded:
		if msg.m.open == m.open { // not a stale answer for another chat
			selKey := ""
			if c := m.current(); c != nil {
				selKey = c.key()
			}
			m.convs, m.groups, m.rooms, m.items, m.msgs, m.carry, m.posts, m.pub = msg.m.convs, msg.m.groups, msg.m.rooms, msg.m.items, msg.m.msgs, msg.m.carry, msg.m.posts, msg.m.pub
			m.sel = 0
			for i, it := range m.items {
				// A public room the selection merely started on (Nearby,
				// when there is nothing else) does not keep it.
				if it.key() == selKey && (it.room == nil || m.chosen) {
					m.sel = i
				}
			}
		}
	case failed:
		m.status = "error: " + msg.err.Error()
	case streamEnd:
		m.status = "the node stopped (press ctrl+c)"
		if msg.err != nil {
			m.log.Debug("event stream ended", "err", msg.err)
		}
	case sent:
		m.status = ""
		return m, m.reload()
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	s := k.String()
	if s == "ctrl+c" {
		m.quit = true
		return m, tea.Quit
	}
	if m.open == "" {
		return m.listKey(s)
	}
	c := m.openConv()
	switch s {
	case "esc":
		m.open, m.msgs, m.posts, m.pub, m.input = "", nil, nil, nil, nil
		return m, m.reload()
	case "enter":
		text := strings.TrimSpace(string(m.input))
		if r := m.openRoom(); r != nil {
			if text == "" {
				return m, nil
			}
			if r.Kind == "announce" && !r.Mine {
				m.status = "only the owner and delegates post here"
				return m, nil
			}
			m.input = nil
			m.status = "stamping your post (proof of work, about a second)…"
			ctx, src, room := m.ctx, m.src, *r
			return m, func() tea.Msg {
				var err error
				switch room.Kind {
				case "nearby":
					_, err = src.PostNearby(ctx, text, 0, 0)
				case "announce":
					_, err = src.Announce(ctx, strings.TrimPrefix(room.Ref, "announce:"), text)
				default:
					_, err = src.PostChannel(ctx, room.Ref, text)
				}
				if err != nil {
					return failed{err}
				}
				return sent{}
			}
		}
		if g := m.openGroup(); g != nil && text != "" {
			m.input = nil
			ctx, src, id := m.ctx, m.src, g.ID
			return m, func() tea.Msg {
				if _, err := src.SendGroup(ctx, id, text); err != nil {
					return failed{err}
				}
				return sent{}
			}
		}
		if text == "" || c == nil {
			return m, nil
		}
		if c.Contact.State == node.StateRequest {
			m.status = "accept the request first (ctrl+a)"
			return m, nil
		}
		m.input = nil
		ctx, src, fp := m.ctx, m.src, m.open
		return m, func() tea.Msg {
			if _, err := src.Send(ctx, fp, text); err != nil {
				return failed{err}
			}
			return sent{}
		}
	case "ctrl+a":
		if c != nil {
			return m, m.answer(c.Contact.Fingerprint, true)
		}
	case "ctrl+x":
		if c != nil {
			return m, m.answer(c.Contact.Fingerprint, false)
		}
	case "backspace":
		if len(m.input) > 0 {
			m.input = m.input[:len(m.input)-1]
		}
	case "ctrl+u":
		m.input = nil
	default:
		if t := k.Text; t != "" {
			m.input = append(m.input, []rune(termtext.Line(t))...)
		} else if s == "space" {
			m.input = append(m.input, ' ')
		}
	}
	return m, nil
}

func (m *model) listKey(s string) (tea.Model, tea.Cmd) {
	switch s {
	case "q":
		m.quit = true
		return m, tea.Quit
	case "up", "k":
		if m.sel > 0 {
			m.sel--
		}
		m.chosen = true
	case "down", "j":
		if m.sel < len(m.items)-1 {
			m.sel++
		}
		m.chosen = true
	case "enter", "right", "l":
		if c := m.current(); c != nil {
			m.open = c.key()
			m.status = ""
			return m, m.reload()
		}
	case "a", "x":
		if c := m.current(); c != nil && c.conv != nil {
			return m, m.answer(c.conv.Contact.Fingerprint, s == "a")
		}
		m.status = "nothing to accept or reject here"
	}
	return m, nil
}

// answer accepts or rejects a contact request (or a proposal of new keys).
func (m *model) answer(fp string, accept bool) tea.Cmd {
	var c *node.Conversation
	for i := range m.convs {
		if m.convs[i].Contact.Fingerprint == fp {
			c = &m.convs[i]
		}
	}
	if c == nil || (c.Contact.State != node.StateRequest && !c.Contact.Rekey) {
		m.status = "nothing to accept or reject here"
		return nil
	}
	ctx, src := m.ctx, m.src
	return func() tea.Msg {
		var err error
		if accept {
			_, err = src.Accept(ctx, fp)
		} else {
			err = src.Reject(ctx, fp)
		}
		if err != nil {
			return failed{err}
		}
		return changed{}
	}
}

// ---- rendering ------------------------------------------------------------

const (
	reverse = "\x1b[7m"
	bold    = "\x1b[1m"
	dim     = "\x1b[2m"
	reset   = "\x1b[0m"
)

// clean is text from others, safe to print (no escapes, no bidi tricks).
func clean(s string) string { return termtext.Line(s) }

func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

var stateLabel = map[string]string{
	node.StatusQueued: "◷ queued", node.StatusCarried: "✓ carried", node.StatusDelivered: "✓✓ delivered",
	node.StatusExpired: "⚠ expired", node.StatusReceived: "",
}

func (m *model) View() tea.View {
	var lines []string
	if m.quit {
		return tea.NewView("")
	}
	if m.open == "" {
		lines = m.listView()
	} else {
		lines = m.chatView()
	}
	if pad := m.h - len(lines); pad > 0 && len(lines) > 0 { // the footer at the bottom
		last := lines[len(lines)-1]
		lines = append(append(lines[:len(lines)-1], make([]string, pad)...), last)
	}
	for i := range lines {
		lines[i] = fit(lines[i], m.w)
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	return v
}

func (m *model) header(title string) string {
	return bold + "Grapevine" + reset + " · " + clean(m.self.Name) + " · " + title
}

func (m *model) footer(help string) string {
	if m.status != "" {
		return clean(m.status)
	}
	return dim + help + reset
}

func (m *model) listView() []string {
	lines := []string{m.header("chats"), strings.Repeat("─", max(m.w, 1))}
	if len(m.convs) == 0 && len(m.groups) == 0 {
		lines = append(lines, "No contacts yet: show your invite (grapevine id) or add one (grapevine contacts add).")
	}
	room := max(m.h-4, 1)
	first := 0
	if m.sel >= room {
		first = m.sel - room + 1
	}
	for i := first; i < len(m.items) && i < first+room; i++ {
		var line string
		if r := m.items[i].room; r != nil {
			line = roomLine(r)
		} else if g := m.items[i].group; g != nil {
			line = "# " + clean(g.Name) + dim + fmt.Sprintf(" · %d members", len(g.Members)) + reset
			if g.Last != nil {
				line += "  " + dim + g.Last.Time.Local().Format("15:04") + " " + clean(g.Last.Sender) + ": " + clean(g.Last.Text) + reset
			}
		} else {
			line = m.convLine(*m.items[i].conv)
		}
		if i == m.sel {
			line = reverse + "> " + line + reset
		} else {
			line = "  " + line
		}
		lines = append(lines, line)
	}
	return append(lines, m.footer("↑↓ choose · enter open · a accept · x reject · q quit"))
}

// convLine is a contact's line in the list.
func (m *model) convLine(c node.Conversation) string {
	line := clean(c.Contact.Name)
	if c.Unread > 0 {
		line += fmt.Sprintf(" (%d)", c.Unread)
	}
	switch {
	case c.Contact.State == node.StateRequest:
		line += "  [request: a accept, x reject]"
	case c.Contact.Rekey:
		line += "  [new keys proposed: a accept, x reject]"
	case c.Contact.State == node.StatePending:
		line += "  [pending]"
	}
	if c.Last != nil {
		who := ""
		if c.Last.Direction == "out" {
			who = "you: "
		}
		line += "  " + dim + c.Last.Time.Local().Format("15:04") + " " + who + clean(c.Last.Text) + reset
	}
	return line
}

func (m *model) chatView() []string {
	if r := m.openRoom(); r != nil {
		return m.roomView(r)
	}
	if g := m.openGroup(); g != nil {
		return m.groupView(g)
	}
	c := m.openConv()
	name := "?"
	var notice string
	if c != nil {
		name = clean(c.Contact.Name)
		switch {
		case c.Contact.State == node.StateRequest:
			notice = name + " wants to be your contact: ctrl+a accept · ctrl+x reject"
		case c.Contact.Rekey:
			notice = name + " proposed new keys: ctrl+a accept · ctrl+x reject"
		case c.Contact.State == node.StatePending:
			notice = "they have not answered yet: what you write waits for them"
		}
	}
	top := []string{m.header(name), strings.Repeat("─", max(m.w, 1))}
	if notice != "" {
		top = append(top, bold+notice+reset)
	}
	bottom := []string{strings.Repeat("─", max(m.w, 1)), "> " + string(m.input) + "█",
		m.footer("enter send · esc back · ctrl+c quit")}
	var body []string
	for _, msg := range m.msgs {
		who := name
		if msg.Direction == "out" {
			who = "you"
		}
		head := dim + msg.Time.Local().Format("15:04") + reset + " " + bold + who + reset
		if k := m.carry[msg.ID]; k > 0 && msg.Status == node.StatusCarried {
			head += "  " + dim + fmt.Sprintf("✓ carried by %d", k) + reset
		} else if l := stateLabel[msg.Status]; l != "" {
			head += "  " + dim + l + reset
		}
		body = m.wrap(append(body, head), msg.Text)
	}
	return m.frame(top, body, bottom)
}

// frame puts the newest of body between top and bottom, filling the screen.
func (m *model) frame(top, body, bottom []string) []string {
	room := max(m.h-len(top)-len(bottom), 1)
	if len(body) > room {
		body = body[len(body)-room:]
	}
	for len(body) < room {
		body = append(body, "")
	}
	return append(append(top, body...), bottom...)
}

// wrap adds a text's lines to body, indented and wrapped to the screen.
func (m *model) wrap(body []string, text string) []string {
	for _, para := range termtext.Lines(text) {
		wrapped := ansi.Hardwrap(para, max(m.w-2, 10), true)
		for _, l := range strings.Split(wrapped, "\n") {
			body = append(body, "  "+l)
		}
	}
	return body
}

// groupView is an open group: its posts with their writers (a contact's
// name, the start of a stranger member's fingerprint), and the send box.
func (m *model) groupView(g *node.RoomConversation) []string {
	admins := 0
	for _, mb := range g.Members {
		if mb.Admin {
			admins++
		}
	}
	top := []string{m.header("# " + clean(g.Name)), strings.Repeat("─", max(m.w, 1)),
		dim + fmt.Sprintf("%d members, %d admins (grapevine groups show)", len(g.Members), admins) + reset}
	bottom := []string{strings.Repeat("─", max(m.w, 1)), "> " + string(m.input) + "█",
		m.footer("enter post to the group · esc back · ctrl+c quit")}
	var body []string
	for _, p := range m.posts {
		who := clean(p.Sender)
		if p.Direction == "out" {
			who = "you"
		}
		head := dim + p.Time.Local().Format("15:04") + reset + " " + bold + who + reset
		if p.Earlier {
			head += "  " + dim + "(written before the group's last change)" + reset
		}
		body = m.wrap(append(body, head), p.Text)
	}
	return m.frame(top, body, bottom)
}

// short is the start of a poster's key, as grapevine messages shows it.
func short(key string) string { return key[:min(len(key), 12)] }

// roomLine is a public room's line in the list.
func roomLine(r *publicRoom) string {
	var line string
	switch r.Kind {
	case "nearby":
		line = "◎ Nearby" + dim + " · everyone a few hops away" + reset
	case "announce":
		what := " · announcements"
		if r.Mine {
			what = " · your announcements"
		}
		line = "! " + clean(r.Name) + dim + what + reset
	default:
		line = "# " + clean(r.Name) + dim + " · channel" + reset
	}
	if p := r.Last; p != nil {
		who := short(p.Poster)
		if p.Poster == "me" {
			who = "you"
		}
		line += "  " + dim + p.Time.Local().Format("15:04") + " " + who + ": " + clean(p.Text) + reset
	}
	return line
}

// roomView is an open public room: its posts with their posters'
// pseudonyms (the start of the key), and the send box (not for others'
// announcement channels).
func (m *model) roomView(r *publicRoom) []string {
	var title, about, help string
	switch r.Kind {
	case "nearby":
		title, about = "◎ Nearby", "everyone a few hops away: posts go 2 hops and last an hour; you are "+short(r.Me)+" today"
	case "announce":
		title = "! " + clean(r.Name)
		about = "announcements: only the owner and delegates post"
		if r.Mine {
			about = "your announcement channel: followers read what you post"
		}
	default:
		title, about = "# "+clean(r.Name), "public channel: you post as "+short(r.Me)+" today (grapevine channels mute to hide a poster)"
	}
	help = "enter post (stamped, about a second) · esc back · ctrl+c quit"
	input := "> " + string(m.input) + "█"
	if r.Kind == "announce" && !r.Mine {
		help, input = "esc back · ctrl+c quit", dim+"(read only)"+reset
	}
	top := []string{m.header(title), strings.Repeat("─", max(m.w, 1)), dim + about + reset}
	bottom := []string{strings.Repeat("─", max(m.w, 1)), input, m.footer(help)}
	var body []string
	for _, p := range m.pub {
		who := short(p.Poster)
		if p.Poster == "me" {
			who = "you"
		}
		head := dim + p.Time.Local().Format("15:04") + reset + " " + bold + who + reset
		body = m.wrap(append(body, head), p.Text)
	}
	if len(body) == 0 {
		body = []string{dim + "No posts yet." + reset}
	}
	return m.frame(top, body, bottom)
}
