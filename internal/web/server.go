// Package web serves Grapevine's user interface to a browser: the pages
// (plain JS and CSS embedded in the binary, no third-party request), the
// local API under /api/ (the same endpoints as the unix socket, see
// internal/api), and what a browser cannot do through the API: QR codes
// drawn and read, bundles downloaded and uploaded, files, photos and voice
// notes uploaded and served from the sealed store (files.go), the passphrase
// of a node started locked.
//
// The server listens on loopback. Whoever can reach a loopback port is not
// necessarily the owner (other users of the machine, a web page in the
// owner's browser), so every request is checked:
//
//   - a random secret in the URL that `grapevine up` and `grapevine ui`
//     print (to the owner only) is exchanged once per browser for an
//     HttpOnly, SameSite=Strict session cookie; the API needs the cookie;
//   - the Host header must be an IP literal or localhost with the server's
//     port (a DNS rebinding attack names its own host);
//   - a request that changes anything must carry an Origin equal to the
//     server's own (cross-site request forgery), and no request may come
//     from another site (Sec-Fetch-Site);
//   - every response forbids inline script, framing and sniffing (CSP), so a
//     name or text that slipped into the page as HTML would still not run.
//
// Serving to another device on the LAN is opt-in and only over TLS, with a
// self-signed certificate whose fingerprint the pairing link carries.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/photo"
)

// DefaultAddr is where `grapevine up` serves the UI unless told otherwise.
const DefaultAddr = "127.0.0.1:7343"

// CookieName is the session cookie.
const CookieName = "grapevine_session"

// Settings are what `grapevine up` was started with, shown on the settings
// page (they change with up's flags). Stealth, relaying, the relay and
// chunk quotas, the file limit and retention change in the page itself (the
// API's /v1/settings).
type Settings struct {
	Listen    string   `json:"listen"`
	Peers     []string `json:"peers"`
	Discovery bool     `json:"discovery"`
}

// Unlocker opens the node with a passphrase, for a node started locked: the
// passphrase is typed into the browser. Once it returns nil, the caller
// starts the node and calls SetNode.
type Unlocker func(ctx context.Context, passphrase []byte) error

// Config is how the UI is served.
type Config struct {
	Addr     string       // loopback address to listen on (DefaultAddr)
	LANAddr  string       // also serve over TLS here ("" for nowhere)
	Settings Settings     // shown on the settings page
	Log      *slog.Logger // nil: discard
	Rand     func([]byte) // nil: crypto/rand
}

// Server serves the UI of one node.
type Server struct {
	cfg    Config
	log    *slog.Logger
	secret string // the URL secret
	mux    *http.ServeMux

	mu       sync.Mutex
	sessions map[string]bool   // cookie values handed out
	exports  map[string]string // bundles written for the page, by download token: their directory (bundles.go)
	n        *node.Node        // nil while locked
	m        api.Mesh
	api      http.Handler
	unlock   Unlocker // set while locked
	unlocked chan struct{}
	failures int // wrong passphrases in a row

	unlockMu sync.Mutex // one passphrase tried at a time

	ln, lanLn net.Listener
	port      string
	cert      *tls.Certificate
	certFP    string // SHA-256 of the LAN certificate, hex
}

// New prepares a server; Listen starts it. Serve the node with SetNode, or
// wait for the passphrase with SetUnlocker.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = func(b []byte) { rand.Read(b) }
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	s := &Server{cfg: cfg, log: cfg.Log, sessions: map[string]bool{}, exports: map[string]string{}, unlocked: make(chan struct{})}
	s.secret = s.random()
	s.routes()
	return s, nil
}

func (s *Server) random() string {
	b := make([]byte, 32)
	s.cfg.Rand(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SetNode serves n and m (m may be nil).
func (s *Server) SetNode(n *node.Node, m api.Mesh) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n, s.m, s.api, s.unlock = n, m, api.NewServer(n, m, s.log), nil
	// The first list of conversations decodes every contact and message:
	// do it now, so that the first page the user opens is quick.
	go n.Conversations()
	select {
	case <-s.unlocked:
	default:
		close(s.unlocked)
	}
}

// SetUnlocker makes the server show the lock screen until the passphrase
// typed there opens the node through fn.
func (s *Server) SetUnlocker(fn Unlocker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unlock = fn
}

// Unlocked is closed once the server serves a node.
func (s *Server) Unlocked() <-chan struct{} { return s.unlocked }

// Listen opens the loopback listener (and the LAN one, if configured). The
// loopback address must be a loopback IP or localhost.
func (s *Server) Listen() error {
	host, _, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("failed to read the UI address %q: %w", s.cfg.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("the UI address %s is not on loopback: serve other devices with --ui-lan (TLS)", s.cfg.Addr)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("failed to listen for the UI on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	_, s.port, _ = net.SplitHostPort(ln.Addr().String())
	if s.cfg.LANAddr != "" {
		if err := s.listenLAN(); err != nil {
			ln.Close()
			return err
		}
	}
	return nil
}

// URL is the address that opens the UI in a browser: it carries the secret,
// so it is shown to the owner only (up's output, grapevine ui).
func (s *Server) URL() string {
	return "http://" + s.ln.Addr().String() + "/open?k=" + url.QueryEscape(s.secret)
}

// Serve answers until ctx ends, then shuts down.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(s.ln) }()
	n := 1
	if s.lanLn != nil {
		n++
		go func() { errc <- srv.Serve(tls.NewListener(s.lanLn, s.tlsConfig())) }()
	}
	select {
	case err := <-errc:
		srv.Close()
		return fmt.Errorf("failed to serve the UI: %w", err)
	case <-ctx.Done():
	}
	err := srv.Shutdown(context.Background())
	for range n {
		<-errc
	}
	s.dropExports()
	return err
}

// Security headers of every response.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; media-src 'self' blob: mediastream:; manifest-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
	if err := s.checkOrigin(r); err != nil {
		s.log.Warn("UI request refused", "method", r.Method, "path", r.URL.Path, "host", r.Host, "origin", r.Header.Get("Origin"), "why", err)
		http.Error(w, "refused: "+err.Error(), http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

var errWrongHost = errors.New("wrong Host")

// checkOrigin refuses requests for another host (DNS rebinding), from
// another site, and unsafe methods without our own Origin (CSRF).
func (s *Server) checkOrigin(r *http.Request) error {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != s.portOf(r) {
		return errWrongHost
	}
	if host != "localhost" && net.ParseIP(strings.Trim(host, "[]")) == nil {
		return errWrongHost
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("request from another site (%s)", site)
	}
	origin := r.Header.Get("Origin")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	self := scheme + "://" + r.Host
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if origin != "" && origin != self {
			return fmt.Errorf("cross-origin request from %s", origin)
		}
	default:
		if origin != self {
			return fmt.Errorf("a change must come from %s, not from %q", self, origin)
		}
	}
	return nil
}

// portOf is the port the request came in on.
func (s *Server) portOf(r *http.Request) string {
	if r.TLS != nil && s.lanLn != nil {
		_, p, _ := net.SplitHostPort(s.lanLn.Addr().String())
		return p
	}
	return s.port
}

// authed reports whether the request carries a session cookie we handed out.
func (s *Server) authed(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value]
}

// open exchanges the URL secret for a session cookie, then sends the
// browser to the UI without the secret in its address bar and history.
func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	k := r.URL.Query().Get("k")
	if subtle.ConstantTimeCompare([]byte(k), []byte(s.secret)) != 1 {
		http.Error(w, "This link is not valid (any more). Run `grapevine ui` for a fresh one.", http.StatusForbidden)
		return
	}
	v := s.random()
	s.mu.Lock()
	s.sessions[v] = true
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Location", "/")
	w.WriteHeader(http.StatusSeeOther)
}

// needAuth wraps handlers that need the session cookie.
func (s *Server) needAuth(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authed(r) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "open the link that `grapevine up` or `grapevine ui` printed")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r)
	}
}

// node returns what is served, or nil while locked.
func (s *Server) node() (*node.Node, api.Mesh, http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.m, s.api
}

// withNode wraps handlers that need the unlocked node.
func (s *Server) withNode(fn func(w http.ResponseWriter, r *http.Request, n *node.Node, m api.Mesh)) http.HandlerFunc {
	return s.needAuth(func(w http.ResponseWriter, r *http.Request) {
		n, m, _ := s.node()
		if n == nil {
			writeError(w, http.StatusServiceUnavailable, "locked", "the node is locked: enter the passphrase")
			return
		}
		fn(w, r, n, m)
	})
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	s.mux = mux
	mux.HandleFunc("GET /open", s.open)
	mux.HandleFunc("GET /{$}", s.static("index.html"))
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) { s.static(r.PathValue("file"))(w, r) })
	mux.HandleFunc("GET /favicon.ico", s.static("icon.svg"))
	mux.HandleFunc("/api/", s.needAuth(s.proxyAPI))
	mux.HandleFunc("GET /ui/state", s.needAuth(s.state))
	mux.HandleFunc("POST /ui/unlock", s.needAuth(s.unlockHandler))
	mux.HandleFunc("GET /ui/settings", s.withNode(s.settings))
	mux.HandleFunc("GET /ui/qr.svg", s.needAuth(s.qrSVG))
	mux.HandleFunc("POST /ui/qr/decode", s.needAuth(s.qrDecode))
	mux.HandleFunc("GET /ui/export", s.withNode(s.export))
	mux.HandleFunc("POST /ui/export", s.withNode(s.exportStreamed))
	mux.HandleFunc("GET /ui/export/{token}", s.withNode(s.exportDownload))
	mux.HandleFunc("POST /ui/import", s.withNode(s.importBundle))
	mux.HandleFunc("GET /ui/files/{id}", s.withNode(s.serveFile))
	mux.HandleFunc("POST /ui/files/send", s.withNode(s.sendFile))
}

// proxyAPI answers /api/v1/... with the local API's /v1/..., except the
// endpoints that name files on the node's disk (the browser up- and
// downloads bundles and attachments through /ui/ instead): a page must not
// make the node read or write a path of its choosing.
func (s *Server) proxyAPI(w http.ResponseWriter, r *http.Request) {
	_, _, h := s.node()
	if h == nil {
		writeError(w, http.StatusServiceUnavailable, "locked", "the node is locked: enter the passphrase")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/api")
	switch p {
	case "/v1/export", "/v1/import":
		writeError(w, http.StatusForbidden, "forbidden", "bundles go through /ui/export and /ui/import")
		return
	case "/v1/files/send", "/v1/groups/files/send", "/v1/files/save":
		writeError(w, http.StatusForbidden, "forbidden", "files go through /ui/files/send and /ui/files/{id}")
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = p, ""
	h.ServeHTTP(w, r2)
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	n, _, _ := s.node()
	s.mu.Lock()
	canUnlock := s.unlock != nil
	s.mu.Unlock()
	writeJSON(w, map[string]any{"locked": n == nil, "can_unlock": canUnlock, "lan": s.lanInfo()})
}

// unlockHandler takes the passphrase of a node started locked.
func (s *Server) unlockHandler(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := decodeJSON(r, 4096, &req); err != nil || req.Passphrase == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "enter the passphrase")
		return
	}
	s.mu.Lock()
	fn := s.unlock
	if s.n != nil {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"locked": false})
		return
	}
	fails := s.failures
	s.mu.Unlock()
	if fn == nil {
		writeError(w, http.StatusConflict, "not_locked", "this node was not started locked")
		return
	}
	s.unlockMu.Lock()
	defer s.unlockMu.Unlock()
	if n, _, _ := s.node(); n != nil { // another request unlocked it meanwhile
		writeJSON(w, map[string]any{"locked": false})
		return
	}
	if fails > 3 { // slow guessing down; Argon2id already costs each try
		time.Sleep(time.Duration(min(fails, 10)) * time.Second)
	}
	err := fn(r.Context(), []byte(req.Passphrase))
	if err != nil {
		s.mu.Lock()
		s.failures++
		s.mu.Unlock()
		s.log.Warn("UI unlock failed", "err", err)
		writeError(w, http.StatusForbidden, "wrong_passphrase", err.Error())
		return
	}
	s.mu.Lock()
	s.failures = 0
	s.mu.Unlock()
	select { // the node starts
	case <-s.unlocked:
	case <-r.Context().Done():
		return
	}
	writeJSON(w, map[string]any{"locked": false})
}

func (s *Server) settings(w http.ResponseWriter, r *http.Request, n *node.Node, m api.Mesh) {
	cfg := n.Config()
	limit := n.FileLimit()
	writeJSON(w, map[string]any{
		"file_limit":      limit, // the page refuses a larger file before uploading it
		"photo_limit":     max(limit, photo.DefaultMaxInput),
		"up":              s.cfg.Settings,
		"retention":       cfg.Retention.String(),
		"retention_hours": int(cfg.Retention.Hours()),
		"history_days":    int(cfg.History.Hours() / 24),
		"hops":            cfg.Hops,
		"routing":         node.FormatRouting(cfg.Copies),
		"invite_lifetime": cfg.InviteLifetime.String(),
		"invite_hours":    int(cfg.InviteLifetime.Hours()),
		"lan":             s.lanInfo(),
	})
}

// Addr is the loopback address served, once listening.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the loopback port served, once listening.
func (s *Server) Port() int {
	p, _ := strconv.Atoi(s.port)
	return p
}
