package api

// Progress of an export or import through a running node. Asked with
// Accept: text/event-stream, POST /v1/export and POST /v1/import answer
// with a stream of server-sent events instead of one JSON object, so that
// `grapevine export` and `import` draw their progress bar against a running
// node as they do on a store opened in-process:
//
//	event: progress   data: a node.Progress, at most one per whole percent
//	event: result     data: what the plain request answers (the last event)
//	event: error      data: an ErrorResponse with its "status" (the last event)
//
// A request refused before the work starts (a malformed body, a relative
// path) is answered as any other, with its status and a JSON error.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

const eventStream = "text/event-stream"

// wantsStream reports whether the request asks for progress events.
func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), eventStream)
}

// handleStreamed registers an endpoint whose work reports its progress:
// prepare checks the request and returns the work, which is run with a
// stream of its progress if the request asks for one (stream), or answered
// as JSON once done.
func (s *Server) handleStreamed(pattern string, prepare func(r *http.Request) (func(progress func(node.Progress)) (any, error), error)) {
	s.handle(pattern, func(r *http.Request) (any, error) {
		run, err := prepare(r)
		switch {
		case err != nil:
			return nil, err
		case wantsStream(r):
			return streamed{run}, nil
		}
		return run(nil)
	})
}

// streamed is the answer of a request that asked for a stream: handle
// writes it with Server.stream instead of as JSON.
type streamed struct {
	run func(progress func(node.Progress)) (any, error)
}

// progressSteps queues a stream's progress: one report per whole percent,
// and the last (Done), so at most 102 — the channel holds them all, and the
// node, which reports with its lock held during an export, never waits for
// a slow reader.
type progressSteps struct {
	c    chan node.Progress
	last int
}

func newProgressSteps() *progressSteps {
	return &progressSteps{c: make(chan node.Progress, 102), last: -1}
}

func (q *progressSteps) report(p node.Progress) {
	pct := p.Percent()
	if pct == q.last && !p.Done {
		return
	}
	q.last = pct
	select {
	case q.c <- p:
	default: // cannot happen (see progressSteps); never block the node
	}
}

// streamError is the data of an error event.
type streamError struct {
	Status int `json:"status"`
	ErrorResponse
}

// stream answers r with the progress of run as server-sent events, then
// its result or error. run's progress function is called from run's
// goroutine; the events are written from the request's.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, run func(progress func(node.Progress)) (any, error)) {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a large bundle takes longer than the write timeout
	h := w.Header()
	h.Set("Content-Type", eventStream)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc.Flush()

	q := newProgressSteps()
	type outcome struct {
		v   any
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := run(q.report)
		done <- outcome{v, err}
	}()
	gone := false // the client went: the work stops with r's context
	send := func(typ string, v any) {
		if gone {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			typ, b = "error", fmt.Appendf(nil, `{"status":500,"error":%q,"code":%q}`, "failed to encode the response: "+err.Error(), CodeInternal)
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b); err != nil || rc.Flush() != nil {
			gone = true
		}
	}
	for {
		select {
		case p := <-q.c:
			send("progress", p)
		case o := <-done:
			for len(q.c) > 0 {
				send("progress", <-q.c)
			}
			if o.err != nil {
				send("error", s.errorEvent(r, o.err))
				return
			}
			send("result", o.v)
			return
		}
	}
}

// errorEvent is what the plain request would have answered for err.
func (s *Server) errorEvent(r *http.Request, err error) streamError {
	rec := &bodyRecorder{header: http.Header{}}
	s.fail(rec, r, err)
	var e streamError
	if json.Unmarshal(rec.body.Bytes(), &e.ErrorResponse) != nil {
		e.ErrorResponse = ErrorResponse{Error: err.Error(), Code: CodeInternal}
	}
	e.Status = rec.status
	return e
}

// bodyRecorder keeps what a handler writes.
type bodyRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bodyRecorder) Header() http.Header         { return b.header }
func (b *bodyRecorder) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bodyRecorder) WriteHeader(status int)      { b.status = status }

// streamed posts in to path asking for progress events, calls progress
// with each, and decodes the result into out.
func (c *Client) streamed(ctx context.Context, path string, in any, progress func(node.Progress), out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://grapevine"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", eventStream)
	hc := &http.Client{Transport: c.tr} // no timeout: the stream lasts as long as the work; ctx ends it
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the node at %s: %w", c.socket, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), eventStream) {
		return responseError(resp, io.LimitReader(resp.Body, maxResponse))
	}
	ended := false
	err = readSSE(resp.Body, func(typ string, data []byte) error {
		switch typ {
		case "progress":
			var p node.Progress
			if err := json.Unmarshal(data, &p); err != nil {
				return fmt.Errorf("failed to decode the node's progress: %w", err)
			}
			progress(p)
		case "result":
			ended = true
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("failed to read the node's answer to POST %s: %w", path, err)
			}
		case "error":
			ended = true
			var e streamError
			if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
				return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "the node failed without saying why"}
			}
			return &Error{Status: e.Status, Code: e.Code, Message: e.Error, Reason: e.Reason, Contact: e.Contact, Field: e.Field}
		}
		return nil
	})
	if err == nil && !ended {
		if err = ctx.Err(); err == nil {
			err = fmt.Errorf("the node stopped before it answered POST %s", path)
		}
	}
	return err
}
