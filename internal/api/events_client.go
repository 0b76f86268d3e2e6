package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Conversations lists contacts with their last message and unread count,
// newest first.
func (c *Client) Conversations(ctx context.Context) ([]node.Conversation, error) {
	var v []node.Conversation
	return v, c.do(ctx, http.MethodGet, "/v1/conversations", nil, nil, &v)
}

// ConversationsPage returns limit conversations from offset on, with the
// totals of the whole list.
func (c *Client) ConversationsPage(ctx context.Context, offset, limit int) (node.ConversationPage, error) {
	var v node.ConversationPage
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	return v, c.do(ctx, http.MethodGet, "/v1/conversations/page", q, nil, &v)
}

// MessagesPage returns up to limit messages with a contact before the
// message with ID before ("" for the newest), oldest first.
func (c *Client) MessagesPage(ctx context.Context, ref, before string, limit int) (node.MessagePage, error) {
	q := url.Values{"contact": {ref}}
	if before != "" {
		q.Set("before", before)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var v node.MessagePage
	return v, c.do(ctx, http.MethodGet, "/v1/messages/page", q, nil, &v)
}

// MarkRead marks everything with a contact as read.
func (c *Client) MarkRead(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodPost, "/v1/read", nil, ContactRequest{Contact: ref}, nil)
}

// Events follows the node's event stream, calling fn for each event (the
// first is "hello"), until ctx ends, fn fails, or the node goes away. It
// returns nil when ctx ends.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://grapevine/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Transport: c.tr} // no timeout: a stream lasts
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("failed to follow the node's events: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failed to follow the node's events: the node answered %s", resp.Status)
	}
	err = ReadEvents(resp.Body, fn)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("the node closed the event stream (it stopped)")
	}
	return err
}

// maxEventLine bounds one line of an event stream.
const maxEventLine = 64 << 10

// ReadEvents decodes a server-sent event stream of Events from r, calling fn
// for each. Comments and unknown fields are skipped; an event whose data is
// not an Event is an error. It returns nil at the end of r.
func ReadEvents(r io.Reader, fn func(Event) error) error {
	return readSSE(r, func(typ string, data []byte) error {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("failed to decode an event: %w", err)
		}
		if typ != "" {
			ev.Type = typ
		}
		return fn(ev)
	})
}

// readSSE reads a server-sent event stream from r, calling fn with each
// event's type ("" when it names none) and data. Comments, unknown fields
// and events without data are skipped. It returns nil at the end of r.
func readSSE(r io.Reader, fn func(typ string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	var typ string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				typ = ""
				continue
			}
			t, d := typ, data.String()
			typ = ""
			data.Reset()
			if err := fn(t, []byte(d)); err != nil {
				return err
			}
		case strings.HasPrefix(line, ":"): // comment
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				typ = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				if data.Len()+len(value) > maxEventLine {
					return errors.New("failed to decode an event: its data is too long")
				}
				data.WriteString(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("failed to read the event stream: %w", err)
	}
	return nil
}
