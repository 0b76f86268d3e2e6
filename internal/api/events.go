package api

// The endpoints a user interface needs beyond the CLI's: an event stream
// (server-sent events) that says when something changed, conversations with
// unread counts, messages one page at a time, and read marks.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Event is one server-sent event of GET /v1/events.
type Event struct {
	// Type is "hello" (first, on connecting), "change" (the node's data
	// changed: messages, states, contacts) or "mesh" (neighbours came, went
	// or moved bytes).
	Type string `json:"type"`
	Seq  uint64 `json:"seq"` // increases with every event of the stream
}

// Intervals of the event stream: how often the mesh is looked at for
// changes (it has no hook of its own), and how often an idle stream sends
// a comment so that a dead connection is noticed.
const (
	meshPoll  = 2 * time.Second
	heartbeat = 25 * time.Second
)

// defaultPage is the size of a page of messages when the caller names none.
const defaultPage = 50

// A page of conversations: how many when the caller names no limit, and
// at most.
const (
	defaultConversations = 100
	maxConversations     = 10_000
)

func (s *Server) uiRoutes() {
	s.mux.HandleFunc("GET /v1/events", s.events)
	s.handle("GET /v1/conversations", func(*http.Request) (any, error) { return list(s.n.Conversations()) })
	// One page of the list, with its totals: the first screen of a long
	// list need not carry (nor the browser parse) a thousand conversations.
	s.handle("GET /v1/conversations/page", func(r *http.Request) (any, error) {
		q := r.URL.Query()
		offset, limit := 0, defaultConversations
		if v := q.Get("offset"); v != "" {
			o, err := strconv.Atoi(v)
			if err != nil || o < 0 {
				return nil, bad("offset %q: want a whole number from 0", v)
			}
			offset = o
		}
		if v := q.Get("limit"); v != "" {
			l, err := strconv.Atoi(v)
			if err != nil || l < 1 || l > maxConversations {
				return nil, bad("limit %q: want 1 to %d", v, maxConversations)
			}
			limit = l
		}
		return ok(s.n.ConversationsPage(offset, limit))
	})
	s.handle("GET /v1/messages/page", func(r *http.Request) (any, error) {
		q := r.URL.Query()
		ref := q.Get("contact")
		if ref == "" {
			return nil, bad(`missing query parameter "contact": a name or fingerprint prefix`)
		}
		limit := defaultPage
		if l := q.Get("limit"); l != "" {
			v, err := strconv.Atoi(l)
			if err != nil || v < 1 || v > node.MaxPage {
				return nil, bad("limit %q: want 1 to %d", l, node.MaxPage)
			}
			limit = v
		}
		return ok(s.n.MessagesPage(ref, q.Get("before"), limit))
	})
	s.handle("GET /v1/ui", func(*http.Request) (any, error) {
		ui := s.ui.Load()
		if ui == nil {
			return nil, notFound("this node serves no web UI (grapevine up --ui \"\")")
		}
		return ui, nil
	})
	s.handle("POST /v1/read", func(r *http.Request) (any, error) {
		ref, err := contactRef(r)
		if err != nil {
			return nil, err
		}
		return struct{}{}, s.n.MarkRead(ref)
	})
}

// events streams server-sent events until the client goes or the server
// stops (the request's context ends with Serve's).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeStarting, "the node is starting: its store is not open yet")
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil { // a stream outlives the write timeout
		s.log.Debug("event stream without deadline control", "err", err)
	}
	changes, cancel := s.n.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var seq uint64
	send := func(typ string) bool {
		seq++
		b, _ := json.Marshal(Event{Type: typ, Seq: seq})
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("hello") {
		return
	}
	poll := time.NewTicker(meshPoll)
	defer poll.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	lastMesh := s.meshDigest()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-changes:
			if !send("change") {
				return
			}
		case <-poll.C:
			if d := s.meshDigest(); d != lastMesh {
				lastMesh = d
				if !send("mesh") {
					return
				}
			}
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": beat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// meshDigest changes when the neighbours or their traffic change.
func (s *Server) meshDigest() uint64 {
	if s.m == nil {
		return 0
	}
	h := fnv.New64a()
	for _, p := range s.m.Peers() {
		fmt.Fprintf(h, "%s|%d|%d|%t|%s\n", p.Addr, p.BytesSent, p.BytesReceived, p.Synced, p.Contact)
	}
	return h.Sum64()
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// UI is the response of GET /v1/ui: where the node serves its web UI. The
// URLs carry the secret that signs a browser in; the socket is the owner's.
type UI struct {
	URL    string `json:"url"`
	LANURL string `json:"lan_url,omitempty"` // for another device, over TLS
}

// SetUI tells the API where the web UI is served (grapevine ui asks).
func (s *Server) SetUI(ui UI) { s.ui.Store(&ui) }

// notFoundError marks an error as 404 not_found.
type notFoundError struct{ error }

func notFound(msg string) error { return notFoundError{errors.New(msg)} }

// UI asks the running node where its web UI is served.
func (c *Client) UI(ctx context.Context) (UI, error) {
	var v UI
	return v, c.do(ctx, http.MethodGet, "/v1/ui", nil, nil, &v)
}
