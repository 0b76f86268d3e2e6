package discovery

import (
	"context"
	"errors"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// fakeClock is a Clock whose time moves only when the test says.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

// step waits until someone waits on the clock, then moves the time to the
// earliest deadline and wakes whoever waited for it. The Discoverer's loop
// waits only after it has done everything due, so all its sends up to the
// returned time have happened when the next step returns.
func (c *fakeClock) step(t *testing.T) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.waiters) > 0 {
			break
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("nobody waits on the clock")
		}
		time.Sleep(100 * time.Microsecond)
	}
	defer c.mu.Unlock()
	slices.SortFunc(c.waiters, func(a, b fakeWaiter) int { return a.at.Compare(b.at) })
	c.now = c.waiters[0].at
	for len(c.waiters) > 0 && !c.waiters[0].at.After(c.now) {
		c.waiters[0].ch <- c.now
		c.waiters = c.waiters[1:]
	}
	return c.now
}

// seeded is a deterministic Rand.
func seeded(seed byte) *rand.ChaCha8 {
	return rand.NewChaCha8([32]byte{seed})
}

func value(b byte) func() [16]byte {
	return func() [16]byte { return [16]byte{0: b, 15: b} }
}

// logRecorder is a slog handler that keeps the messages of every record.
type logRecorder struct {
	mu     sync.Mutex
	msgs   []string
	levels []slog.Level
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	r.levels = append(r.levels, rec.Level)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }
func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// sightings collects what a Discoverer reports.
type sightings struct {
	mu sync.Mutex
	s  []Sighting
}

func (s *sightings) add(x Sighting) { s.mu.Lock(); s.s = append(s.s, x); s.mu.Unlock() }
func (s *sightings) all() []Sighting {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.s)
}

func (s *sightings) waitFor(t *testing.T, what string, ok func(Sighting) bool) Sighting {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, x := range s.all() {
			if ok(x) {
				return x
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; saw %v", what, s.all())
	return Sighting{}
}

// serve runs d until the test ends and checks that Serve returns nil.
func serve(t *testing.T, d *Discoverer) *sightings {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := &sightings{}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, got.add) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return got
}

func TestUniformBounds(t *testing.T) {
	s := &session{d: New(Config{Rand: seeded(1)})}
	const span = 5 * time.Second
	lo, hi := span, time.Duration(0)
	for range 20000 {
		x := s.uniform(span)
		if x < 0 || x >= span {
			t.Fatalf("uniform(%v) = %v", span, x)
		}
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo > span/100 || hi < span-span/100 {
		t.Errorf("uniform(%v) covers only [%v, %v]", span, lo, hi)
	}
	if x := s.uniform(0); x != 0 {
		t.Errorf("uniform(0) = %v", x)
	}
	broken := &session{d: New(Config{Rand: strings.NewReader("")})}
	if x := broken.uniform(span); x != span/2 {
		t.Errorf("uniform without randomness = %v, want %v", x, span/2)
	}
}

// TestSchedule runs the send schedule in fake time over the loopback
// interface: one beacon within SoonJitter of the start, then gaps uniform in
// [Interval/2, 3*Interval/2); none while the interface is gone; one soon
// after it is back.
func TestSchedule(t *testing.T) {
	lo := testkit.Loopback(t)
	clk := newFakeClock()
	var present atomic.Bool
	present.Store(true)
	cfg := Config{
		Value:           value(7),
		BeaconPort:      testkit.FreeUDPPort(t),
		IncludeLoopback: true,
		Interfaces: func() ([]net.Interface, error) {
			if present.Load() {
				return []net.Interface{lo}, nil
			}
			return nil, nil
		},
		Rand:  seeded(2),
		Clock: clk,
	}
	d := New(cfg)
	var mu sync.Mutex
	var sent []time.Time
	d.onSend = func(now time.Time, iface string, b Beacon) {
		if iface != lo.Name || b.Port != TCPPort || b.Value != value(7)() {
			t.Errorf("sent %+v on %s", b, iface)
		}
		mu.Lock()
		sent = append(sent, now)
		mu.Unlock()
	}
	sends := func() []time.Time { mu.Lock(); defer mu.Unlock(); return slices.Clone(sent) }
	start := clk.Now()
	serve(t, d)

	var now time.Time
	for now.Before(start.Add(300 * time.Second)) {
		now = clk.step(t)
	}
	clk.step(t) // the loop has handled the last step
	s := sends()
	if len(s) < 40 {
		t.Fatalf("%d beacons in 300 s", len(s))
	}
	if first := s[0].Sub(start); first < 0 || first >= SoonJitter {
		t.Errorf("first beacon after %v, want within %v", first, SoonJitter)
	}
	var total time.Duration
	for i := 1; i < len(s); i++ {
		gap := s[i].Sub(s[i-1])
		if gap < DefaultInterval/2 || gap >= DefaultInterval*3/2 {
			t.Errorf("gap %d is %v", i, gap)
		}
		total += gap
	}
	if mean := total / time.Duration(len(s)-1); mean < 4*time.Second || mean > 6*time.Second {
		t.Errorf("mean gap %v", mean)
	}

	// The interface vanishes: no beacon after the next rescan.
	present.Store(false)
	gone := clk.Now()
	for now.Before(gone.Add(60 * time.Second)) {
		now = clk.step(t)
	}
	clk.step(t)
	n := len(sends())
	for _, x := range sends() {
		if x.After(gone.Add(DefaultRescanInterval)) {
			t.Errorf("beacon at +%v after the interface vanished", x.Sub(gone))
		}
	}

	// It is back: a beacon within a rescan and SoonJitter.
	present.Store(true)
	back := clk.Now()
	for len(sends()) == n && now.Before(back.Add(60*time.Second)) {
		now = clk.step(t)
	}
	s = sends()
	if len(s) == n {
		t.Fatal("no beacon after the interface came back")
	}
	if after := s[n].Sub(back); after > DefaultRescanInterval+SoonJitter {
		t.Errorf("first beacon %v after the interface came back", after)
	}
}

// TestLoopback runs four Discoverers on the host's loopback interface
// (IPv4 only: lo has no link-local IPv6 address): two beaconing, one
// listening only, one in stealth. Each hears the others that beacon, nobody
// hears the listening node or itself, the listening node sends nothing, and
// the stealth node neither joins the group nor hears anything.
func TestLoopback(t *testing.T) {
	lo := testkit.Loopback(t)
	port := testkit.FreeUDPPort(t)
	only := func() ([]net.Interface, error) { return []net.Interface{lo}, nil }
	mk := func(v byte, tcp uint16, mode string, log *logRecorder) *Discoverer {
		d := New(Config{
			Port: tcp, Value: value(v), ListenOnly: mode == "listen", Stealth: mode == "stealth",
			Interval: 100 * time.Millisecond, RescanInterval: 100 * time.Millisecond,
			BeaconPort: port, Interfaces: only, IncludeLoopback: true,
			Log: slog.New(log),
		})
		return d
	}
	logA, logB, logC, logD := &logRecorder{}, &logRecorder{}, &logRecorder{}, &logRecorder{}
	a := mk(1, 1001, "", logA)
	b := mk(2, 1002, "", logB)
	c := mk(3, 1003, "listen", logC)
	dd := mk(4, 1004, "stealth", logD)
	var cSent, dSent atomic.Int32
	c.onSend = func(time.Time, string, Beacon) { cSent.Add(1) }
	dd.onSend = func(time.Time, string, Beacon) { dSent.Add(1) }
	gotA, gotB, gotC, gotD := serve(t, a), serve(t, b), serve(t, c), serve(t, dd)

	from := func(v byte, port uint16) func(Sighting) bool {
		return func(s Sighting) bool {
			return s.Value == value(v)() && s.Addr.Port() == port && s.Interface == lo.Name && s.Addr.Addr().Is4()
		}
	}
	gotA.waitFor(t, "A hears B", from(2, 1002))
	gotB.waitFor(t, "B hears A", from(1, 1001))
	gotC.waitFor(t, "listening C hears A", from(1, 1001))
	gotC.waitFor(t, "listening C hears B", from(2, 1002))
	time.Sleep(500 * time.Millisecond) // several more rounds
	for name, got := range map[string]*sightings{"A": gotA, "B": gotB, "C": gotC} {
		for _, s := range got.all() {
			if s.Value == value(3)() || s.Value == value(4)() {
				t.Errorf("%s heard the listening or the stealth node: %+v", name, s)
			}
			own := map[string]byte{"A": 1, "B": 2, "C": 3}[name]
			if s.Value == value(own)() {
				t.Errorf("%s reported its own beacon: %+v", name, s)
			}
		}
	}
	if n := cSent.Load(); n != 0 {
		t.Errorf("listening node sent %d beacons", n)
	}
	if n, heard := dSent.Load(), len(gotD.all()); n != 0 || heard != 0 || logD.count("discovery: joined") != 0 {
		t.Errorf("stealth node sent %d beacons, heard %d, joined %d groups", n, heard, logD.count("discovery: joined"))
	}
	// Own beacons did loop back, and were dropped.
	if logA.count("discovery: own beacon ignored") == 0 || logB.count("discovery: own beacon ignored") == 0 {
		t.Error("no own beacon looped back: the own-beacon check went untested")
	}
}

// TestGarbageIgnored feeds a running Discoverer datagrams that are not
// beacons, and a valid beacon sent unicast to its port: it drops them all and
// keeps reading.
func TestGarbageIgnored(t *testing.T) {
	lo := testkit.Loopback(t)
	port := testkit.FreeUDPPort(t)
	log := &logRecorder{}
	d := New(Config{
		ListenOnly: true, BeaconPort: port, IncludeLoopback: true,
		Interfaces: func() ([]net.Interface, error) { return []net.Interface{lo}, nil },
		Log:        slog.New(log),
	})
	got := serve(t, d)
	// Wait until it has joined the group on lo.
	deadline := time.Now().Add(5 * time.Second)
	for log.count("discovery: joined") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}

	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := ipv4.NewPacketConn(c)
	if err := p.SetMulticastInterface(&lo); err != nil {
		t.Fatal(err)
	}
	group := &net.UDPAddr{IP: Group4.AsSlice(), Port: int(port)}
	valid := func(v byte) []byte { return Beacon{Port: 4000 + uint16(v), Value: value(v)()}.Marshal() }
	garbage := [][]byte{
		{}, {'G'}, []byte("GV"), make([]byte, 1500), make([]byte, BeaconSize),
		append([]byte{'G', 'V', 2}, valid(1)[3:]...),
		append([]byte{'G', 'V', 1, 0, 0}, valid(1)[5:]...),
		append(valid(1), 0),
	}
	for _, g := range garbage {
		if _, err := p.WriteTo(g, nil, group); err != nil {
			t.Fatal(err)
		}
	}
	// Unicast to the beacon port is not a beacon either.
	if _, err := c.WriteTo(valid(2), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteTo(valid(3), nil, group); err != nil {
		t.Fatal(err)
	}
	s := got.waitFor(t, "the valid beacon after the garbage", func(s Sighting) bool { return s.Value == value(3)() })
	if want := netip.MustParseAddrPort("127.0.0.1:4003"); s.Addr != want || s.Interface != lo.Name {
		t.Errorf("sighting %+v, want %v on %s", s, want, lo.Name)
	}
	if all := got.all(); len(all) != 1 {
		t.Errorf("sightings %v, want only the valid multicast beacon", all)
	}
	if n := log.count("discovery: not a beacon"); n != len(garbage) {
		t.Errorf("%d datagrams rejected, want %d", n, len(garbage))
	}
}

func TestServeConfigErrors(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"no value":             {},
		"group4 is 6":          {Value: value(1), Group4: Group6},
		"group4 not multicast": {Value: value(1), Group4: netip.MustParseAddr("169.254.1.1")},
		"group6 is 4":          {Value: value(1), Group6: Group4},
	} {
		if err := New(cfg).Serve(ctx, func(Sighting) {}); err == nil {
			t.Errorf("%s: Serve accepted the config", name)
		}
	}
}

func TestServeReturnsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	port := testkit.FreeUDPPort(t)
	d := New(Config{Value: value(1), BeaconPort: port, Interfaces: func() ([]net.Interface, error) {
		return nil, errors.New("interfaces are broken")
	}})
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, func(Sighting) {}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	// The sockets are closed: the port can be bound without sharing.
	c, err := net.ListenPacket("udp4", net.JoinHostPort("0.0.0.0", itoa(port)))
	if err != nil {
		t.Fatalf("beacon port still bound after Serve returned: %v", err)
	}
	c.Close()
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// TestSocketOptions checks what keeps beacons on the link and lets other
// nodes on the same host hear them: TTL and hop limit 1, multicast loopback
// on, and a shared port.
func TestSocketOptions(t *testing.T) {
	port := testkit.FreeUDPPort(t)
	p4, err := listen4(port)
	if err != nil {
		t.Fatal(err)
	}
	defer p4.Close()
	if ttl, err := p4.MulticastTTL(); err != nil || ttl != 1 {
		t.Errorf("IPv4 multicast TTL %d, %v", ttl, err)
	}
	if on, err := p4.MulticastLoopback(); err != nil || !on {
		t.Errorf("IPv4 multicast loopback %v, %v", on, err)
	}
	again, err := listen4(port)
	if err != nil {
		t.Errorf("second IPv4 socket on the beacon port: %v", err)
	} else {
		again.Close()
	}
	p6, err := listen6(port)
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	defer p6.Close()
	if hl, err := p6.MulticastHopLimit(); err != nil || hl != 1 {
		t.Errorf("IPv6 multicast hop limit %d, %v", hl, err)
	}
	if on, err := p6.MulticastLoopback(); err != nil || !on {
		t.Errorf("IPv6 multicast loopback %v, %v", on, err)
	}
}

func TestServeTwice(t *testing.T) {
	d := New(Config{Value: value(1), BeaconPort: testkit.FreeUDPPort(t), Interfaces: func() ([]net.Interface, error) { return nil, nil }})
	serve(t, d)
	deadline := time.Now().Add(5 * time.Second)
	for !d.serving.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := d.Serve(context.Background(), func(Sighting) {}); err == nil {
		t.Error("a second concurrent Serve started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(Config{Value: value(1)}).Serve(ctx, func(Sighting) {}); err != nil {
		t.Errorf("Serve with a cancelled context: %v", err)
	}
}

// TestRetrySchedule drives the schedule of one interface whose sends fail,
// without sockets: failures are retried after [SoonJitter/2, 3*SoonJitter/2)
// maxSoonRetries times, then the normal interval resumes, and a success
// resets the count. A failed join is logged at Warn once, then at Debug.
func TestRetrySchedule(t *testing.T) {
	log := &logRecorder{}
	fake := net.Interface{Index: 9, Name: "fake0", Flags: net.FlagUp | net.FlagMulticast}
	d := New(Config{Value: value(1), Rand: seeded(3), Log: slog.New(log),
		Interfaces: func() ([]net.Interface, error) { return []net.Interface{fake}, nil },
		Addrs: func(*net.Interface) ([]net.Addr, error) {
			return []net.Addr{&net.IPNet{IP: net.IPv4(10, 0, 0, 9), Mask: net.CIDRMask(24, 32)}}, nil
		}})
	s := &session{d: d, ctx: context.Background(), links: map[int]*link{}}
	var sendErr, joinErr error
	sends := 0
	s.fams[fam4] = &family{
		name:  "IPv4",
		join:  func(*net.Interface) error { return joinErr },
		leave: func(*net.Interface) error { return nil },
		send:  func(*net.Interface, []byte) error { sends++; return sendErr },
	}
	l := &link{ifi: fake}
	s.links[9] = l
	st := &l.st[fam4]

	now := newFakeClock().Now()
	s.nextRotate = now.Add(1000 * time.Hour) // no rotation in this story
	joinErr = errors.New("no such device")
	s.join(l, fam4, true, now)
	s.join(l, fam4, true, now)
	if st.joined || !st.due.IsZero() {
		t.Fatalf("failed join left %+v", *st)
	}
	var levels []slog.Level
	for i, m := range log.msgs {
		if m == "discovery: join failed" {
			levels = append(levels, log.levels[i])
		}
	}
	if !slices.Equal(levels, []slog.Level{slog.LevelWarn, slog.LevelDebug}) {
		t.Errorf("join failures logged at %v", levels)
	}

	joinErr = nil
	s.join(l, fam4, true, now)
	if first := st.due.Sub(now); !st.joined || first < 0 || first >= SoonJitter {
		t.Fatalf("first beacon planned after %v", first)
	}
	step := func() time.Duration {
		now = st.due
		n := sends
		s.sendDue(now)
		if sends != n+1 {
			t.Fatalf("sendDue at the due time sent %d", sends-n)
		}
		return st.due.Sub(now)
	}
	sendErr = errors.New("cannot assign requested address")
	for i := 1; i <= maxSoonRetries; i++ {
		if gap := step(); gap < SoonJitter/2 || gap >= SoonJitter*3/2 {
			t.Errorf("retry %d after %v", i, gap)
		}
	}
	for range 3 {
		if gap := step(); gap < DefaultInterval/2 || gap >= DefaultInterval*3/2 {
			t.Errorf("after %d failures, next try after %v", st.fails, gap)
		}
	}
	sendErr = nil
	step()
	if st.fails != 0 {
		t.Errorf("fails = %d after a success", st.fails)
	}
	// Nothing is sent before the due time.
	n := sends
	s.sendDue(st.due.Add(-time.Nanosecond))
	if sends != n {
		t.Error("sent before the due time")
	}
	// Leaving the group stops the schedule.
	s.forget(l)
	if len(s.links) != 0 {
		t.Error("forgotten link still listed")
	}
}
