package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/node"
	gvsession "github.com/grapevine-mesh/grapevine/internal/session"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// BenchmarkSoak is the hostile-mesh acceptance soak (SPEC §13.1): a real
// `grapevine up` process, the victim, with a 64 MiB relay quota, linked to an
// honest neighbour (another `grapevine up`, a contact) that writes to it
// every few seconds, is flooded from the test process over loopback, from
// addresses of 127.1.0.0/16 (Linux routes all of 127/8 to lo), by
//
//   - 500 connections from 250 addresses that complete the handshake, send a
//     Hello and then a Ping every 10 s, and redial when dropped;
//   - 100 slowloris connections that send the first handshake message a
//     byte a second;
//   - 4 links sending Pings as fast as they can and never reading;
//   - 4 links sending fresh junk envelopes (1 KiB, for nobody), 500 a second
//     each;
//   - 1 link sending contact requests to the victim's invite from fresh
//     identities, 10 a second.
//
// It reports the honest neighbour's delivery latency (its `send` until the
// victim shows the message) before and during the flood, the victim's peak
// resident memory (VmHWM of /proc/PID/status) and what the flood did. The
// flood lasts 60 s; GRAPEVINE_SOAK=10m (any duration) sets it. It is a
// benchmark: `go test ./cmd/grapevine -run '^$' -bench Soak -benchtime 1x`.
func BenchmarkSoak(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc")
	}
	flood := 60 * time.Second
	if v := os.Getenv("GRAPEVINE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("GRAPEVINE_SOAK=%q: %v", v, err)
		}
		flood = d
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "grapevine")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	if v := os.Getenv("GRAPEVINE_SOAK_BIN"); v != "" {
		bin = v // another build of grapevine to soak, e.g. an older one to compare with
	}
	for b.Loop() {
		r := soak(b, bin, dir, flood)
		b.ReportMetric(r.before.median, "before-median-ms")
		b.ReportMetric(r.before.max, "before-max-ms")
		b.ReportMetric(r.during.median, "during-median-ms")
		b.ReportMetric(r.during.p90, "during-p90-ms")
		b.ReportMetric(r.during.max, "during-max-ms")
		b.ReportMetric(float64(r.during.n), "probes-during")
		b.ReportMetric(float64(r.lost), "probes-lost")
		b.ReportMetric(r.hwmMB, "victim-VmHWM-MB")
		b.ReportMetric(r.rssMB, "victim-VmRSS-end-MB")
		b.ReportMetric(r.anonPeakMB, "victim-RssAnon-peak-MB")
		b.ReportMetric(r.homeMB, "victim-home-MB")
		b.ReportMetric(float64(r.junk), "junk-sent")
		b.ReportMetric(float64(r.requests), "requests-sent")
		b.ReportMetric(float64(r.links), "flood-links-made")
		b.ReportMetric(float64(r.carried), "victim-carried")
	}
	b.ReportMetric(0, "ns/op")
}

type latencies struct {
	n                     int
	median, p90, max, sum float64
}

func summarise(ms []float64) latencies {
	if len(ms) == 0 {
		return latencies{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	return latencies{n: len(s), median: s[len(s)/2], p90: s[len(s)*9/10], max: s[len(s)-1]}
}

type soakResult struct {
	before, during latencies
	hwmMB, rssMB   float64
	anonPeakMB     float64 // the largest RssAnon sampled (every probe)
	homeMB         float64
	junk, requests int64
	links          int64
	lost           int // probes not delivered within 2 minutes
	carried        int
}

// soakNode is a running `grapevine up`.
type soakNode struct {
	cmd  *exec.Cmd
	home string
	cl   *api.Client
	log  *os.File
}

func startSoakNode(b *testing.B, bin, home, name string, args ...string) *soakNode {
	b.Helper()
	logf, err := os.Create(home + ".log")
	if err != nil {
		b.Fatal(err)
	}
	args = append([]string{"--home", home, "up", "--no-discovery", "--quiet"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE=pw")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n := &soakNode{cmd: cmd, home: home, log: logf}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if keep := os.Getenv("GRAPEVINE_SOAK_LOGS"); keep != "" { // keep the node's log there
			if out, err := os.ReadFile(home + ".log"); err == nil {
				os.WriteFile(filepath.Join(keep, name+".log"), out, 0o644)
			}
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		if cl, err := api.Dial(home); err == nil {
			if _, err := cl.Status(context.Background()); err == nil {
				n.cl = cl
				return n
			}
			cl.Close()
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(home + ".log")
			b.Fatalf("%s did not come up:\n%s", name, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func procStatusMB(pid int, field string) float64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		return -1
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

func soak(b *testing.B, bin, dir string, flood time.Duration) soakResult {
	ctx := context.Background()
	var res soakResult
	for _, name := range []string{"victim", "honest"} {
		n, err := node.Init(filepath.Join(dir, name), []byte("pw"), name, node.DefaultConfig, node.Options{KDF: store.TestKDF()})
		if err != nil {
			b.Fatal(err)
		}
		n.Close()
	}
	port := freePort(b)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	victim := startSoakNode(b, bin, filepath.Join(dir, "victim"), "victim", "--listen", target, "--relay-quota", "64MiB")
	honest := startSoakNode(b, bin, filepath.Join(dir, "honest"), "honest", "--listen", "", "--peer", target)

	// Make them contacts: each adds the other's link.
	vs, err := victim.cl.Self(ctx)
	if err != nil {
		b.Fatal(err)
	}
	hs, err := honest.cl.Self(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := honest.cl.AddContact(ctx, vs.Link, "victim"); err != nil {
		b.Fatal(err)
	}
	if _, err := victim.cl.AddContact(ctx, hs.Link, "honest"); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		vc, _ := victim.cl.Contacts(ctx)
		hc, _ := honest.cl.Contacts(ctx)
		if len(vc) == 1 && vc[0].State == node.StateActive && len(hc) == 1 && hc[0].State == node.StateActive {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not contacts after 2 minutes: %+v / %+v", vc, hc)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// probe sends one message from the honest neighbour and returns how long
	// the victim took to show it, in milliseconds (-1: not within 2 min).
	seq := 0
	probe := func() float64 {
		seq++
		text := fmt.Sprintf("probe %d", seq)
		start := time.Now()
		if _, err := honest.cl.Send(ctx, "victim", text); err != nil {
			b.Fatalf("send: %v", err)
		}
		for time.Since(start) < 2*time.Minute {
			ms, err := victim.cl.Messages(ctx, "honest")
			if err == nil {
				for _, m := range ms {
					if m.Text == text {
						return float64(time.Since(start).Microseconds()) / 1000
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		return -1
	}
	var before []float64
	for range 10 {
		ms := probe()
		if ms < 0 {
			b.Fatal("a probe before the flood was not delivered within 2 minutes")
		}
		before = append(before, ms)
		time.Sleep(500 * time.Millisecond)
	}
	res.before = summarise(before)

	// Contact requests from fresh identities, made before the flood.
	requests := floodRequests(b, dir, vs.Link, 500)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	f := &flooder{target: target, stop: stop}
	go0 := func(fn func()) { wg.Add(1); go func() { defer wg.Done(); fn() }() }
	// The links that send something come first: once slowloris holds the
	// handshake slots, few new links are made (see the report).
	for i := range 4 {
		go0(func() { f.pingFlood(fmt.Sprintf("127.3.0.%d", 1+i)) })
		go0(func() { f.junk(fmt.Sprintf("127.4.0.%d", 1+i)) })
	}
	go0(func() { f.requests("127.5.0.1", requests) })
	f.pause(3 * time.Second)
	for i := range 500 {
		addr := fmt.Sprintf("127.1.%d.%d", i/2/250, 1+(i/2)%250)
		go0(func() { f.idle(addr) })
	}
	for i := range 100 {
		go0(func() { f.slowloris(fmt.Sprintf("127.2.0.%d", 1+i)) })
	}

	pid := victim.cmd.Process.Pid
	var during []float64
	lost := 0
	for end := time.Now().Add(flood); time.Now().Before(end); {
		ms := probe()
		if ms < 0 {
			lost++
		} else {
			during = append(during, ms)
		}
		anon := procStatusMB(pid, "RssAnon")
		res.anonPeakMB = max(res.anonPeakMB, anon)
		b.Logf("t+%s: probe %.0f ms, victim RssAnon %.0f MB, RssFile %.0f MB, home %.0f MB, junk %d, links made %d", (flood - time.Until(end)).Round(time.Second),
			ms, anon, procStatusMB(pid, "RssFile"), float64(dirSize(victim.home))/(1<<20), f.junkSent.Load(), f.links.Load())
		time.Sleep(5 * time.Second)
	}
	res.hwmMB = procStatusMB(pid, "VmHWM")
	res.homeMB = float64(dirSize(victim.home)) / (1 << 20)
	res.rssMB = procStatusMB(pid, "VmRSS")
	close(stop)
	wg.Wait()
	if st, err := victim.cl.Stats(ctx); err == nil {
		res.carried = st.Carried
	}
	res.during = summarise(during)
	res.junk, res.requests, res.links = f.junkSent.Load(), f.requestsSent.Load(), f.links.Load()
	b.Logf("before: %+v; during: %+v (%d lost); victim VmHWM %.0f MB, VmRSS %.0f MB; %d junk, %d requests, %d flood links made, %d ping-flood links cut",
		res.before, res.during, lost, res.hwmMB, res.rssMB, res.junk, res.requests, res.links, f.pingCut.Load())
	res.lost = lost
	if lost > 0 {
		// Reported, not fatal: a benchmark that fails reports nothing.
		b.Logf("LOST: %d probes of the honest neighbour were not delivered within 2 minutes during the flood", lost)
	}
	return res
}

// floodRequests makes n contact requests to the invite link from fresh
// identities (throwaway in-memory nodes), as raw envelopes.
func floodRequests(b *testing.B, dir, inviteLink string, n int) [][]byte {
	var out [][]byte
	path := filepath.Join(dir, "request.gvb")
	for i := range n {
		m, err := node.InitMemory(fmt.Sprint("flooder ", i), node.DefaultConfig, node.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.AddContact(inviteLink, "victim"); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Export(path); err != nil {
			b.Fatal(err)
		}
		m.Close()
		if _, err := bundle.ReadFile(path, func(raw []byte) error { out = append(out, slices.Clone(raw)); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// flooder runs the attacks against target until stop closes.
type flooder struct {
	target                        string
	stop                          chan struct{}
	links, junkSent, requestsSent atomic.Int64
	pingCut                       atomic.Int64
}

func (f *flooder) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// pause waits d or until stop.
func (f *flooder) pause(d time.Duration) {
	select {
	case <-f.stop:
	case <-time.After(d):
	}
}

func (f *flooder) dial(from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", f.target)
}

// linkUp dials from the address, completes a handshake with a fresh link
// key and sends a Hello of random proofs. It closes the connection when
// stop closes.
func (f *flooder) linkUp(from string) (*link.Conn, net.Conn, error) {
	c, err := f.dial(from)
	if err != nil {
		return nil, nil, err
	}
	key, err := link.NewStatic(nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	lc, err := link.Client(context.Background(), c, link.Config{Static: key})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	c.SetDeadline(time.Time{})
	hello := make([]byte, node.LinkHelloSize)
	rand.Read(hello)
	if err := lc.WriteFrame(byte(gvsession.TypeHello), hello); err != nil {
		c.Close()
		return nil, nil, err
	}
	f.links.Add(1)
	go func() { <-f.stop; c.Close() }()
	return lc, c, nil
}

// drain reads and discards frames until the link ends.
func drain(lc *link.Conn) {
	for {
		if _, _, err := lc.ReadFrame(); err != nil {
			return
		}
	}
}

// idle holds a link that sends a Ping every 10 s, redialling when dropped.
func (f *flooder) idle(from string) {
	for !f.stopped() {
		lc, _, err := f.linkUp(from)
		if err != nil {
			f.pause(2 * time.Second)
			continue
		}
		done := make(chan struct{})
		go func() { drain(lc); close(done) }()
		for alive := true; alive && !f.stopped(); {
			select {
			case <-done:
				alive = false
			case <-f.stop:
			case <-time.After(10 * time.Second):
				if lc.WriteFrame(byte(gvsession.TypePing), nil) != nil {
					alive = false
				}
			}
		}
		f.pause(2 * time.Second)
	}
}

// slowloris sends the first handshake message a byte a second, redialling
// when dropped.
func (f *flooder) slowloris(from string) {
	for !f.stopped() {
		c, err := f.dial(from)
		if err != nil {
			f.pause(2 * time.Second)
			continue
		}
		msg := make([]byte, 2+32)
		binary.BigEndian.PutUint16(msg, 32)
		rand.Read(msg[2:])
		for i := 0; i < len(msg)-1 && !f.stopped(); i++ { // never the last byte
			if _, err := c.Write(msg[i : i+1]); err != nil {
				break
			}
			f.pause(time.Second)
		}
		c.Close()
	}
}

// pingFlood sends Pings as fast as it can and never reads.
func (f *flooder) pingFlood(from string) {
	for !f.stopped() {
		lc, _, err := f.linkUp(from)
		if err != nil {
			f.pause(2 * time.Second)
			continue
		}
		for !f.stopped() {
			if lc.WriteFrame(byte(gvsession.TypePing), nil) != nil {
				f.pingCut.Add(1)
				break
			}
		}
		f.pause(2 * time.Second)
	}
}

// junk sends fresh envelopes for nobody, 500 a second.
func (f *flooder) junk(from string) {
	content := make([]byte, 1024)
	for !f.stopped() {
		lc, _, err := f.linkUp(from)
		if err != nil {
			f.pause(2 * time.Second)
			continue
		}
		go drain(lc)
		tick := time.NewTicker(100 * time.Millisecond)
	link:
		for !f.stopped() {
			for range 50 {
				s := envelope.Sealing{Expiry: uint32(time.Now().Add(24 * time.Hour).Unix()), Hops: 5}
				rand.Read(s.Key[:])
				rand.Read(s.Tag[:])
				rand.Read(s.Commit[:])
				rand.Read(content)
				e, err := envelope.Seal(s, content)
				if err != nil {
					panic(err)
				}
				if lc.WriteFrame(byte(gvsession.TypeEnvelope), e.Marshal()) != nil {
					break link
				}
				f.junkSent.Add(1)
			}
			select {
			case <-tick.C:
			case <-f.stop:
			}
		}
		tick.Stop()
		f.pause(2 * time.Second)
	}
}

// requests sends the contact requests, 10 a second, round and round.
func (f *flooder) requests(from string, reqs [][]byte) {
	i := 0
	for !f.stopped() {
		lc, _, err := f.linkUp(from)
		if err != nil {
			f.pause(2 * time.Second)
			continue
		}
		go drain(lc)
		for !f.stopped() {
			if lc.WriteFrame(byte(gvsession.TypeEnvelope), reqs[i%len(reqs)]) != nil {
				break
			}
			i++
			f.requestsSent.Add(1)
			f.pause(100 * time.Millisecond)
		}
		f.pause(2 * time.Second)
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
