package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"rsc.io/qr"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// fixture is a server on a real loopback listener, serving a node in memory.
type fixture struct {
	s      *Server
	base   string
	cookie *http.Cookie
	n      *node.Node
}

func newFixture(t *testing.T, locked bool) *fixture {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	f := &fixture{s: s, base: "http://" + s.Addr()}
	if !locked {
		n, err := node.InitMemory("Alice", node.DefaultConfig, node.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		f.n = n
		s.SetNode(n, nil)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("open: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			f.cookie = ck
		}
	}
	if f.cookie == nil || !f.cookie.HttpOnly || f.cookie.SameSite != http.SameSiteStrictMode || f.cookie.Path != "/" {
		t.Fatalf("cookie %+v", f.cookie)
	}
	return f
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if f.cookie != nil {
		req.AddCookie(f.cookie)
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", f.base)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestHeadersAndAssets(t *testing.T) {
	f := newFixture(t, false)
	resp, body := f.do(t, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `<script src="/static/app.js" defer></script>`) {
		t.Fatalf("index: %s", resp.Status)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline or eval: %q", csp)
	}
	for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	// Every asset is embedded; no page names another host.
	entries, _ := assets.ReadDir("assets")
	for _, e := range entries {
		resp, body := f.do(t, http.MethodGet, "/static/"+e.Name(), nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", e.Name(), resp.Status)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(body, bad) && !(bad == "http://" && strings.Contains(body, `xmlns="http://www.w3.org/2000/svg"`)) &&
				!(bad == "http://" && strings.Contains(body, "'http://www.w3.org/2000/svg'")) {
				t.Errorf("%s contains %q", e.Name(), bad)
			}
		}
	}
	// Revalidated by ETag: the same script again is a 304, without a body.
	resp, _ = f.do(t, http.MethodGet, "/static/app.js", nil, nil)
	tag := resp.Header.Get("ETag")
	if tag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q, Cache-Control %q", tag, resp.Header.Get("Cache-Control"))
	}
	if resp, body := f.do(t, http.MethodGet, "/static/app.js", nil, map[string]string{"If-None-Match": tag}); resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("app.js with its ETag: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := f.do(t, http.MethodGet, "/static/app.js", nil, map[string]string{"If-None-Match": `"old"`}); resp.StatusCode != 200 {
		t.Errorf("app.js with another ETag: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, http.MethodGet, "/static/..%2fserver.go", nil, nil); resp.StatusCode == 200 {
		t.Error("served a file outside the assets")
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, false)
	port := f.base[strings.LastIndex(f.base, ":")+1:]
	for _, tc := range []struct {
		what   string
		method string
		path   string
		hdr    map[string]string
		cookie bool
		want   int
	}{
		{"signed in", "GET", "/api/v1/self", nil, true, 200},
		{"localhost", "GET", "/api/v1/self", map[string]string{"Host": "localhost:" + port}, true, 200},
		{"no cookie", "GET", "/api/v1/self", nil, false, 401},
		{"rebinding host", "GET", "/api/v1/self", map[string]string{"Host": "evil.example:" + port}, true, 403},
		{"host without port", "GET", "/api/v1/self", map[string]string{"Host": "127.0.0.1"}, true, 403},
		{"cross-site fetch", "GET", "/api/v1/self", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, 403},
		{"same-site fetch", "GET", "/api/v1/self", map[string]string{"Sec-Fetch-Site": "same-site"}, true, 403},
		{"cross-origin", "POST", "/api/v1/send", map[string]string{"Origin": "http://evil.example"}, true, 403},
		{"null origin", "POST", "/api/v1/send", map[string]string{"Origin": "null"}, true, 403},
		{"settings, cross-origin", "PUT", "/api/v1/settings", map[string]string{"Origin": "http://evil.example"}, true, 403},
		{"settings, cross-site", "PUT", "/api/v1/settings", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, 403},
		{"settings without cookie", "PUT", "/api/v1/settings", nil, false, 401},
		{"settings, rebinding host", "GET", "/api/v1/settings", map[string]string{"Host": "evil.example:" + port}, true, 403},
		{"settings signed in", "PUT", "/api/v1/settings", nil, true, 200}, // {} changes nothing
		{"bundle paths", "POST", "/api/v1/export", nil, true, 403},
		{"bundle paths", "POST", "/api/v1/import", nil, true, 403},
		{"file paths", "POST", "/api/v1/files/send", nil, true, 403},
		{"file paths", "POST", "/api/v1/groups/files/send", nil, true, 403},
		{"file paths", "POST", "/api/v1/files/save", nil, true, 403},
		{"wrong secret", "GET", "/open?k=nope", nil, false, 403},
		{"qr without cookie", "GET", "/ui/qr.svg?text=x", nil, false, 401},
		{"export without cookie", "GET", "/ui/export", nil, false, 401},
		{"unlock without cookie", "POST", "/ui/unlock", nil, false, 401},
	} {
		ck := f.cookie
		if !tc.cookie {
			f.cookie = nil
		}
		resp, body := f.do(t, tc.method, tc.path, strings.NewReader("{}"), tc.hdr)
		f.cookie = ck
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s %s = %d (%s), want %d", tc.what, tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
	// Without an Origin at all, a change is refused.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/v1/read", `{"contact":"x"}`},
		{http.MethodPut, "/api/v1/settings", `{"relay":false}`},
	} {
		req, _ := http.NewRequest(c.method, f.base+c.path, strings.NewReader(c.body))
		req.AddCookie(f.cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("a change without Origin, %s %s: %d", c.method, c.path, resp.StatusCode)
		}
	}
	// None of the refused requests changed a setting.
	if resp, body := f.do(t, http.MethodGet, "/api/v1/settings", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"relay":true`) {
		t.Errorf("settings after refused changes: %d %s", resp.StatusCode, body)
	}
}

func TestQRRoundTrip(t *testing.T) {
	f := newFixture(t, false)
	self, _ := f.n.Self()
	resp, svg := f.do(t, "GET", "/ui/qr.svg?text="+url.QueryEscape(self.Link), nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(svg, "<svg") {
		t.Fatalf("qr.svg: %s %q", resp.Status, svg[:min(len(svg), 60)])
	}
	code, _ := qr.Encode(strings.ToUpper(self.Link), qr.M)
	resp, body := f.do(t, "POST", "/ui/qr/decode", bytes.NewReader(code.PNG()), map[string]string{"Content-Type": "image/png"})
	if resp.StatusCode != 200 || !strings.Contains(body, strings.ToUpper(self.Link)) {
		t.Fatalf("decode: %s %s", resp.Status, body)
	}
	resp, _ = f.do(t, "POST", "/ui/qr/decode", strings.NewReader("not a picture"), nil)
	if resp.StatusCode != 400 {
		t.Fatalf("decoding text: %s", resp.Status)
	}
	if resp, _ := f.do(t, "GET", "/ui/qr.svg?text="+strings.Repeat("x", 2000), nil, nil); resp.StatusCode != 400 {
		t.Fatalf("a long text: %s", resp.Status)
	}
}

// contactBob makes a node, Bob, in memory, and adds him as a contact of
// f's node: its bundle then holds the request.
func contactBob(t *testing.T, f *fixture) *node.Node {
	t.Helper()
	bob, err := node.InitMemory("Bob", node.DefaultConfig, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	self, _ := bob.Self()
	if _, err := f.n.AddContact(self.Link, ""); err != nil {
		t.Fatal(err)
	}
	return bob
}

func TestBundleDownloadAndUpload(t *testing.T) {
	f := newFixture(t, false)
	bob := contactBob(t, f)
	resp, bundle := f.do(t, "GET", "/ui/export", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Grapevine-Envelopes") != "1" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("export: %s %v", resp.Status, resp.Header)
	}
	// Bob's node imports it through his own UI.
	g := newFixture(t, true)
	g.s.SetNode(bob, nil)
	resp, body := g.do(t, "POST", "/ui/import", strings.NewReader(bundle), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"requests":1`) {
		t.Fatalf("import: %s %s", resp.Status, body)
	}
	resp, body = g.do(t, "POST", "/ui/import", strings.NewReader("garbage"), nil)
	if resp.StatusCode != 400 {
		t.Fatalf("importing garbage: %s %s", resp.Status, body)
	}
}

// TestBundleProgressStreams: asked for progress, the page's export and
// import answer with the node's progress events and then the result; the
// bundle written is downloaded once, then is gone (and its directory with
// it); an import of garbage ends with the error event.
func TestBundleProgressStreams(t *testing.T) {
	f := newFixture(t, false)
	bob := contactBob(t, f)
	stream := map[string]string{"Accept": "text/event-stream"}
	resp, body := f.do(t, "POST", "/ui/export", nil, stream)
	dl := resp.Header.Get("X-Grapevine-Download")
	if resp.StatusCode != 200 || !strings.HasPrefix(dl, "/ui/export/") || !strings.Contains(body, "event: progress\n") ||
		!strings.Contains(body, "event: result\ndata: {\"path\":") || !strings.Contains(body, `"count":1}`) {
		t.Fatalf("streamed export: %s %v\n%s", resp.Status, resp.Header, body)
	}
	resp, bundle := f.do(t, "GET", dl, nil, nil)
	if resp.StatusCode != 200 || len(bundle) == 0 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("download: %s %v", resp.Status, resp.Header)
	}
	if resp, _ := f.do(t, "GET", dl, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a second download: %s", resp.Status)
	}
	f.s.mu.Lock()
	left := len(f.s.exports)
	f.s.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d exports left after the download", left)
	}

	g := newFixture(t, true)
	g.s.SetNode(bob, nil)
	resp, body = g.do(t, "POST", "/ui/import", strings.NewReader(bundle), stream)
	if resp.StatusCode != 200 || !strings.Contains(body, `"done":true`) || !strings.Contains(body, "event: result\n") || !strings.Contains(body, `"requests":1`) {
		t.Fatalf("streamed import: %s\n%s", resp.Status, body)
	}
	resp, body = g.do(t, "POST", "/ui/import", strings.NewReader("garbage"), stream)
	if resp.StatusCode != 200 || !strings.Contains(body, "event: error\ndata: {\"status\":400,") {
		t.Fatalf("streamed import of garbage: %s\n%s", resp.Status, body)
	}
}

func TestUnlock(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	n, err := node.Init(home, []byte("right"), "Dana", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	f := newFixture(t, true)
	if _, body := f.do(t, "GET", "/ui/state", nil, nil); !strings.Contains(body, `"locked":true`) || !strings.Contains(body, `"can_unlock":false`) {
		t.Fatalf("state before: %s", body)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/self", nil, nil); resp.StatusCode != 503 {
		t.Fatalf("the API while locked: %s", resp.Status)
	}
	f.s.SetUnlocker(func(_ context.Context, pass []byte) error {
		n, err := node.Open(home, pass, node.Options{})
		if err != nil {
			return err
		}
		t.Cleanup(func() { n.Close() })
		go f.s.SetNode(n, nil) // as up does, once the node runs
		return nil
	})
	if resp, body := f.do(t, "POST", "/ui/unlock", strings.NewReader(`{"passphrase":"wrong"}`), nil); resp.StatusCode != 403 {
		t.Fatalf("a wrong passphrase: %s %s", resp.Status, body)
	}
	if resp, _ := f.do(t, "POST", "/ui/unlock", strings.NewReader(`{"passphrase":""}`), nil); resp.StatusCode != 400 {
		t.Fatalf("no passphrase: %s", resp.Status)
	}
	if resp, body := f.do(t, "POST", "/ui/unlock", strings.NewReader(`{"passphrase":"right"}`), nil); resp.StatusCode != 200 {
		t.Fatalf("unlock: %s %s", resp.Status, body)
	}
	if resp, body := f.do(t, "GET", "/api/v1/self", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, "Dana") {
		t.Fatalf("after unlocking: %s %s", resp.Status, body)
	}
}

func TestNotLoopback(t *testing.T) {
	s, _ := New(Config{Addr: "0.0.0.0:0"})
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "not on loopback") {
		t.Fatalf("listening on all addresses: %v", err)
	}
}

// FuzzRequest throws arbitrary methods, paths, hosts, origins and bodies at
// the server: it never panics, and nothing without the cookie or for a
// foreign Host gets a 200 except the public pages.
func FuzzRequest(f *testing.F) {
	n, err := node.InitMemory("Alice", node.DefaultConfig, node.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer n.Close()
	s, _ := New(Config{Addr: "127.0.0.1:0"})
	s.port = "7343"
	s.SetNode(n, nil)
	s.sessions["good"] = true
	f.Add("GET", "/api/v1/self", "127.0.0.1:7343", "", "good", "")
	f.Add("POST", "/api/v1/send", "127.0.0.1:7343", "http://127.0.0.1:7343", "good", `{"to":"x","text":"y"}`)
	f.Add("POST", "/ui/unlock", "localhost:7343", "http://localhost:7343", "good", `{"passphrase":"x"}`)
	f.Add("POST", "/ui/qr/decode", "[::1]:7343", "http://[::1]:7343", "good", "\x89PNG")
	f.Add("GET", "/open?k=x", "evil:7343", "", "", "")
	f.Fuzz(func(t *testing.T, method, path, host, origin, cookie, body string) {
		req, err := http.NewRequest(method, "http://127.0.0.1:7343/", strings.NewReader(body))
		if err != nil {
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		req.URL = u
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		public := u.Path == "/" || strings.HasPrefix(u.Path, "/static/") || u.Path == "/favicon.ico"
		if rec.Code == 200 && !public && cookie != "good" {
			t.Fatalf("%s %s with cookie %q answered 200", method, path, cookie)
		}
		if rec.Code == 200 && host != "127.0.0.1:7343" && host != "localhost:7343" && !strings.HasSuffix(host, "]:7343") && !strings.HasSuffix(host, ":7343") {
			t.Fatalf("%s %s for host %q answered 200", method, path, host)
		}
	})
}

// TestLAN: the UI for other devices is TLS only, and the pairing link
// carries the fingerprint of the certificate the server presents.
func TestLAN(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", LANAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	n, _ := node.InitMemory("Alice", node.DefaultConfig, node.Options{})
	defer n.Close()
	s.SetNode(n, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	link := s.LANURL()
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "https" || !strings.HasPrefix(u.Fragment, "sha256=") {
		t.Fatalf("pairing link %q", link)
	}
	var seen string
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			seen = hex.EncodeToString(sum[:])
			return nil
		}}}
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || seen != strings.TrimPrefix(u.Fragment, "sha256=") {
		t.Fatalf("open over TLS: %s, certificate %s, link says %s", resp.Status, seen, u.Fragment)
	}
	var secure bool
	for _, ck := range resp.Cookies() {
		secure = ck.Secure
	}
	if !secure {
		t.Fatal("the cookie over TLS is not Secure")
	}
	// Plain HTTP on the TLS port gets nothing.
	plain, err := http.Get("http://" + u.Host + "/")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatal("plain HTTP served on the LAN port")
		}
	}
}
