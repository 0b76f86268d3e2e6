//go:build linux

package netns

// The harness: the grapevine binary, network namespaces joined by veth pairs,
// grapevine nodes running in them, and the CLI pointed at their homes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

const (
	// passphrase unlocks every test home; only `up` (and offline commands
	// that the test runs on purpose) get it, so the other commands must go
	// through the running node's socket.
	passphrase = "netns test passphrase"
	// waitLong bounds every wait for something to happen across the network.
	waitLong = 30 * time.Second
	// waitStart bounds a node's start: making an identity runs a memory-hard
	// KDF, slow on a busy machine.
	waitStart = time.Minute
	// prompt bounds what must happen at once, well within the keepalive
	// interval (15 s) that wakes an idle link anyway.
	prompt = 8 * time.Second
	// cliTimeout bounds one CLI command.
	cliTimeout = 2 * time.Minute
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(hostileEnv); cfg != "" {
		os.Exit(runHostile(cfg)) // a hostile client inside a namespace
	}
	if iface := os.Getenv(observeEnv); iface != "" {
		os.Exit(runObserver(iface)) // a passive listener inside a namespace
	}
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// requireNetns skips unless the test can run network namespaces; on CI
// (CI=true) it fails instead, so the tests cannot silently stop running.
func requireNetns(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("network namespaces: not in -short mode")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "network namespaces need root")
	}
	for _, tool := range []string{"ip", "tc", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "network namespaces need iproute2's %s: %v", tool, err)
		}
	}
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// build is the grapevine binary, built once per test run.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// grapevineBin returns the path of the grapevine binary, building it on first use
// from the module root.
func grapevineBin(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		if build.dir, err = os.MkdirTemp("", "gvt-bin-"); err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(build.dir, "grapevine")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/grapevine")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/grapevine: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ipCmd runs ip with these arguments and fails the test if it fails.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns is a network namespace of the test.
type netns struct {
	t    *testing.T
	name string
	mu   sync.Mutex
	ifs  int // interfaces made so far, for names
}

// newNetns creates a namespace with a unique name and its loopback up. It
// is deleted when the test ends, after every process in it was stopped.
func newNetns(t *testing.T) *netns {
	t.Helper()
	ns := &netns{t: t, name: "gvt-" + randHex(4)}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		skipOrFail(t, "cannot create a network namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// Processes the test started were stopped by their own cleanups,
		// which run first; anything still inside was started by us too.
		if out, err := exec.Command("ip", "netns", "pids", ns.name).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					t.Errorf("process %d still running in %s: killed", pid, ns.name)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns.name, err, out)
		}
	})
	ipCmd(t, "-n", ns.name, "link", "set", "lo", "up")
	return ns
}

func (ns *netns) nextIf() string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.ifs++
	return fmt.Sprintf("gv%d", ns.ifs-1)
}

// veth joins two namespaces by a veth pair made directly inside them (it
// never appears in the host's namespace), with the IPv4 link-local address
// (CIDR) given on each end; the kernel adds the IPv6 link-local ones. It
// returns the interface names. The pair is deleted when the test ends.
func veth(t *testing.T, a *netns, addrA string, b *netns, addrB string) (ifA, ifB string) {
	t.Helper()
	ifA, ifB = a.nextIf(), b.nextIf()
	ipCmd(t, "link", "add", ifA, "netns", a.name, "type", "veth", "peer", "name", ifB, "netns", b.name)
	t.Cleanup(func() {
		// Deleting one end deletes the pair; it may be gone already.
		exec.Command("ip", "-n", a.name, "link", "del", ifA).Run()
	})
	ipCmd(t, "-n", a.name, "addr", "add", addrA, "dev", ifA)
	ipCmd(t, "-n", b.name, "addr", "add", addrB, "dev", ifB)
	ipCmd(t, "-n", a.name, "link", "set", ifA, "up")
	ipCmd(t, "-n", b.name, "link", "set", ifB, "up")
	return ifA, ifB
}

// gnode is a grapevine home and the `grapevine up` process serving it.
type gnode struct {
	t     *testing.T
	label string // A, B, ... in logs
	name  string // the display name, unique per run
	ns    *netns
	home  string
	log   string // the process's stdout and stderr, across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	runs int
}

// newNode makes a home for a node (nothing runs yet). The home lives under
// a short directory, since a unix socket path must fit 108 bytes.
func newNode(t *testing.T, ns *netns, label string) *gnode {
	t.Helper()
	home, err := os.MkdirTemp("", "gvt-"+label+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	n := &gnode{t: t, label: label, name: label + "-" + randHex(5), ns: ns, home: home,
		log: filepath.Join(t.TempDir(), label+".log")}
	t.Cleanup(func() {
		n.mu.Lock()
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		if cmd != nil {
			select {
			case <-done:
			default:
				cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(n.log)
			t.Logf("--- log of %s (%s, home %s, netns %s) ---\n%s", label, n.name, home, ns.name, b)
		}
	})
	return n
}

// start runs `grapevine up` in the node's namespace with these flags
// (besides --name and --quiet) and waits until its local API answers.
func (n *gnode) start(flags ...string) {
	n.t.Helper()
	bin := grapevineBin(n.t)
	n.mu.Lock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			n.mu.Unlock()
			n.t.Fatalf("%s: already running", n.label)
		}
	}
	n.runs++
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.mu.Unlock()
		n.t.Fatal(err)
	}
	args := append([]string{"netns", "exec", n.ns.name, bin, "--home", n.home, "up", "--name", n.name, "--quiet", "--receipt-delay", "1s"}, flags...)
	fmt.Fprintf(logf, "=== run %d at %s: ip %s\n", n.runs, time.Now().Format(time.TimeOnly), strings.Join(args, " "))
	cmd := exec.Command("ip", args...)
	cmd.Env = append(cleanEnv(), "GRAPEVINE_PASSPHRASE="+passphrase)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.mu.Unlock()
		n.t.Fatalf("%s: %v", n.label, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()

	began := time.Now()
	for {
		select {
		case <-done:
			n.t.Fatalf("%s: grapevine up exited at start: %v", n.label, cmd.ProcessState)
		default:
		}
		var st status
		if _, _, err := n.try(&st, "status", "--json"); err == nil && st.Running {
			if d := time.Since(began); d > 2*time.Second {
				n.t.Logf("%s: up in %.1f s", n.label, d.Seconds())
			}
			return
		}
		if time.Since(began) > waitStart {
			n.t.Fatalf("%s: the local API did not answer within %v", n.label, waitStart)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running reports whether the node's process is alive.
func (n *gnode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and checks that the node exits cleanly with status 0.
func (n *gnode) stop() {
	n.t.Helper()
	n.signal(syscall.SIGTERM)
	if code := n.exitCode(); code != 0 {
		n.t.Fatalf("%s: exited with status %d after SIGTERM, want 0", n.label, code)
	}
	if _, err := os.Stat(filepath.Join(n.home, "grapevine.sock")); !errors.Is(err, os.ErrNotExist) {
		n.t.Errorf("%s: the socket is still there after a clean stop (%v)", n.label, err)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (n *gnode) kill() {
	n.t.Helper()
	n.signal(syscall.SIGKILL)
}

func (n *gnode) signal(sig syscall.Signal) {
	n.t.Helper()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		n.t.Fatalf("%s: not started", n.label)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("%s: %v: %v", n.label, sig, err)
	}
	select {
	case <-done:
	case <-time.After(waitLong):
		cmd.Process.Kill()
		<-done
		n.t.Fatalf("%s: did not exit within %v of %v", n.label, waitLong, sig)
	}
}

func (n *gnode) exitCode() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.ProcessState.ExitCode()
}

// logText returns what the node has logged so far.
func (n *gnode) logText() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// cleanEnv is the test's environment without anything that would point the
// CLI at another home or unlock one.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GRAPEVINE_")
	})
}

// cliCmd runs the CLI on the node's home from the test's own namespace (the
// socket is on the filesystem), without a passphrase unless env adds one.
func (n *gnode) cliCmd(env []string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, grapevineBin(n.t), append([]string{"--home", n.home}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: grapevine %s: %w: %s", n.label, strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String(), err
}

// try runs a command; if v is not nil, its standard output is decoded into v.
func (n *gnode) try(v any, args ...string) (stdout, stderr string, err error) {
	stdout, stderr, err = n.cliCmd(nil, args...)
	if err == nil && v != nil {
		if jerr := json.Unmarshal([]byte(stdout), v); jerr != nil {
			err = fmt.Errorf("%s: grapevine %s: bad JSON: %w\n%s", n.label, strings.Join(args, " "), jerr, stdout)
		}
	}
	return stdout, stderr, err
}

// cli runs a command that must succeed and returns its standard output.
func (n *gnode) cli(args ...string) string {
	n.t.Helper()
	out, _, err := n.try(nil, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// cliJSON runs a command that must succeed and decodes its output into v.
func (n *gnode) cliJSON(v any, args ...string) {
	n.t.Helper()
	if _, _, err := n.try(v, args...); err != nil {
		n.t.Fatal(err)
	}
}

// status is `status --json` of a running node.
type status struct {
	Running bool `json:"running"`
	mesh.Status
}

func (n *gnode) status() status {
	n.t.Helper()
	var st status
	n.cliJSON(&st, "status", "--json")
	if !st.Running {
		n.t.Fatalf("%s: status says the node is not running", n.label)
	}
	return st
}

func (n *gnode) peers() []mesh.PeerInfo {
	n.t.Helper()
	var ps []mesh.PeerInfo
	n.cliJSON(&ps, "peers", "--json")
	return ps
}

func (n *gnode) self() node.Self {
	n.t.Helper()
	var s node.Self
	n.cliJSON(&s, "id", "--json")
	if s.Link == "" || s.Name != n.name {
		n.t.Fatalf("%s: id --json = %+v", n.label, s)
	}
	return s
}

func (n *gnode) contacts() []node.Contact {
	n.t.Helper()
	var cs []node.Contact
	n.cliJSON(&cs, "contacts", "--json")
	return cs
}

// contact returns the contact called name, if there is one.
func (n *gnode) contact(name string) (node.Contact, bool) {
	n.t.Helper()
	for _, c := range n.contacts() {
		if c.Name == name {
			return c, true
		}
	}
	return node.Contact{}, false
}

func (n *gnode) messages() []node.Message {
	n.t.Helper()
	var ms []node.Message
	n.cliJSON(&ms, "messages", "--json")
	return ms
}

// message returns the message with this text, if there is one.
func (n *gnode) message(text string) (node.Message, bool) {
	n.t.Helper()
	for _, m := range n.messages() {
		if m.Text == text {
			return m, true
		}
	}
	return node.Message{}, false
}

func (n *gnode) envelopes() []node.EnvelopeInfo {
	n.t.Helper()
	var es []node.EnvelopeInfo
	n.cliJSON(&es, "envelopes", "--json")
	return es
}

// envelopeIDs returns the IDs of the envelopes held, own ones or all.
func (n *gnode) envelopeIDs(ownOnly bool) map[string]bool {
	n.t.Helper()
	ids := map[string]bool{}
	for _, e := range n.envelopes() {
		if e.Own || !ownOnly {
			ids[e.ID] = true
		}
	}
	return ids
}

// add adds other as a contact by its invite link.
func (n *gnode) add(other *gnode) {
	n.t.Helper()
	link := other.self().Link
	n.cli("contacts", "add", link)
}

// send writes text to the contact called to.
func (n *gnode) send(to *gnode, text string) {
	n.t.Helper()
	n.cli("send", to.name, text)
}

// waitContact waits until the contact called name is in this state.
func (n *gnode) waitContact(name, state string) {
	n.t.Helper()
	n.waitContactWithin(waitLong, name, state)
}

func (n *gnode) waitContactWithin(d time.Duration, name, state string) {
	n.t.Helper()
	eventually(n.t, d, fmt.Sprintf("%s to see %s as %q", n.label, name, state), func() (bool, string) {
		cs := n.contacts()
		for _, c := range cs {
			if c.Name == name {
				return c.State == state, fmt.Sprintf("contacts: %+v", cs)
			}
		}
		return false, fmt.Sprintf("contacts: %+v", cs)
	})
}

// waitMessage waits until the message with this text has this status, and
// checks who it is with.
func (n *gnode) waitMessage(text, with, st string) {
	n.t.Helper()
	n.waitMessageWithin(waitLong, text, with, st)
}

func (n *gnode) waitMessageWithin(d time.Duration, text, with, st string) {
	n.t.Helper()
	eventually(n.t, d, fmt.Sprintf("%s to hold %q as %s", n.label, text, st), func() (bool, string) {
		m, ok := n.message(text)
		return ok && m.Status == st, fmt.Sprintf("message: %+v (found %v)", m, ok)
	})
	if m, _ := n.message(text); m.Contact != with {
		n.t.Errorf("%s: message %q is with %q, want %q", n.label, text, m.Contact, with)
	}
}

// waitPeers waits until the node has exactly want neighbours, all synced.
func (n *gnode) waitPeers(want int) []mesh.PeerInfo {
	n.t.Helper()
	var ps []mesh.PeerInfo
	eventually(n.t, waitLong, fmt.Sprintf("%s to have %d synced neighbours", n.label, want), func() (bool, string) {
		ps = n.peers()
		ok := len(ps) == want
		for _, p := range ps {
			ok = ok && p.Synced
		}
		return ok, fmt.Sprintf("peers: %+v", ps)
	})
	return ps
}

// eventually polls cond until it holds, failing the test with cond's last
// description of the state if it does not within timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(timeout)
	for {
		ok, state := cond()
		if ok {
			if d := time.Since(began); d > time.Second {
				t.Logf("waited %.1f s for %s", d.Seconds(), what)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; %s", timeout, what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// grepTree returns the regular files under dir that contain any of needles,
// with the needles found.
func grepTree(t *testing.T, dir string, needles ...string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				found[path] = append(found[path], s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s: nothing was checked", dir)
	}
	return found
}
