package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

var pass = []byte("test passphrase")

// ctx is the context of every client call in these tests.
var ctx = context.Background()

// shortDir is a fresh directory with a short path: unix socket paths are
// limited to about 104 bytes, and t.TempDir() can be long (macOS).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gvapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newNode(t *testing.T, home, name string) *node.Node {
	t.Helper()
	n, err := node.Init(home, pass, name, node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// fakeMesh is a mesh that only answers questions.
type fakeMesh struct {
	peers  []mesh.PeerInfo
	status mesh.Status
}

func (f *fakeMesh) Peers() []mesh.PeerInfo { return f.peers }
func (f *fakeMesh) Status() mesh.Status    { return f.status }

// fixture is Alice's node behind a real server on a real socket.
type fixture struct {
	home string
	n    *node.Node
	mesh *fakeMesh
	c    *Client
	stop func() // stops the server, fails the test unless Serve returned nil
}

func serve(t *testing.T, n *node.Node, home string, m Mesh) func() {
	t.Helper()
	ln, err := Listen(home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(n, m, nil).Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve returned %v after cancel, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// served serves n from home until the test ends and returns a client of
// it, closed when the test ends.
func served(t *testing.T, n *node.Node, home string) *Client {
	t.Helper()
	serve(t, n, home, nil)
	c, err := Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	home := shortDir(t)
	f := &fixture{home: home, n: newNode(t, home, "Alice"), mesh: &fakeMesh{}}
	f.stop = serve(t, f.n, home, f.mesh)
	c, err := Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.c = c
	return f
}

// must(f())(t) is f's value, or fails the test with f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func same(t *testing.T, what string, viaAPI, direct any) {
	t.Helper()
	if !reflect.DeepEqual(viaAPI, direct) {
		t.Errorf("%s through the API = %+v, in-process = %+v", what, viaAPI, direct)
	}
}

func TestEveryEndpoint(t *testing.T) {
	f := newFixture(t)
	a, c := f.n, f.c
	dir := shortDir(t)
	bob := newNode(t, filepath.Join(dir, "bob"), "Bob")

	self := must(c.Self(ctx))(t)
	same(t, "Self", self, must(a.Self())(t))
	if self.Name != "Alice" || !strings.HasPrefix(self.Link, "grapevine:") {
		t.Fatalf("Self = %+v", self)
	}
	if inv := must(c.Invite(ctx))(t); inv.Link() != self.Link || inv.Name != "Alice" {
		t.Errorf("Invite link %s, want %s", inv.Link(), self.Link)
	}
	if cs := must(c.Contacts(ctx))(t); len(cs) != 0 {
		t.Errorf("Contacts of a new node = %+v", cs)
	}

	// Alice adds Bob and writes to him.
	bobSelf := must(bob.Self())(t)
	ct := must(c.AddContact(ctx, bobSelf.Link, "Bobby"))(t)
	if ct.Name != "Bobby" || ct.State != node.StatePending || ct.Fingerprint != bobSelf.Fingerprint {
		t.Errorf("AddContact = %+v", ct)
	}
	same(t, "Contacts", must(c.Contacts(ctx))(t), must(a.Contacts())(t))
	gotCt, num, err := c.SafetyNumber(ctx, "bobby")
	wantCt, wantNum, _ := a.SafetyNumber("bobby")
	if err != nil || num == "" {
		t.Fatalf("SafetyNumber = %q, %v", num, err)
	}
	same(t, "SafetyNumber", []any{gotCt, num}, []any{wantCt, wantNum})
	m := must(c.Send(ctx, "Bobby", "See you at the well at nine"))(t)
	if m.Contact != "Bobby" || m.Status != node.StatusQueued || m.Text != "See you at the well at nine" || m.Direction != "out" {
		t.Errorf("Send = %+v", m)
	}
	same(t, "Messages", must(c.Messages(ctx, ""))(t), must(a.Messages(""))(t))
	same(t, "Messages(Bobby)", must(c.Messages(ctx, "Bobby"))(t), must(a.Messages("Bobby"))(t))
	same(t, "Envelopes", must(c.Envelopes(ctx))(t), must(a.Envelopes())(t))

	// Export takes a relative path from the caller's working directory.
	t.Chdir(dir)
	if r := must(c.ExportFile(ctx, "alice.gvb", node.ExportOptions{}))(t); r.Count != 2 || r.Path != filepath.Join(dir, "alice.gvb") { // the request and the message
		t.Errorf("Export wrote %+v, want 2 envelopes in alice.gvb", r)
	}
	rep := must(bob.Import(filepath.Join(dir, "alice.gvb")))(t)
	if rep.Requests != 1 || rep.RequestMessages != 1 {
		t.Fatalf("Bob's import = %+v", rep)
	}
	must(bob.Accept("Alice"))(t)
	must(bob.Send("Alice", "Nine it is"))(t)
	must(bob.Export(filepath.Join(dir, "bob.gvb")))(t)

	got := must(c.ImportFile(ctx, "bob.gvb"))(t)
	if got.Messages != 1 || got.Delivered != 1 || !got.Complete || got.Received == 0 {
		t.Errorf("Import = %+v", got)
	}
	ms := must(c.Messages(ctx, "Bobby"))(t)
	if len(ms) != 2 || ms[0].Status != node.StatusDelivered || ms[1].Text != "Nine it is" || ms[1].Status != node.StatusReceived {
		t.Errorf("Messages after import = %+v", ms)
	}
	if cs := must(c.Contacts(ctx))(t); len(cs) != 1 || cs[0].State != node.StateActive {
		t.Errorf("Contacts after Bob accepted = %+v", cs)
	}

	// Carol and Dave add Alice: she accepts one and rejects the other.
	carol := newNode(t, filepath.Join(dir, "carol"), "Carol")
	dave := newNode(t, filepath.Join(dir, "dave"), "Dave")
	for _, o := range []*node.Node{carol, dave} {
		must(o.AddContact(self.Link, ""))(t)
		must(o.Export(filepath.Join(dir, "o.gvb")))(t)
		if rep := must(c.ImportFile(ctx, filepath.Join(dir, "o.gvb")))(t); rep.Requests != 1 {
			t.Fatalf("Import of a request = %+v", rep)
		}
	}
	if ct := must(c.Accept(ctx, "Dave"))(t); ct.Name != "Dave" || ct.State != node.StateActive {
		t.Errorf("Accept = %+v", ct)
	}
	if err := c.Reject(ctx, "Carol"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ct := range must(c.Contacts(ctx))(t) {
		names = append(names, ct.Name+":"+ct.State)
	}
	if strings.Join(names, " ") != "Bobby:active Dave:active" {
		t.Errorf("Contacts = %v", names)
	}

	// Peers and status come from the mesh.
	if ps := must(c.Peers(ctx))(t); ps == nil || len(ps) != 0 {
		t.Errorf("Peers with none linked = %#v, want empty", ps)
	}
	since := time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC)
	f.mesh.peers = []mesh.PeerInfo{
		{Addr: "192.0.2.7:7117", Transport: "tcp", Direction: "in", Since: since, BytesSent: 1000, BytesReceived: 2000,
			EnvelopesSent: 3, EnvelopesReceived: 4, Synced: true},
		{Addr: "198.51.100.1:7117", Transport: "tcp", Direction: "out", Static: true, Since: since.Add(time.Minute)},
	}
	same(t, "Peers", must(c.Peers(ctx))(t), f.mesh.peers)
	f.mesh.status = mesh.Status{Stats: must(a.Stats())(t), Peers: 2, Listen: []string{"[::]:7117"},
		Discovery: true, Relay: true, Started: since}
	same(t, "Status", must(c.Status(ctx))(t), f.mesh.status)
	same(t, "Stats", must(c.Stats(ctx))(t), f.mesh.status.Stats)
}

func TestNoMesh(t *testing.T) {
	home := shortDir(t)
	n := newNode(t, home, "Alice")
	serve(t, n, home, nil)
	c := must(Dial(home))(t)
	defer c.Close()
	if ps := must(c.Peers(ctx))(t); len(ps) != 0 {
		t.Errorf("Peers = %+v", ps)
	}
	st := must(c.Status(ctx))(t)
	if st.Stats != must(n.Stats())(t) || st.Peers != 0 || !st.Relay {
		t.Errorf("Status = %+v", st)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	a, c := f.n, f.c
	dir := shortDir(t)

	// An unknown contact fails as in-process, with the same text.
	noContact := map[string][2]error{}
	_, err := c.Accept(ctx, "Zed")
	_, want := a.Accept("Zed")
	noContact["Accept"] = [2]error{err, want}
	noContact["Reject"] = [2]error{c.Reject(ctx, "Zed"), a.Reject("Zed")}
	_, _, err = c.SafetyNumber(ctx, "Zed")
	_, _, want = a.SafetyNumber("Zed")
	noContact["SafetyNumber"] = [2]error{err, want}
	_, err = c.Send(ctx, "Zed", "hello")
	_, want = a.Send("Zed", "hello")
	noContact["Send"] = [2]error{err, want}
	_, err = c.Messages(ctx, "Zed")
	_, want = a.Messages("Zed")
	noContact["Messages"] = [2]error{err, want}
	for what, e := range noContact {
		got, want := e[0], e[1]
		if !errors.Is(got, node.ErrNoContact) || !errors.Is(want, node.ErrNoContact) {
			t.Errorf("%s: %v, want an error wrapping ErrNoContact", what, got)
			continue
		}
		var ae *Error
		if !errors.As(got, &ae) || ae.Status != http.StatusNotFound || ae.Code != CodeNoContact {
			t.Errorf("%s: %#v, want 404 %s", what, got, CodeNoContact)
		}
		if got.Error() != want.Error() || !strings.Contains(got.Error(), `no such contact: "Zed"`) {
			t.Errorf("%s: %q, in-process %q", what, got, want)
		}
	}

	// Bad input: 400, with the node's wording.
	bob := newNode(t, filepath.Join(dir, "bob"), "Bob")
	must(c.AddContact(ctx, must(bob.Self())(t).Link, ""))(t)
	badInput := []struct {
		name string
		err  error
		text string
	}{
		{"empty text", second(c.Send(ctx, "Bob", "")), "the message is empty"},
		{"long text", second(c.Send(ctx, "Bob", strings.Repeat("x", node.MaxText+1))), "limit 16384"},
		{"no recipient", second(c.Send(ctx, "", "hi")), `missing "to"`},
		{"bad link", second(c.AddContact(ctx, "grapevine:notalink", "")), "not a valid grapevine invite"},
		{"no link", second(c.AddContact(ctx, "", "")), `missing "link"`},
		{"no contact", c.Reject(ctx, ""), `missing "contact"`},
		{"no file", second(c.ImportFile(ctx, filepath.Join(dir, "missing.gvb"))), "no such file"},
		{"not a bundle", second(c.ImportFile(ctx, writeFile(t, dir, "junk.gvb", "hello"))), "not a grapevine bundle"},
		{"no directory", second(c.ExportFile(ctx, filepath.Join(dir, "no", "such", "x.gvb"), node.ExportOptions{})), "no such file"},
	}
	for _, b := range badInput {
		var ae *Error
		if !errors.As(b.err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != CodeBadRequest {
			t.Errorf("%s: %#v, want a 400 *Error", b.name, b.err)
		} else if !strings.Contains(ae.Error(), b.text) {
			t.Errorf("%s: %q, want it to say %q", b.name, ae, b.text)
		}
	}
	// JSON cannot carry invalid UTF-8: the client refuses it as the node does.
	_, err = c.Send(ctx, "Bob", "\xff")
	if _, want := a.Send("Bob", "\xff"); err == nil || err.Error() != want.Error() {
		t.Errorf("Send of invalid UTF-8: %v, in-process %v", err, want)
	}
	_, _, err = c.SafetyNumber(ctx, "")
	if ae := (*Error)(nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("SafetyNumber(\"\") = %v, want 400", err)
	}

	// What the node refuses for other reasons keeps its message, and is the
	// caller's doing: 4xx with the reason, never 500.
	conflicts := []struct {
		name        string
		err         error
		text        string
		reason, who string
	}{
		{"own invite", second(c.AddContact(ctx, must(a.Self())(t).Link, "")), "that is your own invite", node.ReasonOwnInvite, ""},
		{"accept a pending contact", second(c.Accept(ctx, "Bob")), "is not a contact request", node.ReasonNotRequest, "Bob"},
	}
	for _, cf := range conflicts {
		var ae *Error
		if !errors.As(cf.err, &ae) || ae.Status != http.StatusConflict || ae.Code != CodeConflict || !errors.Is(cf.err, node.ErrConflict) {
			t.Errorf("%s: %#v, want 409 %s", cf.name, cf.err, CodeConflict)
			continue
		}
		if !strings.Contains(ae.Error(), cf.text) || ae.Reason != cf.reason || ae.Contact != cf.who {
			t.Errorf("%s: %q reason %q contact %q", cf.name, ae, ae.Reason, ae.Contact)
		}
	}
	// Invalid input the node finds: 400, with a reason.
	for name, err := range map[string]error{
		"blank text":   second(c.Send(ctx, "Bob", "   ")),
		"invalid name": second(c.Rename(ctx, "Bob", "B\u202eob")),
	} {
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Reason == "" || !errors.Is(err, node.ErrInvalid) {
			t.Errorf("%s: %#v, want 400 with a reason", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawClient speaks HTTP on the socket in home, for requests Client never makes.
func rawClient(home string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", SocketPath(home))
		},
	}}
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	hc := rawClient(f.home)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, text               string
	}{
		{"malformed JSON", "POST", "/v1/send", `{"to": "Bob", "text": `, 400, CodeBadRequest, "malformed JSON"},
		{"not an object", "POST", "/v1/send", `["Bob", "hi"]`, 400, CodeBadRequest, "malformed JSON"},
		{"empty body", "POST", "/v1/contacts/accept", ``, 400, CodeBadRequest, "the body is empty"},
		{"unknown field", "POST", "/v1/send", `{"to": "Bob", "txt": "hi"}`, 400, CodeBadRequest, `unknown field "txt"`},
		{"trailing data", "POST", "/v1/contacts/reject", `{"contact": "Bob"} {}`, 400, CodeBadRequest, "malformed JSON"},
		{"oversized body", "POST", "/v1/send", `{"to": "Bob", "text": "` + strings.Repeat("x", 2*MaxBody) + `"}`, 413, CodeTooLarge, "over 1048576 bytes"},
		{"relative path", "POST", "/v1/export", `{"path": "out.gvb"}`, 400, CodeBadRequest, "is not absolute"},
		{"no path", "POST", "/v1/import", `{}`, 400, CodeBadRequest, `missing "path"`},
		{"unknown endpoint", "GET", "/v1/frobnicate", ``, 404, CodeNotFound, "no such endpoint: GET /v1/frobnicate"},
		{"outside /v1", "GET", "/", ``, 404, CodeNotFound, "no such endpoint"},
		{"wrong method", "DELETE", "/v1/contacts", ``, 405, CodeMethod, "DELETE is not allowed on /v1/contacts"},
		{"GET for POST", "GET", "/v1/send", ``, 405, CodeMethod, "not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://grapevine"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e ErrorResponse
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("%d answer is not a JSON error: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || e.Code != tc.code || !strings.Contains(e.Error, tc.text) {
				t.Errorf("%d %+v, want %d %s saying %q", resp.StatusCode, e, tc.status, tc.code, tc.text)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// Lists are [] rather than null, and a good request still works after
	// all that.
	resp, err := hc.Get("http://grapevine/v1/contacts")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("GET /v1/contacts = %d %s", resp.StatusCode, b)
	}
}

func TestSocket(t *testing.T) {
	f := newFixture(t)
	path := SocketPath(f.home)
	if path != filepath.Join(f.home, "grapevine.sock") {
		t.Errorf("SocketPath = %s", path)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}

	// A second node in the same home is refused, and the first keeps working.
	_, err = Listen(f.home)
	if !errors.Is(err, ErrRunning) || err.Error() != "a node is already running in "+f.home {
		t.Errorf("second Listen: %v", err)
	}
	must(f.c.Self(ctx))(t)

	// Stopping the server removes the socket; then no node answers.
	f.stop()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after the server stopped: %v", err)
	}
	if _, err := Dial(f.home); !errors.Is(err, ErrNoNode) || err.Error() != "no node is running in "+f.home {
		t.Errorf("Dial with no node: %v", err)
	}
	if _, err := f.c.Self(ctx); err == nil || !strings.Contains(err.Error(), "failed to reach the node") {
		t.Errorf("request after the node stopped: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	home := shortDir(t)
	path := SocketPath(home)
	// A node that died left its socket behind.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal("the stale socket is gone:", err)
	}
	if _, err := Dial(home); !errors.Is(err, ErrNoNode) {
		t.Errorf("Dial on a stale socket: %v, want ErrNoNode", err)
	}
	n := newNode(t, home, "Alice")
	serve(t, n, home, nil)
	c, err := Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if self := must(c.Self(ctx))(t); self.Name != "Alice" {
		t.Errorf("Self = %+v", self)
	}
}

func TestNoSocket(t *testing.T) {
	dir := shortDir(t)
	for _, home := range []string{dir, filepath.Join(dir, "missing"), writeFile(t, dir, "file", "")} {
		if _, err := Dial(home); !errors.Is(err, ErrNoNode) {
			t.Errorf("Dial(%s): %v, want ErrNoNode", home, err)
		}
	}
	// A path too long for any socket: no node can run there.
	long := filepath.Join(dir, strings.Repeat("d", 120))
	if _, err := Dial(long); !errors.Is(err, ErrNoNode) {
		t.Errorf("Dial on a long path: %v, want ErrNoNode", err)
	}
	if _, err := Listen(long); err == nil || !strings.Contains(err.Error(), "use a shorter home path") {
		t.Errorf("Listen on a long path: %v", err)
	}

	// A file that is not a socket is left alone.
	home := filepath.Join(dir, "h")
	os.Mkdir(home, 0o700)
	writeFile(t, home, SocketName, "mine")
	if _, err := Listen(home); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(SocketPath(home)); string(b) != "mine" {
		t.Error("Listen touched a regular file")
	}

	// Listen makes a missing home, owner-only.
	home = filepath.Join(dir, "new")
	ln, err := Listen(home)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home made by Listen: %v, %v", fi.Mode(), err)
	}
}

// The node is safe for concurrent use, so the server serves requests in
// parallel.
func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t)
	bob := newNode(t, filepath.Join(shortDir(t), "bob"), "Bob")
	must(f.c.AddContact(ctx, must(bob.Self())(t).Link, ""))(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Go(func() {
			_, err := f.c.Send(ctx, "Bob", strings.Repeat("x", i+1))
			errs <- err
		})
		wg.Go(func() {
			_, err := f.c.Messages(ctx, "")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if ms := must(f.c.Messages(ctx, "Bob"))(t); len(ms) != 20 {
		t.Errorf("%d messages, want 20", len(ms))
	}
}

// TestSocketOfAnotherUser: a socket that belongs to someone else is never
// talked to, even in a home that is ours (it needs root to make one).
func TestSocketOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a socket of another user needs root")
	}
	f := newFixture(t)
	path := SocketPath(f.home)
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(f.home)
	if err == nil || errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Errorf("Dial of a socket of user 65534: %v", err)
	}
	// A client that connected before is refused on its next connection too.
	f.c.Close()
	if _, err := f.c.Self(ctx); err == nil || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Errorf("request over a socket now of user 65534: %v", err)
	}
}
