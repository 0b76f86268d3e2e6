package discovery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The namespace test runs real Discoverers, each in a network namespace of
// its own, joined by veth pairs that carry only IPv6 link-local and
// 169.254.0.0/16 addresses. Each Discoverer is this test binary re-executed
// under `ip netns exec` (TestHelperProcess), reporting what it does as JSON
// log lines on its standard output; closing its standard input stops it.
//
//	nsA veth0 (169.254.1.1/24) ---- nsB veth0 (169.254.1.2/24)
//	nsA veth1 (169.254.3.1/24) ---- nsC veth0 (169.254.3.3/24)   C: listens only
//	nsA veth2 (169.254.2.1/24) ---- nsB veth2 (169.254.2.2/24)   added while running, then removed

const helperEnv = "GRAPEVINE_DISCOVERY_HELPER"

type helperConfig struct {
	Port       uint16
	Value      byte
	ListenOnly bool
}

// TestHelperProcess is a Discoverer inside a namespace, for TestNetns.
func TestHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("runs only as TestNetns's helper process")
	}
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := New(Config{
		Port: hc.Port, Value: value(hc.Value), ListenOnly: hc.ListenOnly,
		Interval: 200 * time.Millisecond, RescanInterval: 200 * time.Millisecond,
		Log: log,
	})
	d.onSend = func(_ time.Time, iface string, _ Beacon) { log.Info("test: sent", "iface", iface) }
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	err := d.Serve(ctx, func(s Sighting) {
		log.Info("test: sighting", "addr", s.Addr.String(), "value", int(s.Value[0]), "iface", s.Interface)
	})
	log.Info("test: serve returned", "err", fmt.Sprint(err))
}

// requireNetns skips unless the test can create network namespaces; on CI
// (CI=true) it fails instead, so that the test cannot silently stop running.
func requireNetns(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("network namespaces: not in -short mode")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "network namespaces need iproute2's ip: %v", err)
	}
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetns creates a namespace with a unique name, deleted when the test
// ends, whatever happens.
func newNetns(t *testing.T) string {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	name := "gvt-disc-" + hex.EncodeToString(r[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		skipOrFail(t, "cannot create a network namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	ip(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// veth joins two namespaces by a veth pair created directly inside them (it
// never appears in the host's namespace), with an IPv4 link-local address on
// each end; the kernel adds the IPv6 link-local ones.
func veth(t *testing.T, ns1, if1, addr1, ns2, if2, addr2 string) {
	t.Helper()
	ip(t, "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2)
	ip(t, "-n", ns1, "addr", "add", addr1, "dev", if1)
	ip(t, "-n", ns2, "addr", "add", addr2, "dev", if2)
	ip(t, "-n", ns1, "link", "set", if1, "up")
	ip(t, "-n", ns2, "link", "set", if2, "up")
}

// linkLocal returns the IPv6 link-local address of an interface.
func linkLocal(t *testing.T, ns, ifname string) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var links []struct {
			AddrInfo []struct {
				Family, Local, Scope string
			} `json:"addr_info"`
		}
		if err := json.Unmarshal([]byte(ip(t, "-j", "-n", ns, "-6", "addr", "show", "dev", ifname)), &links); err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			for _, a := range l.AddrInfo {
				if a.Family == "inet6" && a.Scope == "link" {
					return netip.MustParseAddr(a.Local)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s has no link-local address", ifname, ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// helper is a running TestHelperProcess.
type helper struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu     sync.Mutex
	events []map[string]any
	stderr bytes.Buffer
}

func startHelper(t *testing.T, name, ns string, hc helperConfig) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(hc)
	h := &helper{name: name, done: make(chan struct{})}
	h.cmd = exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	h.cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	h.cmd.Stderr = &lockedWriter{mu: &h.mu, w: &h.stderr}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue // the test framework's own lines
			}
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		h.stop(t)
		if t.Failed() {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, ev := range h.events[max(0, len(h.events)-40):] {
				t.Logf("%s: %v", h.name, ev)
			}
		}
	})
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// stop closes the helper's input, which cancels its Serve, and checks that
// Serve returned nil. Calling it again does nothing.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	if h.stdin == nil {
		return
	}
	h.stdin.Close()
	h.stdin = nil
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
		t.Errorf("%s: did not stop", h.name)
	}
	err := h.cmd.Wait()
	if err != nil {
		t.Errorf("%s: %v\n%s", h.name, err, h.stderrText())
	}
	if ev := h.find(0, msgIs("test: serve returned")); ev == nil || ev["err"] != "<nil>" {
		t.Errorf("%s: Serve did not return nil: %v", h.name, ev)
	}
}

func (h *helper) stderrText() string { h.mu.Lock(); defer h.mu.Unlock(); return h.stderr.String() }

func (h *helper) len() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.events) }

// find returns the first event from index from on that ok accepts.
func (h *helper) find(from int, ok func(map[string]any) bool) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events[min(from, len(h.events)):] {
		if ok(ev) {
			return ev
		}
	}
	return nil
}

func (h *helper) count(ok func(map[string]any) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ok(ev) {
			n++
		}
	}
	return n
}

func (h *helper) waitFor(t *testing.T, from int, what string, ok func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for h.find(from, ok) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s\nstderr: %s", h.name, what, h.stderrText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func msgIs(msg string) func(map[string]any) bool {
	return func(ev map[string]any) bool { return ev["msg"] == msg }
}

// sighting matches a reported beacon with this value, exact address
// (zone included) and interface.
func sighting(v byte, addr netip.AddrPort, iface string) func(map[string]any) bool {
	return func(ev map[string]any) bool {
		return ev["msg"] == "test: sighting" && ev["value"] == float64(v) &&
			ev["addr"] == addr.String() && ev["iface"] == iface
	}
}

func valueIs(v byte) func(map[string]any) bool {
	return func(ev map[string]any) bool { return ev["msg"] == "test: sighting" && ev["value"] == float64(v) }
}

func TestNetns(t *testing.T) {
	requireNetns(t)
	nsA, nsB, nsC := newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "veth0", "169.254.1.1/24", nsB, "veth0", "169.254.1.2/24")
	veth(t, nsA, "veth1", "169.254.3.1/24", nsC, "veth0", "169.254.3.3/24")
	llA0, llB0 := linkLocal(t, nsA, "veth0"), linkLocal(t, nsB, "veth0")
	llA1 := linkLocal(t, nsA, "veth1")

	a := startHelper(t, "A", nsA, helperConfig{Value: 1})              // default port 7342
	b := startHelper(t, "B", nsB, helperConfig{Value: 2, Port: 17342}) //
	c := startHelper(t, "C", nsC, helperConfig{Value: 3, Port: 27342, ListenOnly: true})
	six := func(ll netip.Addr, zone string, port uint16) netip.AddrPort {
		return netip.AddrPortFrom(ll.WithZone(zone), port)
	}
	four := func(s string, port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr(s), port)
	}

	// Over IPv6 (with the zone of the arrival interface) and over IPv4.
	a.waitFor(t, 0, "B over IPv6", sighting(2, six(llB0, "veth0", 17342), "veth0"))
	a.waitFor(t, 0, "B over IPv4", sighting(2, four("169.254.1.2", 17342), "veth0"))
	b.waitFor(t, 0, "A over IPv6", sighting(1, six(llA0, "veth0", TCPPort), "veth0"))
	b.waitFor(t, 0, "A over IPv4", sighting(1, four("169.254.1.1", TCPPort), "veth0"))
	// The listening node hears A.
	c.waitFor(t, 0, "A over IPv6", sighting(1, six(llA1, "veth0", TCPPort), "veth0"))
	c.waitFor(t, 0, "A over IPv4", sighting(1, four("169.254.3.1", TCPPort), "veth0"))

	// An interface that appears while running gets beacons too.
	veth(t, nsA, "veth2", "169.254.2.1/24", nsB, "veth2", "169.254.2.2/24")
	llA2, llB2 := linkLocal(t, nsA, "veth2"), linkLocal(t, nsB, "veth2")
	a.waitFor(t, 0, "B over IPv6 on the new interface", sighting(2, six(llB2, "veth2", 17342), "veth2"))
	a.waitFor(t, 0, "B over IPv4 on the new interface", sighting(2, four("169.254.2.2", 17342), "veth2"))
	b.waitFor(t, 0, "A over IPv6 on the new interface", sighting(1, six(llA2, "veth2", TCPPort), "veth2"))
	b.waitFor(t, 0, "A over IPv4 on the new interface", sighting(1, four("169.254.2.1", TCPPort), "veth2"))

	// It vanishes: both forget it and go on over veth0.
	ip(t, "-n", nsA, "link", "del", "veth2")
	gone := func(ev map[string]any) bool {
		return ev["msg"] == "discovery: interface gone" && ev["iface"] == "veth2"
	}
	a.waitFor(t, 0, "veth2 forgotten", gone)
	b.waitFor(t, 0, "veth2 forgotten", gone)
	na, nb := a.len(), b.len()
	a.waitFor(t, na, "B over IPv6 after veth2 is gone", sighting(2, six(llB0, "veth0", 17342), "veth0"))
	b.waitFor(t, nb, "A over IPv6 after veth2 is gone", sighting(1, six(llA0, "veth0", TCPPort), "veth0"))
	time.Sleep(time.Second) // a few more rounds for C to show up if it wrongly beaconed

	a.stop(t)
	b.stop(t)
	c.stop(t)
	for _, h := range []*helper{a, b, c} {
		if n := h.count(valueIs(3)); n != 0 {
			t.Errorf("%s heard the listening node %d times", h.name, n)
		}
	}
	if n := c.count(msgIs("test: sent")); n != 0 {
		t.Errorf("the listening node sent %d beacons", n)
	}
	if n := a.count(valueIs(1)) + b.count(valueIs(2)); n != 0 {
		t.Errorf("own beacons reported %d times", n)
	}
	for _, h := range []*helper{a, b} {
		if h.count(msgIs("discovery: own beacon ignored")) == 0 {
			t.Errorf("%s: no own beacon looped back: the own-beacon check went untested", h.name)
		}
		if h.count(msgIs("test: sent")) == 0 {
			t.Errorf("%s sent nothing", h.name)
		}
	}
	t.Logf("A: %d sent, %d sightings, %d send failures; B: %d sent, %d sightings",
		a.count(msgIs("test: sent")), a.count(msgIs("test: sighting")), a.count(msgIs("discovery: send failed")),
		b.count(msgIs("test: sent")), b.count(msgIs("test: sighting")))
}
