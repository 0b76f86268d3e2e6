package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Server answers the local API for one running node.
type Server struct {
	// n and m are set once, by Ready, before ready is.
	n     *node.Node
	m     Mesh
	ready atomic.Bool
	log   *slog.Logger
	mux   *http.ServeMux
	ui    atomic.Pointer[UI] // the web UI's address, if served (events.go)
}

// NewServer serves n and m. m may be nil (no mesh): then peers is empty and
// status shows only what the node holds. log may be nil.
func NewServer(n *node.Node, m Mesh, log *slog.Logger) *Server {
	s := NewStarting(log)
	s.Ready(n, m)
	return s
}

// NewStarting returns a server for a node that is not open yet: until Ready,
// it answers every request 503 with the code "starting". A node listens on
// its socket first, so that commands run meanwhile wait for it rather than
// open the store themselves and hold its lock (SPEC §7: one process at a
// time). log may be nil.
func NewStarting(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, mux: http.NewServeMux()}
	s.routes()
	s.uiRoutes()       // events.go
	s.settingsRoutes() // settings.go
	s.groupRoutes()    // groups.go
	s.channelRoutes()  // channels.go
	s.fileRoutes()     // files.go
	s.releaseRoutes()  // releases.go
	return s
}

// Ready gives the server its node and mesh (m may be nil): from now on it
// answers requests. It is called at most once.
func (s *Server) Ready(n *node.Node, m Mesh) {
	s.n, s.m = n, m
	s.ready.Store(true)
}

// Timeouts of the HTTP server. Import and export of a large bundle take a
// while; everything else answers at once.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 10 * time.Minute
	idleTimeout       = 2 * time.Minute
)

// Serve answers requests on ln until ctx is cancelled, then stops accepting,
// lets every request in flight finish, and returns nil. It closes ln (which
// removes a socket made by Listen). Any other failure to serve is returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Requests end with ctx: an event stream would hold Shutdown up.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Requests in flight are bounded by the node's own work and the server
	// timeouts, so waiting for them ends; after Serve returns no request
	// touches the node, and the caller may close it.
	err := srv.Shutdown(context.Background())
	<-errc
	return err
}

// ServeHTTP answers one request (Server is an http.Handler, e.g. for tests).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.Body = http.MaxBytesReader(sw, r.Body, MaxBody)
	if h, pattern := s.mux.Handler(r); pattern == "" {
		unrouted(sw, r, h)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start))
}

func (s *Server) routes() {
	s.handle("GET /v1/self", func(*http.Request) (any, error) { return ok(s.n.Self()) })
	s.handle("GET /v1/invite", func(*http.Request) (any, error) {
		inv, err := s.n.Invite()
		if err != nil {
			return nil, err
		}
		return Invite{Link: inv.Link(), Expires: inv.ExpiresAt()}, nil
	})
	s.handle("GET /v1/contacts", func(*http.Request) (any, error) { return list(s.n.Contacts()) })
	s.handle("POST /v1/contacts", func(r *http.Request) (any, error) {
		req, err := decode[AddContactRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Link == "" {
			return nil, bad(`missing "link": the contact's grapevine: invite link`)
		}
		return ok(s.n.AddContact(req.Link, req.Name))
	})
	s.handle("POST /v1/contacts/accept", func(r *http.Request) (any, error) {
		ref, err := contactRef(r)
		if err != nil {
			return nil, err
		}
		return ok(s.n.Accept(ref))
	})
	s.handle("POST /v1/contacts/reject", func(r *http.Request) (any, error) {
		ref, err := contactRef(r)
		if err != nil {
			return nil, err
		}
		return struct{}{}, s.n.Reject(ref)
	})
	s.handle("POST /v1/contacts/remove", func(r *http.Request) (any, error) {
		ref, err := contactRef(r)
		if err != nil {
			return nil, err
		}
		return ok(s.n.Remove(ref))
	})
	s.handle("POST /v1/contacts/rename", func(r *http.Request) (any, error) {
		req, err := decode[RenameRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Contact == "" || req.Name == "" {
			return nil, bad(`missing "contact" or "name"`)
		}
		return ok(s.n.Rename(req.Contact, req.Name))
	})
	s.handle("POST /v1/contacts/rekey", func(r *http.Request) (any, error) {
		ref, err := contactRef(r)
		if err != nil {
			return nil, err
		}
		return ok(s.n.Rekey(ref))
	})
	s.handle("POST /v1/clock/trust", func(*http.Request) (any, error) { return struct{}{}, s.n.TrustClock() })
	s.handle("GET /v1/contacts/verify", func(r *http.Request) (any, error) {
		ref := r.URL.Query().Get("contact")
		if ref == "" {
			return nil, bad(`missing query parameter "contact": a name or fingerprint prefix`)
		}
		ct, num, err := s.n.SafetyNumber(ref)
		return SafetyNumber{Contact: ct, SafetyNumber: num}, err
	})
	s.handle("POST /v1/send", func(r *http.Request) (any, error) {
		req, err := decode[SendRequest](r)
		if err != nil {
			return nil, err
		}
		if req.To == "" {
			return nil, bad(`missing "to": a contact's name or fingerprint prefix`)
		}
		// The node checks the text (node.ErrInvalid: 400). JSON carries no
		// invalid UTF-8: Client checks that.
		return ok(s.n.Send(req.To, req.Text))
	})
	s.handle("GET /v1/messages", func(r *http.Request) (any, error) {
		return list(s.n.Messages(r.URL.Query().Get("contact")))
	})
	s.handle("GET /v1/envelopes", func(*http.Request) (any, error) { return list(s.n.Envelopes()) })
	s.handleStreamed("POST /v1/export", func(r *http.Request) (func(func(node.Progress)) (any, error), error) {
		req, err := decode[ExportRequest](r)
		if err != nil {
			return nil, err
		}
		path, err := absPath(req.Path)
		if err != nil {
			return nil, err
		}
		return func(progress func(node.Progress)) (any, error) {
			res, err := s.n.ExportFile(r.Context(), path, node.ExportOptions{Replace: req.Replace, Progress: progress})
			return res, fileError(err)
		}, nil
	})
	s.handleStreamed("POST /v1/import", func(r *http.Request) (func(func(node.Progress)) (any, error), error) {
		req, err := decode[PathRequest](r)
		if err != nil {
			return nil, err
		}
		path, err := absPath(req.Path)
		if err != nil {
			return nil, err
		}
		return func(progress func(node.Progress)) (any, error) {
			rep, err := s.n.ImportFileWith(r.Context(), path, node.ImportOptions{Progress: progress})
			return rep, fileError(err)
		}, nil
	})
	s.handle("GET /v1/peers", func(*http.Request) (any, error) {
		var ps []mesh.PeerInfo
		if s.m != nil {
			ps = s.m.Peers()
		}
		return list(ps, nil)
	})
	s.handle("GET /v1/status", func(*http.Request) (any, error) {
		if s.m != nil {
			st := s.m.Status()
			if st.Listen == nil {
				st.Listen = []string{}
			}
			return st, nil
		}
		stats, err := s.n.Stats()
		return mesh.Status{Stats: stats, Listen: []string{}, Relay: stats.RelayQuota > 0}, err
	})
}

// handle registers an endpoint that answers JSON or fails with an error.
func (s *Server) handle(pattern string, fn func(r *http.Request) (any, error)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, CodeStarting, "the node is starting: its store is not open yet")
			return
		}
		v, err := fn(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if st, ok := v.(streamed); ok { // progress.go
			s.stream(w, r, st.run)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func ok[T any](v T, err error) (any, error) { return v, err }

// list answers [] rather than null for nothing.
func list[T any](v []T, err error) (any, error) {
	if v == nil {
		v = []T{}
	}
	return v, err
}

// badRequest marks an error as the caller's fault: 400.
type badRequest struct{ error }

func bad(format string, a ...any) error { return badRequest{fmt.Errorf(format, a...)} }

// fileError marks failures caused by the file the caller named as 400.
func fileError(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.ENOTDIR) || errors.Is(err, bundle.ErrNotBundle) || errors.Is(err, bundle.ErrUnsupportedVersion) {
		return badRequest{err}
	}
	return err
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	var br badRequest
	var ne *node.Error
	var fe *fieldError
	if errors.As(err, &fe) {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: fe.msg, Code: CodeBadRequest, Field: fe.field})
		return
	}
	if errors.As(err, &ne) {
		// What the caller caused, with what a front end needs to say what
		// to do next.
		status, code := http.StatusBadRequest, CodeBadRequest
		switch {
		case errors.Is(err, node.ErrConflict):
			status, code = http.StatusConflict, CodeConflict
		case errors.Is(err, node.ErrExpired):
			status, code = http.StatusGone, CodeExpired
		}
		writeJSON(w, status, ErrorResponse{Error: err.Error(), Code: code, Reason: ne.Reason, Contact: ne.Contact})
		return
	}
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the request body is over %d bytes", tooLarge.Limit))
	case errors.Is(err, node.ErrNoContact):
		writeError(w, http.StatusNotFound, CodeNoContact, err.Error())
	case errors.Is(err, fs.ErrExist):
		writeError(w, http.StatusConflict, CodeExists, err.Error())
	case errors.As(err, &br), errors.Is(err, keys.ErrNotInvite):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.As(err, new(notFoundError)):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	default:
		// The node failed (its store, say): the owner should hear of it.
		s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

// decode reads one JSON object of type T, strictly: no unknown fields, no
// trailing data.
func decode[T any](r *http.Request) (T, error) {
	var v T
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
			if terr != nil {
				err = terr
			}
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &tooLarge):
		return v, err
	case errors.Is(err, io.EOF):
		return v, bad("malformed JSON request: the body is empty")
	default:
		return v, bad("malformed JSON request: %v", err)
	}
}

func contactRef(r *http.Request) (string, error) {
	req, err := decode[ContactRequest](r)
	if err == nil && req.Contact == "" {
		err = bad(`missing "contact": a name or fingerprint prefix`)
	}
	return req.Contact, err
}

// absPath checks a path in a request: it must be absolute, since the node
// does not share the caller's working directory.
func absPath(path string) (string, error) {
	switch {
	case path == "":
		return "", bad(`missing "path"`)
	case !filepath.IsAbs(path):
		return "", bad("the path %q is not absolute (the node runs in another directory)", path)
	}
	return filepath.Clean(path), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, fmt.Appendf(nil, `{"error":%q,"code":%q}`, "failed to encode the response: "+err.Error(), CodeInternal)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg, Code: code})
}

// unrouted answers a request that matched no endpoint with the status the
// mux chose (404, or 405 with its Allow header), as a JSON error.
func unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &headerRecorder{header: http.Header{}, status: http.StatusNotFound}
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if rec.status == http.StatusMethodNotAllowed {
		writeError(w, rec.status, CodeMethod, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
}

// headerRecorder keeps a handler's status and headers and drops its body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// statusWriter remembers the status written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
