//go:build linux

package netns

// The passive listener (SPEC §13.2): a process on the same link as five
// nodes records every beacon — when, from which address, with which value —
// and probes link keys with handshakes, while the nodes rotate, one moves to
// a new MAC and address, one restarts, and one runs in stealth. The test then
// does what the listener would: try to link values across those events.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/discovery"
)

const observeEnv = "GRAPEVINE_NETNS_OBSERVE"

// beaconSeen is one beacon the observer heard.
type beaconSeen struct {
	T     time.Time
	Addr  string // source IP address, no zone
	Value string // hex
}

// runObserver is the observer's main: it listens for beacons on the
// interface named by raw and prints each as a JSON line until its standard
// input closes.
func runObserver(iface string) int {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d := discovery.New(discovery.Config{ListenOnly: true, RescanInterval: 100 * time.Millisecond,
		Interfaces: func() ([]net.Interface, error) { return []net.Interface{*ifi}, nil },
		Log:        slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	err = d.Serve(ctx, func(s discovery.Sighting) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(beaconSeen{T: time.Now(), Addr: s.Addr.Addr().WithZone("").String(), Value: fmt.Sprintf("%x", s.Value)})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// observer is the running observer process.
type observer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	seen  []beaconSeen
	done  chan struct{}
}

func startObserver(t *testing.T, ns *netns, iface string) *observer {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{done: make(chan struct{})}
	o.cmd = exec.Command("ip", "netns", "exec", ns.name, exe)
	o.cmd.Env = append(cleanEnv(), observeEnv+"="+iface)
	o.cmd.Stderr = os.Stderr
	out, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if o.stdin, err = o.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(o.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var b beaconSeen
			if json.Unmarshal(sc.Bytes(), &b) == nil {
				o.mu.Lock()
				o.seen = append(o.seen, b)
				o.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { o.stop() })
	return o
}

func (o *observer) stop() []beaconSeen {
	o.stdin.Close()
	<-o.done
	o.cmd.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.seen)
}

// TestPassiveListener: see the top of this file. Rotations come every 6 s
// here (an hour in real life) and beacons every 300 ms, so the run covers
// several rotations in half a minute.
func TestPassiveListener(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	const (
		every    = 6 * time.Second
		interval = 300 * time.Millisecond
	)
	hub := newNetns(t)
	ipCmd(t, "-n", hub.name, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	ipCmd(t, "-n", hub.name, "addr", "add", "169.254.50.254/24", "dev", "br0")
	ipCmd(t, "-n", hub.name, "link", "set", "br0", "up")
	type member struct {
		*gnode
		ifName string
		addr   string
	}
	attach := func(label string, i int) member {
		ns := newNetns(t)
		ifHub, ifN := hub.nextIf(), ns.nextIf()
		ipCmd(t, "link", "add", ifHub, "netns", hub.name, "type", "veth", "peer", "name", ifN, "netns", ns.name)
		ipCmd(t, "-n", hub.name, "link", "set", ifHub, "master", "br0", "up")
		addr := fmt.Sprintf("169.254.50.%d", i)
		ipCmd(t, "-n", ns.name, "addr", "add", addr+"/24", "dev", ifN)
		ipCmd(t, "-n", ns.name, "link", "set", ifN, "up")
		return member{newNode(t, ns, label), ifN, addr}
	}
	obs := startObserver(t, hub, "br0")
	flags := []string{"--beacon-interval", interval.String(), "--key-rotation", every.String()}
	var ms []member
	for i, label := range []string{"A", "B", "C", "D"} {
		m := attach(label, i+1)
		m.start(flags...)
		ms = append(ms, m)
	}
	a, c, d := ms[0], ms[2], ms[3]
	e := attach("E", 5)
	e.start(append(flags, "--stealth", "--peer", a.addr+":7342")...)
	probe := func(m member) string {
		r := hostile(t, hub, hostileConfig{Mode: modeProbe, Target: m.addr + ":7342", Local: "169.254.50.254"})
		if r.Key == "" {
			t.Fatalf("probe of %s: no link key: %+v", m.label, r)
		}
		return r.Key
	}
	// intoEpoch waits until at least 1 s into an epoch that began after
	// `after`, with at least 3 s left, so that what follows happens within
	// one.
	intoEpoch := func(after time.Time) time.Time {
		for {
			now := time.Now()
			start := now.Truncate(every)
			if start.After(after) && now.Sub(start) >= time.Second && now.Sub(start) < every-3*time.Second {
				return start
			}
			time.Sleep(now.Truncate(every).Add(every + time.Second).Sub(now))
		}
	}
	e.waitPeers(1) // stealth still links with the peer it was given
	a.waitPeers(4) // B, C, D, and E (which dialled it)
	settled := time.Now()

	// Link keys: one per epoch, however many times it is asked for.
	var ep time.Time
	var kA1, kA1b, kE1 string
	for try := 0; ; try++ {
		ep = intoEpoch(time.Time{})
		kA1, kA1b, kE1 = probe(a), probe(a), probe(e)
		if time.Now().Truncate(every) == ep {
			break
		}
		if try == 3 {
			t.Fatal("three probes never fit in one 6-second epoch")
		}
	}
	if kA1 != kA1b {
		t.Errorf("A answered two probes within one epoch with different keys: the probe measures nothing")
	}

	// Move D and E to a new MAC and address, in the middle of an epoch.
	time.Sleep(time.Second)
	move := func(m *member, i int) {
		ns := m.ns.name
		ipCmd(t, "-n", ns, "link", "set", m.ifName, "down")
		ipCmd(t, "-n", ns, "link", "set", m.ifName, "address", fmt.Sprintf("02:00:00:00:00:%02x", i))
		ipCmd(t, "-n", ns, "addr", "flush", "dev", m.ifName)
		m.addr = fmt.Sprintf("169.254.50.%d", i)
		ipCmd(t, "-n", ns, "addr", "add", m.addr+"/24", "dev", m.ifName)
		ipCmd(t, "-n", ns, "link", "set", m.ifName, "up")
	}
	movedAt := time.Now()
	dOld := d.addr
	move(&d, 14)
	move(&e, 15)
	kE2 := probe(e) // at once: before discovery's next look at the addresses
	if kE2 == kE1 {
		t.Errorf("the stealth node kept its link key across its move to a new address")
	}
	intoEpoch(ep)
	if kA2 := probe(a); kA2 == kA1 {
		t.Errorf("A kept its link key across the epoch boundary")
	}

	// Restart C.
	restartAt := time.Now()
	c.stop()
	c.start(flags...)
	restarted := time.Now()
	intoEpoch(intoEpoch(intoEpoch(time.Now())))
	seen := obs.stop()
	if len(seen) == 0 {
		t.Fatal("the observer heard nothing")
	}

	// What the listener saw, per value: from where and when.
	type span struct {
		first, last time.Time
		addrs       map[string]bool
	}
	spans := map[string]*span{}
	for _, b := range seen {
		s := spans[b.Value]
		if s == nil {
			s = &span{first: b.T, addrs: map[string]bool{}}
			spans[b.Value] = s
		}
		s.last = b.T
		s.addrs[b.Addr] = true
	}
	for _, b := range seen {
		if b.Addr == e.addr || b.Addr == "169.254.50.5" {
			t.Errorf("the stealth node beaconed: %+v", b)
		}
	}
	const slack = 100 * time.Millisecond // a beacon sent just before a boundary, heard just after
	// 1. No value crosses an epoch boundary, nor D's move.
	for v, s := range spans {
		if s.last.Add(-slack).Truncate(every).After(s.first.Add(slack).Truncate(every)) {
			t.Errorf("value %s heard from %v to %v, across a rotation", v, s.first.Format(time.StampMilli), s.last.Format(time.StampMilli))
		}
		if s.addrs[dOld] && s.addrs[d.addr] {
			t.Errorf("value %s heard from D's old and new address", v)
		}
	}
	// 2. Each address's value changes are followed by silence of at least
	// one beacon interval (the new value starts at a phase of its own).
	type change struct {
		addr       string
		stop       time.Time // last beacon of the old value
		start      time.Time // first of the new
		oldV, newV string
	}
	byAddr := map[string][]beaconSeen{}
	for _, b := range seen {
		if strings.Contains(b.Addr, ".") { // IPv4: one train per node (IPv6 is the same node again)
			byAddr[b.Addr] = append(byAddr[b.Addr], b)
		}
	}
	var changes []change
	for addr, bs := range byAddr {
		for i := 1; i < len(bs); i++ {
			if bs[i].Value != bs[i-1].Value {
				changes = append(changes, change{addr, bs[i-1].T, bs[i].T, bs[i-1].Value, bs[i].Value})
			}
		}
	}
	var periodic []change
	for _, ch := range changes {
		if ch.addr == c.addr && ch.stop.After(restartAt.Add(-time.Second)) && ch.stop.Before(restartAt.Add(time.Second)) {
			continue // C's restart: its own story, below
		}
		if gap := ch.start.Sub(ch.stop); gap < interval*9/10 {
			t.Errorf("%s: value %s followed %s after only %v", ch.addr, ch.newV[:8], ch.oldV[:8], gap)
		}
		boundary := ch.start.Truncate(every)
		if !ch.stop.Add(-slack).Before(boundary) && !(ch.stop.Before(movedAt.Add(4*time.Second)) && ch.stop.After(movedAt.Add(-time.Second))) {
			t.Errorf("%s: value changed between %v and %v, neither at a boundary nor at a move", ch.addr, ch.stop.Format(time.StampMilli), ch.start.Format(time.StampMilli))
		}
		if ch.stop.Add(-slack).Before(boundary) {
			periodic = append(periodic, ch)
		}
	}
	// 3. The listener links the values that stopped at a boundary to those
	// that started after it, by time alone (rank against rank).
	byBoundary := map[time.Time][]change{}
	for _, ch := range periodic {
		b := ch.start.Truncate(every)
		byBoundary[b] = append(byBoundary[b], ch)
	}
	right, trials, groups := 0, 0, 0
	for _, chs := range byBoundary {
		if len(chs) < 2 {
			continue
		}
		groups++ // a random pairing gets one right per group, on average
		stops, starts := slices.Clone(chs), slices.Clone(chs)
		sort.Slice(stops, func(i, j int) bool { return stops[i].stop.Before(stops[j].stop) })
		sort.Slice(starts, func(i, j int) bool { return starts[i].start.Before(starts[j].start) })
		for k := range stops {
			if stops[k].addr == starts[k].addr {
				right++
			}
			trials++
		}
	}
	if trials < 8 {
		t.Fatalf("only %d rotations seen among several nodes; the capture is too short to judge", trials)
	}
	t.Logf("%d beacons, %d values, %d value changes; linked by time alone: %d of %d (a random guess: %d on average)",
		len(seen), len(spans), len(changes), right, trials, groups)
	if float64(right)/float64(trials) > 0.75 {
		t.Errorf("the listener linked %d of %d values across rotations by time alone", right, trials)
	}
	// 4. Beacons do not make linked neighbours dial each other again (over
	// the other address family, or after a rotation). Once A has linked
	// with its 4 neighbours, it makes no new link
	// but at D's move and C's restart, whatever the beacons and rotations;
	// the probes from the listener do not count. (Right after two nodes meet,
	// a rotation before both of a neighbour's addresses were heard with one
	// value can cost one extra link: with hourly rotations, rarely; with
	// these 6-second ones, often — hence the count starts once A is linked.)
	calm, all := 0, 0
	for _, line := range strings.Split(a.logText(), "\n") {
		if !strings.Contains(line, "msg=linked") || strings.Contains(line, "169.254.50.254") {
			continue
		}
		all++
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(line)[0], "time="))
		if err != nil {
			t.Fatalf("log line without a time: %q", line)
		}
		inMove := !at.Before(movedAt) && at.Before(movedAt.Add(6*time.Second))
		inRestart := !at.Before(restartAt) && at.Before(restarted.Add(6*time.Second))
		if at.After(settled) && !inMove && !inRestart {
			calm++
		}
	}
	t.Logf("A made or took %d links, %d of them once linked with all 4, outside the move and the restart", all, calm)
	if testing.Verbose() {
		for _, line := range strings.Split(a.logText(), "\n") {
			if strings.Contains(line, "msg=linked") || strings.Contains(line, "link closed") {
				t.Log(line)
			}
		}
	}
	if calm > 1 {
		t.Errorf("A made or took %d links once linked with all 4, outside the move and the restart: beacons make linked nodes dial again", calm)
	}
	// 5. The stealth node joined no beacon group (no IGMP or MLD report).
	maddr := ipCmd(t, "-n", e.ns.name, "maddr", "show", "dev", e.ifName)
	if strings.Contains(maddr, "239.255.73.42") || strings.Contains(maddr, "ff02::7342") {
		t.Errorf("the stealth node joined the beacon groups:\n%s", maddr)
	}
	if maddr := ipCmd(t, "-n", a.ns.name, "maddr", "show", "dev", a.ifName); !strings.Contains(maddr, "239.255.73.42") {
		t.Errorf("A did not join the IPv4 beacon group (so the stealth check shows nothing):\n%s", maddr)
	}
}
