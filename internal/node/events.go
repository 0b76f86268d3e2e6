package node

// What a user interface needs beyond the CLI's calls: a signal when anything
// changed (so a screen can refresh without polling), conversations with their
// last message and unread count, messages one page at a time, and read marks.

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// hub tells subscribers that the node changed. Each subscriber has a channel
// of capacity one: changes that come while it is busy are coalesced into one
// signal, so a slow reader never blocks the node.
type hub struct {
	mu   sync.Mutex
	seq  uint64
	subs map[chan uint64]struct{}

	cache viewCache // used with the node locked

	// carriers counts, per envelope of mine, the links it went out on
	// since the node started (MarkCarried): "carried by N neighbours".
	carriers map[envelope.ID]int
}

// maxCarriers bounds the counts kept: past it they start afresh.
const maxCarriers = 100_000

func (h *hub) noteCarried(ids []envelope.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.carriers == nil || len(h.carriers) > maxCarriers {
		h.carriers = map[envelope.ID]int{}
	}
	for _, id := range ids {
		h.carriers[id]++
	}
}

func (h *hub) carriedBy(id string) int {
	eid, err := envelope.ParseID(id)
	if err != nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.carriers[eid]
}

// viewCache keeps what the UI queries decoded from stored records, by a
// hash of each record's bytes: a contact record is large (its sessions'
// keys), and a list of 1,000 conversations would decode every one of them
// on every change. Records that changed hash differently and are decoded
// again; entries not seen in a pass are dropped.
type viewCache struct {
	seed     maphash.Seed
	contacts map[uint64]contactView
	messages map[uint64]*messageRecord // shared, read-only: the kept list holds them too
}

// contactView is what the UI shows of a contact record.
type contactView struct {
	fp    string
	state string
	added time.Time
	view  Contact
}

// contactViews lists every contact, decoding only the records that changed
// since the last call.
func (n *Node) contactViews(tx *store.Tx) ([]contactView, error) {
	c := &n.events.cache
	if c.contacts == nil {
		c.seed = maphash.MakeSeed()
	}
	next := make(map[uint64]contactView, len(c.contacts))
	var out []contactView
	err := tx.ForEach(colContacts, func(v []byte, _ time.Time) error {
		h := maphash.Bytes(c.seed, v)
		cv, ok := c.contacts[h]
		if !ok {
			// Only what the UI shows: a record is mostly its sessions'
			// keys, which the decoder then skips instead of filling in
			// (three quarters of a cold conversation list went there).
			var r struct {
				Fingerprint string          `json:"fingerprint"`
				Name        string          `json:"name"`
				State       string          `json:"state"`
				Added       time.Time       `json:"added"`
				Proposal    json.RawMessage `json:"proposal"`
			}
			if err := jsonUnmarshal(v, &r); err != nil {
				return fmt.Errorf("failed to decode contact: %w", err)
			}
			full := contactRecord{Fingerprint: r.Fingerprint, Name: r.Name, State: r.State, Added: r.Added}
			if len(r.Proposal) > 0 && string(r.Proposal) != "null" {
				full.Proposal = &peerSession{} // view only asks whether there is one
			}
			cv = contactView{fp: r.Fingerprint, state: r.State, added: r.Added, view: full.view()}
		}
		next[h] = cv
		out = append(out, cv)
		return nil
	})
	if err == nil {
		c.contacts = next
	}
	return out, err
}

// eachMessage calls fn with every message record (without its commitment;
// fn must not change it: it is kept and shared),
// decoding only the records that changed since the last call.
func (n *Node) eachMessage(tx *store.Tx, fn func(r *messageRecord, expires time.Time)) error {
	c := &n.events.cache
	if c.contacts == nil && c.messages == nil {
		c.seed = maphash.MakeSeed()
	}
	next := make(map[uint64]*messageRecord, len(c.messages))
	err := tx.ForEach(colMessages, func(v []byte, exp time.Time) error {
		h := maphash.Bytes(c.seed, v)
		r, ok := c.messages[h]
		if !ok {
			r = new(messageRecord)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("failed to decode message: %w", err)
			}
			r.Commit = nil
		}
		next[h] = r
		fn(r, exp)
		return nil
	})
	if err == nil {
		c.messages = next
	}
	return err
}

func (h *hub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	for ch := range h.subs {
		select {
		case ch <- h.seq:
		default: // a signal is already waiting: it covers this one
		}
	}
}

// Subscribe returns a channel that receives a change number after every
// committed change to the node (a message sent, received, carried, delivered;
// a contact added, accepted, renamed; a read mark), and a function that
// cancels the subscription. Signals coalesce: one receive may stand for many
// changes, so a subscriber re-reads what it shows.
func (n *Node) Subscribe() (<-chan uint64, func()) {
	h := &n.events
	ch := make(chan uint64, 1)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan uint64]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
		})
	}
}

// Conversation is one contact with the gist of what was said.
type Conversation struct {
	Contact  Contact   `json:"contact"`
	Last     *Message  `json:"last,omitempty"` // the newest message, if any
	Unread   int       `json:"unread"`         // received since the contact was last read
	Messages int       `json:"messages"`
	Added    time.Time `json:"added"`
}

// readMarks is the one record that keeps, per contact fingerprint, the
// sequence number up to which its messages were read. One record for all
// contacts, so a copy of the store does not count them by it.
const readKey = "read"

func loadReadMarks(tx *store.Tx) (map[string]uint64, error) {
	marks := map[string]uint64{}
	_, err := getJSON(tx, colSelf, []byte(readKey), &marks)
	return marks, err
}

// Conversations lists every contact with its last message and unread count,
// newest activity first (a contact without messages counts from when it was
// added). Requests are included: their messages are not shown (nor counted)
// until accepted.
//
// Making the list reads every contact and message. What it found is kept
// (convMemo) until a write touches contacts, messages or read marks, or a
// message it counted expires: a UI asks for the list on every change, and
// most changes in a busy mesh are envelopes carried for others.
func (n *Node) Conversations() ([]Conversation, error) {
	p, err := n.ConversationsPage(0, -1)
	return p.Conversations, err
}

// ConversationPage is part of the list of conversations.
type ConversationPage struct {
	Conversations []Conversation `json:"conversations"`
	Total         int            `json:"total"`  // conversations in all
	Unread        int            `json:"unread"` // unread messages in all
}

// ConversationsPage returns limit conversations of the list Conversations
// returns, from offset on (limit < 0: all of them from offset), with the
// totals of the whole list: a UI shows the first page of a long list first.
func (n *Node) ConversationsPage(offset, limit int) (ConversationPage, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	memo, err := n.keptConversations(now)
	if err != nil {
		return ConversationPage{Conversations: []Conversation{}}, err
	}
	all := memo.entries
	page := ConversationPage{Total: len(all), Unread: memo.unread}
	offset = min(max(offset, 0), len(all))
	end := len(all)
	if limit >= 0 {
		end = min(end, offset+limit)
	}
	page.Conversations = make([]Conversation, end-offset)
	for i := offset; i < end; i++ {
		e := &all[i]
		c := Conversation{Contact: e.contact, Unread: e.unread, Messages: e.messages, Added: e.added}
		if len(e.msgs) > 0 {
			m := e.msgs[len(e.msgs)-1].view(e.contact.Name, now)
			c.Last = &m
		}
		page.Conversations[i-offset] = c
	}
	return page, nil
}

// keptConversations returns the kept list, made again if a write touched
// what it is made of or a message in it expired (with n.mu held).
func (n *Node) keptConversations(now time.Time) (*convMemo, error) {
	if memo := n.convs; memo != nil && memo.gen == n.convGen && now.Before(memo.until) {
		return memo, nil
	}
	memo, err := n.makeConversations()
	if err != nil {
		return nil, err
	}
	n.convs = memo
	return memo, nil
}

// convMemo is the conversation list as made at one count of writes
// (Node.convGen), in order, with each conversation's messages: a chat's
// pages are slices of them. Only the messages' states, which follow the
// clock, are worked out again on every call.
type convMemo struct {
	gen     uint64
	until   time.Time // the first expiry of an item read: the list changes then
	entries []convEntry
	byFP    map[string]*convEntry
	unread  int // of all entries
}

type convEntry struct {
	contact          Contact
	added            time.Time
	messages, unread int
	msgs             []*messageRecord // shown in the chat, oldest first (shared with the record cache: read only)
}

// makeConversations reads every contact and message (with n.mu held).
func (n *Node) makeConversations() (*convMemo, error) {
	memo := &convMemo{gen: n.convGen, until: store.Forever}
	var entries []convEntry
	err := n.st.View(func(tx *store.Tx) error {
		cs, err := n.contactViews(tx)
		if err != nil {
			return err
		}
		marks, err := loadReadMarks(tx)
		if err != nil {
			return err
		}
		byFP := make(map[string]int, len(cs))
		entries = make([]convEntry, len(cs))
		for i, c := range cs {
			byFP[c.fp] = i
			entries[i] = convEntry{contact: c.view, added: c.added}
		}
		return n.eachMessage(tx, func(r *messageRecord, exp time.Time) {
			i, ok := byFP[r.Contact]
			if !ok || r.Held || r.Kind != kindText || cs[i].state == StateRequest {
				return
			}
			if exp.Before(memo.until) {
				memo.until = exp
			}
			e := &entries[i]
			e.messages++
			if r.Direction == "in" && r.Seq > marks[r.Contact] {
				e.unread++
			}
			e.msgs = append(e.msgs, r)
		})
	})
	if err != nil {
		return nil, err
	}
	for i := range entries {
		ms := entries[i].msgs
		sort.Slice(ms, func(a, b int) bool { return newerMessage(ms[b], ms[a]) })
	}
	activity := func(e *convEntry) time.Time {
		if len(e.msgs) > 0 {
			return e.msgs[len(e.msgs)-1].Time
		}
		return e.added
	}
	sort.SliceStable(entries, func(i, j int) bool {
		ai, aj := activity(&entries[i]), activity(&entries[j])
		if !ai.Equal(aj) {
			return ai.After(aj)
		}
		return keys.NameKey(entries[i].contact.Name) < keys.NameKey(entries[j].contact.Name)
	})
	memo.entries = entries
	memo.byFP = make(map[string]*convEntry, len(entries))
	for i := range entries {
		memo.unread += entries[i].unread
		memo.byFP[entries[i].contact.Fingerprint] = &entries[i]
	}
	return memo, nil
}

// newerMessage orders messages as Messages does: by time, then local arrival.
func newerMessage(a, b *messageRecord) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.Seq > b.Seq
}

// MessagePage is one page of a conversation, oldest first.
type MessagePage struct {
	Contact  Contact   `json:"contact"` // whom the conversation is with
	Messages []Message `json:"messages"`
	// More says that older messages remain: ask again with Before set to
	// the ID of the first message of this page.
	More bool `json:"more"`
	// Carriers counts, for messages of mine on this page that neighbours
	// took, how many links each went out on since the node started.
	Carriers map[string]int `json:"carriers,omitempty"`
}

// MaxPage bounds a page of messages.
const MaxPage = 500

// MessagesPage returns up to limit messages with a contact, the newest ones
// before the message with ID before ("" for the newest of all), oldest first.
func (n *Node) MessagesPage(ref, before string, limit int) (MessagePage, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	var who Contact
	var request bool
	err := n.st.View(func(tx *store.Tx) error {
		// A full fingerprint (what a UI sends) is looked up directly.
		c, err := loadContact(tx, ref)
		if err != nil || c == nil {
			if c, err = resolve(tx, ref); err != nil {
				return err
			}
		}
		who, request = c.view(), c.State == StateRequest
		return nil
	})
	if err != nil {
		return MessagePage{Messages: []Message{}}, err
	}
	// The conversation's messages, oldest first, are the kept list's: a
	// page is a slice of them, not a read of every message.
	var recs []*messageRecord
	if !request {
		memo, err := n.keptConversations(now)
		if err != nil {
			return MessagePage{Messages: []Message{}}, err
		}
		if e := memo.byFP[who.Fingerprint]; e != nil {
			recs = e.msgs
		}
	}
	end := len(recs)
	if before != "" {
		end = 0
		for i := range recs {
			if recs[i].ID == before {
				end = i
				break
			}
		}
	}
	start := max(0, end-limit)
	page := MessagePage{Contact: who, Messages: make([]Message, 0, end-start), More: start > 0}
	for i := start; i < end; i++ {
		m := recs[i].view(who.Name, now)
		page.Messages = append(page.Messages, m)
		if m.Direction == "out" && m.Status != StatusQueued {
			if k := n.events.carriedBy(m.ID); k > 0 {
				if page.Carriers == nil {
					page.Carriers = map[string]int{}
				}
				page.Carriers[m.ID] = k
			}
		}
	}
	return page, n.fillFileProgress(page.Messages)
}

// MarkRead records that everything with a contact so far was read: its
// unread count drops to zero.
func (n *Node) MarkRead(ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	unread := false
	err := n.st.View(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		marks, err := loadReadMarks(tx)
		if err != nil {
			return err
		}
		var seq uint64
		_, err = getJSON(tx, colSelf, []byte("seq"), &seq)
		unread = marks[c.Fingerprint] != seq
		return err
	})
	if err != nil || !unread { // nothing to write: no change to signal
		return err
	}
	return n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		marks, err := loadReadMarks(tx)
		if err != nil {
			return err
		}
		var seq uint64
		if _, err := getJSON(tx, colSelf, []byte("seq"), &seq); err != nil {
			return err
		}
		if marks[c.Fingerprint] == seq {
			return nil
		}
		// Forget the marks of contacts that are gone.
		cs, err := allContacts(tx)
		if err != nil {
			return err
		}
		live := make(map[string]bool, len(cs))
		for _, c := range cs {
			live[c.Fingerprint] = true
		}
		for fp := range marks {
			if !live[fp] {
				delete(marks, fp)
			}
		}
		marks[c.Fingerprint] = seq
		return putJSON(tx, colSelf, []byte(readKey), marks, store.Forever)
	})
}
