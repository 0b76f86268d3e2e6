// Package browser drives the web UI with a real Chromium (Debian's
// chromium, headless) against real `grapevine up` processes on loopback.
// Without chromium the tests skip, except when CI=true, where they fail.
//
//	go test ./test/browser/                 # run
//	go test ./test/browser/ -screenshots    # also rewrite docs/screenshots/
package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshots = flag.Bool("screenshots", false, "write screenshots of every page to docs/screenshots/")

const passphrase = "browser tests only"

var build struct {
	once sync.Once
	path string
	err  error
}

// grapevineBin builds the binary once for the package's tests.
func grapevineBin(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "gvb-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "grapevine")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/grapevine")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/grapevine: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

// gnode is one `grapevine up` process.
type gnode struct {
	name, home string
	ui         string // the URL that signs a browser in
	listen     string // the mesh address
	out        string // its stdout and stderr
	cmd        *exec.Cmd
}

var (
	uiLine     = regexp.MustCompile(`(?m)^Web UI:\s+(\S+)$`)
	listenLine = regexp.MustCompile(`(?m)^Listening:\s+(\S+)$`)
)

// startNode runs grapevine up for a new identity and waits for its UI.
func startNode(t *testing.T, name string, flags ...string) *gnode {
	t.Helper()
	bin := grapevineBin(t)
	dir, err := os.MkdirTemp("", "gvb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &gnode{name: name, home: filepath.Join(dir, "h"), out: filepath.Join(dir, "out.txt")}
	f, err := os.Create(n.out)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--home", n.home, "up", "--name", name, "--listen", "127.0.0.1:0", "--no-discovery",
		"--quiet", "--ui", "127.0.0.1:0", "--receipt-delay", "1s"}, flags...)
	n.cmd = exec.Command(bin, args...)
	n.cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE="+passphrase)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { n.cmd.Wait(); f.Close(); close(exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			n.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(n.out)
			t.Logf("%s's output:\n%s", name, b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(n.out)
		if m := uiLine.FindSubmatch(b); m != nil {
			n.ui = string(m[1])
			if l := listenLine.FindSubmatch(b); l != nil {
				n.listen = string(l[1])
				return n
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s: grapevine up exited:\n%s", name, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no UI within a minute:\n%s", name, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cli runs a grapevine command against the node's home (its running node).
func (n *gnode) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(grapevineBin(t), append([]string{"--home", n.home}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grapevine %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// origin is the UI's scheme://host:port.
func (n *gnode) origin(t *testing.T) string {
	u, err := url.Parse(n.ui)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// browser starts one headless Chromium for a test. fakeVideo, if set, is a
// Y4M or MJPEG file that the fake camera shows.
func browser(t *testing.T, fakeVideo string) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing and CI=true: .ci/run installs it")
		}
		t.Skip("no chromium: apt-get install chromium (CI=true makes this a failure)")
	}
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Names resolve to nothing: the browser reaches loopback IPs only.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2, EXCLUDE localhost"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.WindowSize(1280, 900),
	}
	if fakeVideo != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-video-capture", fakeVideo))
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(bctx); err != nil { // start the browser
		t.Fatalf("failed to start chromium: %v", err)
	}
	return bctx
}

// tab opens a new tab in its own browser context (its own cookies), with
// a deadline for everything it does.
func tab(t *testing.T, bctx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel2)
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS waits until the expression is truthy (the page updates itself:
// nothing here reloads it).
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.getElementById('main') && document.getElementById('main').innerText"))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, js, err, html)
	}
}

// click clicks the first element matching selector, finding and clicking it
// in one step in the page: live updates redraw lists, and a node found by
// one call may be gone by the next.
func click(t *testing.T, ctx context.Context, what, selector string) {
	t.Helper()
	waitJS(t, ctx, what, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true })()`, selector))
}

// show goes to a page of the UI and waits until it rendered.
func show(t *testing.T, ctx context.Context, hash string) {
	t.Helper()
	do(t, ctx, "go to "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", hash)))
	waitJS(t, ctx, "page "+hash, fmt.Sprintf("document.body.dataset.ready === %q", hash))
}

// Viewports of the screenshots.
var viewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{{"phone", 412, 915, true}, {"desktop", 1280, 860, false}}

// shoot writes screenshots of the current page at phone and desktop widths
// to docs/screenshots/NAME-{phone,desktop}.png when -screenshots is given.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*screenshots {
		return
	}
	dir := filepath.Join(repoRoot(t), "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, vp := range viewports {
		var opts []chromedp.EmulateViewportOption
		if vp.mobile {
			opts = append(opts, chromedp.EmulateScale(1))
		}
		do(t, ctx, "viewport", chromedp.EmulateViewport(vp.width, vp.height, opts...))
		// Let layout settle: wait for two animation frames.
		do(t, ctx, "settle", chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+vp.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, "viewport", chromedp.EmulateViewport(1280, 860))
}

// signIn opens the UI's secret link in the tab and waits for the chats page.
func signIn(t *testing.T, ctx context.Context, n *gnode) {
	t.Helper()
	do(t, ctx, n.name+" signs in", chromedp.Navigate(n.ui))
	waitJS(t, ctx, n.name+"'s chats", `document.body.dataset.ready === '#/'`)
}

// session is a cookie of n's UI got the way a browser does.
func session(t *testing.T, n *gnode) *http.Cookie {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(n.ui)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "grapevine_session" {
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Fatalf("session cookie %+v: want HttpOnly and SameSite=Strict", ck)
			}
			return ck
		}
	}
	t.Fatalf("no session cookie from %s (status %s)", n.ui, resp.Status)
	return nil
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// startLocked runs `grapevine up --locked` on an existing home: it prints
// the UI's link and waits for the passphrase there.
func startLocked(t *testing.T, bin, home string) *gnode {
	t.Helper()
	n := &gnode{name: "locked", home: home, out: filepath.Join(t.TempDir(), "out.txt")}
	f, err := os.Create(n.out)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "--home", home, "up", "--locked", "--listen", "127.0.0.1:0", "--no-discovery", "--quiet", "--ui", "127.0.0.1:0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRAPEVINE_PASSPHRASE=") {
			n.cmd.Env = append(n.cmd.Env, kv)
		}
	}
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { n.cmd.Wait(); f.Close(); close(exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(os.Interrupt)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(n.out)
			t.Logf("locked node's output:\n%s", b)
		}
	})
	for i := 0; ; i++ {
		for _, l := range readLines(n.out) {
			if strings.HasPrefix(l, "http://") {
				n.ui = l
				return n
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(n.out)
			t.Fatalf("grapevine up --locked exited:\n%s", b)
		default:
		}
		if i > 1200 {
			t.Fatal("no link from grapevine up --locked within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func listenLoopback(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// friends starts Alice and Bob (linked to her) and makes them contacts
// through the CLI.
func friends(t *testing.T) (*gnode, *gnode) {
	t.Helper()
	alice := startNode(t, "Alice")
	bob := startNode(t, "Bob", "--peer", alice.listen)
	var self struct{ Link string }
	if err := json.Unmarshal([]byte(alice.cli(t, "id", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	bob.cli(t, "contacts", "add", self.Link)
	alice.until(t, "request", "contacts")
	alice.cli(t, "contacts", "accept", "Bob")
	bob.until(t, "active", "contacts")
	return alice, bob
}
