package discovery

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Fixed ports and groups. See SPEC.md, "LAN discovery".
const (
	// TCPPort is a node's default port for links, the one its beacons advertise.
	TCPPort = 7342
	// BeaconPort is the UDP port beacons are sent to and received on.
	BeaconPort = 7343

	// DefaultInterval is the mean time between two beacons on one
	// interface and family.
	DefaultInterval = 5 * time.Second
	// DefaultRescanInterval is how often the interface list is read again.
	DefaultRescanInterval = 3 * time.Second
	// SoonJitter bounds the delay of the first beacon after Serve starts and
	// after an interface appears: uniform in [0, SoonJitter).
	SoonJitter = time.Second
	// DefaultRotateEvery is the default rotation period: values rotate at
	// every whole hour of the wall clock.
	DefaultRotateEvery = time.Hour
	// DefaultRotateGap bounds the random part of the silence after a
	// rotation (see Config.RotateGap).
	DefaultRotateGap = time.Minute
)

var (
	// Group4 is the IPv4 beacon group, in the administratively scoped
	// 239.255.0.0/16 (RFC 2365); sent with TTL 1.
	Group4 = netip.MustParseAddr("239.255.73.42")
	// Group6 is the IPv6 beacon group, link-local scope (ff02::/16); sent
	// with hop limit 1.
	Group6 = netip.MustParseAddr("ff02::7342")
)

// Sighting is one beacon heard from another node.
type Sighting struct {
	// Addr is where to dial: the beacon's source address (an IPv6
	// link-local one carries the zone of the interface it arrived on, as in
	// fe80::1%eth0) with the TCP port the beacon advertises.
	Addr netip.AddrPort
	// Value is the sender's current rotating value (see Dials).
	Value [ValueSize]byte
	// Interface is the name of the interface the beacon arrived on.
	Interface string
}

// Clock is the time source of the beacon schedule. With a fake Clock and a
// deterministic Config.Rand, the schedule is reproducible.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config says what a Discoverer advertises and where. Only Value is
// required (and not even that in Stealth mode); zero fields take defaults.
type Config struct {
	// Port is the TCP port to advertise; default TCPPort.
	Port uint16
	// Value returns the current rotating value. It is called once per
	// beacon sent, from Serve's goroutine. The caller draws a fresh random
	// value whenever it rotates its link key (e.g. hourly) and never derives
	// it from anything stable.
	Value func() [ValueSize]byte
	// Interval is the mean time between beacons on one interface and
	// family; each gap is uniform in [Interval/2, 3*Interval/2), drawn
	// afresh per send. Default DefaultInterval.
	Interval time.Duration
	// RescanInterval is how often interfaces are listed again to join new
	// ones and forget vanished ones. Default DefaultRescanInterval.
	RescanInterval time.Duration
	// Stealth sends nothing at all: no beacon, and no multicast group join
	// (which would announce itself by IGMP or MLD). The Discoverer opens no
	// socket and hears nothing; it only watches the clock and the addresses
	// to call Rotate. A stealth node is found by nobody and finds nobody:
	// it links with the peers it is told about and those who dial it.
	Stealth bool
	// ListenOnly joins the groups and reports what it hears, but sends no
	// beacon (a node that accepts no links has nothing to advertise).
	ListenOnly bool

	// Rotate, if set, is called from Serve's goroutine whenever the value
	// must change, and must make Value return a fresh one (and the caller
	// rotate its link key with it) before it returns. Serve calls it at
	// every wall-clock multiple of RotateEvery — so that nodes whose clocks
	// roughly agree all rotate together, and one node's change hides among
	// the others' — and whenever the addresses of the interfaces in use
	// change, before anything is sent from a new address.
	Rotate func()
	// RotateEvery is the rotation period; default DefaultRotateEvery.
	RotateEvery time.Duration
	// RotateGap: after a periodic rotation no beacon leaves for Interval
	// plus a time uniform in [0, RotateGap), drawn per interface and
	// family, so the new value's beacons start at a phase unrelated to the
	// old one's. (After an address change: Interval plus [0, Interval).)
	// Default DefaultRotateGap, or RotateEvery/4 if that is shorter.
	RotateGap time.Duration

	// BeaconPort, Group4 and Group6 override the constants (tests).
	BeaconPort     uint16
	Group4, Group6 netip.Addr
	// Interfaces lists candidate interfaces; default net.Interfaces.
	// Only those that are up and multicast-capable are used.
	Interfaces func() ([]net.Interface, error)
	// Addrs lists an interface's addresses; default (*net.Interface).Addrs.
	Addrs func(*net.Interface) ([]net.Addr, error)
	// IncludeLoopback also uses loopback interfaces (tests). They are
	// skipped otherwise.
	IncludeLoopback bool

	// Rand draws the jitter; default crypto/rand.Reader.
	Rand io.Reader
	// Clock times the beacons; default the system clock.
	Clock Clock
	// Log receives diagnostics; default: discarded.
	Log *slog.Logger
}

// Discoverer sends and receives beacons. Create it with New and run it
// with Serve.
type Discoverer struct {
	cfg     Config
	serving atomic.Bool

	// Set by tests: called after each beacon sent, from Serve's goroutine.
	onSend func(now time.Time, iface string, b Beacon)

	// links maps interface index to the interfaces joined; Serve's loop
	// writes it, the readers read it.
	links atomic.Pointer[map[int]linkInfo]

	ownMu sync.Mutex
	own   [2][ValueSize]byte // the last two distinct values sent
	nOwn  int

	foundMu sync.Mutex
}

// linkInfo is what the readers need to know about a joined interface.
type linkInfo struct {
	name   string
	v4, v6 bool
}

// New returns a Discoverer for cfg, with defaults filled in.
func New(cfg Config) *Discoverer {
	if cfg.Port == 0 {
		cfg.Port = TCPPort
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	if cfg.RotateEvery <= 0 {
		cfg.RotateEvery = DefaultRotateEvery
	}
	if cfg.RotateGap <= 0 {
		cfg.RotateGap = min(DefaultRotateGap, cfg.RotateEvery/4)
	}
	if cfg.BeaconPort == 0 {
		cfg.BeaconPort = BeaconPort
	}
	if !cfg.Group4.IsValid() {
		cfg.Group4 = Group4
	}
	if !cfg.Group6.IsValid() {
		cfg.Group6 = Group6
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = net.Interfaces
	}
	if cfg.Addrs == nil {
		cfg.Addrs = (*net.Interface).Addrs
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &Discoverer{cfg: cfg}
	d.links.Store(&map[int]linkInfo{})
	return d
}

// Serve sends beacons (unless Stealth or ListenOnly) and calls found for
// every beacon heard from another node (unless Stealth), and calls Rotate
// when the value must change, until ctx is done; then it closes its sockets
// and returns nil. It returns an error only if the configuration is invalid
// or neither an IPv4 nor an IPv6 socket could be opened; trouble with one
// interface or one datagram is logged and skipped.
//
// found is called from Serve's goroutines, one call at a time, for every
// beacon (a neighbour beacons every few seconds on every shared interface and
// family): callers de-duplicate by Value. It should return quickly.
// A Discoverer serves once at a time: a second concurrent Serve fails.
func (d *Discoverer) Serve(ctx context.Context, found func(Sighting)) error {
	cfg := &d.cfg
	if !d.serving.CompareAndSwap(false, true) {
		return errors.New("discovery: Serve is already running")
	}
	defer d.serving.Store(false)
	if cfg.Value == nil && !cfg.Stealth && !cfg.ListenOnly {
		return errors.New("discovery: Config.Value is required unless Stealth or ListenOnly")
	}
	if !cfg.Group4.Is4() || !cfg.Group4.IsMulticast() {
		return fmt.Errorf("discovery: %v is not an IPv4 multicast group", cfg.Group4)
	}
	if !cfg.Group6.Is6() || cfg.Group6.Is4In6() || !cfg.Group6.IsMulticast() {
		return fmt.Errorf("discovery: %v is not an IPv6 multicast group", cfg.Group6)
	}

	if ctx.Err() != nil {
		return nil
	}

	s := &session{d: d, ctx: ctx, links: map[int]*link{}}
	if cfg.Stealth {
		s.loop() // no socket: nothing to send or hear, only rotations
		return nil
	}
	var err4, err6 error
	s.p4, err4 = listen4(cfg.BeaconPort)
	if err4 != nil {
		cfg.Log.Warn("discovery: no IPv4 beacons", "err", err4)
	}
	s.p6, err6 = listen6(cfg.BeaconPort)
	if err6 != nil {
		cfg.Log.Warn("discovery: no IPv6 beacons", "err", err6)
	}
	if s.p4 == nil && s.p6 == nil {
		return fmt.Errorf("discovery: %w", errors.Join(err4, err6))
	}

	var wg sync.WaitGroup
	if s.p4 != nil {
		wg.Go(func() { s.read4(found) })
	}
	if s.p6 != nil {
		wg.Go(func() { s.read6(found) })
	}
	s.loop()
	if s.p4 != nil {
		s.p4.Close()
	}
	if s.p6 != nil {
		s.p6.Close()
	}
	wg.Wait()
	d.links.Store(&map[int]linkInfo{})
	return nil
}

// session is the state of one Serve call.
type session struct {
	d     *Discoverer
	ctx   context.Context
	p4    *ipv4.PacketConn
	p6    *ipv6.PacketConn
	fams  [2]*family    // IPv4, IPv6; nil if that socket could not be opened
	links map[int]*link // by interface index; owned by loop

	addrs      string    // the addresses in use, as addrKey says
	scanned    bool      // addrs is set
	nextRotate time.Time // the next wall-clock rotation
	nextScan   time.Time // the next rescan
}

// Indexes of session.fams and link.st.
const (
	fam4 = 0
	fam6 = 1
)

// family is one IP version's socket and group.
type family struct {
	name  string
	join  func(*net.Interface) error
	leave func(*net.Interface) error
	send  func(*net.Interface, []byte) error
}

// link is an interface the session uses.
type link struct {
	ifi          net.Interface
	st           [2]famState
	lastAddrsErr string // the last error of ifi.Addrs, logged once
	addrs        string // its MAC and IP addresses, for addrKey
}

// famState is one family's state on one interface.
type famState struct {
	joined bool      // the group is joined
	warned bool      // a failed join was logged at Warn already
	due    time.Time // next beacon; zero if none is planned
	fails  int       // consecutive failed sends
}

// maxSoonRetries is how many failed sends in a row are retried after about
// SoonJitter before falling back to the normal interval: a new IPv6
// link-local address cannot be sent from while duplicate address detection
// runs (a second or two; sendmsg fails with EADDRNOTAVAIL).
const maxSoonRetries = 5

func (s *session) families() {
	cfg := &s.d.cfg
	if s.p4 != nil {
		g := &net.UDPAddr{IP: cfg.Group4.AsSlice(), Port: int(cfg.BeaconPort)}
		s.fams[fam4] = &family{
			name:  "IPv4",
			join:  func(ifi *net.Interface) error { return s.p4.JoinGroup(ifi, g) },
			leave: func(ifi *net.Interface) error { return s.p4.LeaveGroup(ifi, g) },
			send: func(ifi *net.Interface, p []byte) error {
				if err := s.p4.SetMulticastInterface(ifi); err != nil {
					return err
				}
				_, err := s.p4.WriteTo(p, nil, g)
				return err
			},
		}
	}
	if s.p6 != nil {
		g := &net.UDPAddr{IP: cfg.Group6.AsSlice(), Port: int(cfg.BeaconPort)}
		s.fams[fam6] = &family{
			name:  "IPv6",
			join:  func(ifi *net.Interface) error { return s.p6.JoinGroup(ifi, g) },
			leave: func(ifi *net.Interface) error { return s.p6.LeaveGroup(ifi, g) },
			send: func(ifi *net.Interface, p []byte) error {
				if err := s.p6.SetMulticastInterface(ifi); err != nil {
					return err
				}
				_, err := s.p6.WriteTo(p, nil, g)
				return err
			},
		}
	}
}

func (s *session) loop() {
	cfg := &s.d.cfg
	s.families()
	now := cfg.Clock.Now()
	s.start(now)
	for {
		wake := s.step(now)
		select {
		case <-s.ctx.Done():
			return
		case <-cfg.Clock.After(wake.Sub(now)):
		}
		now = cfg.Clock.Now()
	}
}

// start plans the first rotation and joins the interfaces.
func (s *session) start(now time.Time) {
	s.nextRotate = nextBoundary(now, s.d.cfg.RotateEvery)
	s.rescan(now)
	s.nextScan = now.Add(s.d.cfg.RescanInterval)
}

// step does what is due at now: a rotation, a rescan, beacons. It returns
// when the next thing is due.
func (s *session) step(now time.Time) (wake time.Time) {
	cfg := &s.d.cfg
	if !now.Before(s.nextRotate) {
		s.rotate(now, s.nextRotate, "period", cfg.RotateGap)
	}
	if !now.Before(s.nextScan) {
		s.rescan(now)
		s.nextScan = now.Add(cfg.RescanInterval)
	}
	s.sendDue(now)

	wake = s.nextScan
	if s.nextRotate.Before(wake) {
		wake = s.nextRotate
	}
	for _, l := range s.links {
		for _, st := range l.st {
			if !st.due.IsZero() && st.due.Before(wake) {
				wake = st.due
			}
		}
	}
	return wake
}

// usable reports whether Serve should use ifi at all.
func (s *session) usable(ifi *net.Interface) bool {
	if ifi.Flags&net.FlagUp == 0 {
		return false
	}
	if ifi.Flags&net.FlagLoopback != 0 {
		return s.d.cfg.IncludeLoopback
	}
	return ifi.Flags&net.FlagMulticast != 0
}

// addrFamilies reports which families ifi can beacon on: IPv4 if it has an
// IPv4 address, IPv6 if it has a link-local IPv6 address, so that a beacon's
// source is an address the receiver can dial back on that link. (A loopback
// interface has no fe80:: address: it beacons over IPv4 only.)
//
// It also returns the interface's MAC and IP addresses as one string, to
// notice when they change.
func addrFamilies(ifi *net.Interface, list func(*net.Interface) ([]net.Addr, error)) (want [2]bool, key string, err error) {
	addrs, err := list(ifi)
	if err != nil {
		return want, "", err
	}
	keys := []string{ifi.Name, ifi.HardwareAddr.String()}
	for _, a := range addrs {
		keys = append(keys, a.String())
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4():
			want[fam4] = true
		case ip.IsLinkLocalUnicast():
			want[fam6] = true
		}
	}
	slices.Sort(keys[2:])
	return want, strings.Join(keys, " "), nil
}

// addrKey is every address of the interfaces in use, as one string.
func (s *session) addrKey() string {
	keys := make([]string, 0, len(s.links))
	for _, l := range s.links {
		keys = append(keys, l.addrs)
	}
	slices.Sort(keys)
	return strings.Join(keys, "\n")
}

// rotate has the caller change its value (and link key), and silences every
// beacon train for Interval plus a random part of gap, so the new value
// starts at a phase of its own. The silence counts from base: the boundary
// for a periodic rotation, not the moment this node got round to it, so a
// node that runs late (a busy device) does not start its new value late by
// as much as it sent its last old one late — a listener would pair the two.
func (s *session) rotate(now, base time.Time, why string, gap time.Duration) {
	cfg := &s.d.cfg
	s.nextRotate = nextBoundary(now, cfg.RotateEvery)
	if cfg.Rotate == nil {
		return
	}
	cfg.Rotate()
	for _, l := range s.links {
		for f := range l.st {
			if st := &l.st[f]; st.joined && s.beaconing() {
				st.due = base.Add(cfg.Interval + s.uniform(gap))
			}
		}
	}
	cfg.Log.Debug("discovery: rotated", "why", why)
}

// beaconing says whether this Discoverer sends beacons at all.
func (s *session) beaconing() bool { return !s.d.cfg.Stealth && !s.d.cfg.ListenOnly }

// nextBoundary is the first multiple of every (counted from the zero time,
// so whole hours of UTC for an hour) after now.
func nextBoundary(now time.Time, every time.Duration) time.Time {
	return now.Truncate(every).Add(every)
}

// rescan lists the interfaces, joins the groups on new ones and leaves them
// on vanished ones, and rotates if the addresses changed (it reports whether
// it did). Errors are logged; whatever worked stays.
func (s *session) rescan(now time.Time) (rotated bool) {
	cfg := &s.d.cfg
	ifs, err := cfg.Interfaces()
	if err != nil {
		cfg.Log.Warn("discovery: listing interfaces", "err", err)
		return false
	}
	seen := map[int]bool{}
	for i := range ifs {
		ifi := ifs[i]
		if !s.usable(&ifi) {
			continue
		}
		l := s.links[ifi.Index]
		if l != nil && l.ifi.Name != ifi.Name {
			s.forget(l) // the index now names another interface
			l = nil
		}
		want, key, err := addrFamilies(&ifi, cfg.Addrs)
		if err != nil {
			if l != nil {
				seen[ifi.Index] = true // keep what we have
				if msg := err.Error(); msg != l.lastAddrsErr {
					l.lastAddrsErr = msg
					cfg.Log.Warn("discovery: interface addresses", "iface", ifi.Name, "err", err)
				}
			}
			continue
		}
		if l == nil {
			l = &link{ifi: ifi}
			s.links[ifi.Index] = l
			cfg.Log.Debug("discovery: interface up", "iface", ifi.Name, "index", ifi.Index)
		}
		l.ifi = ifi
		l.lastAddrsErr = ""
		l.addrs = key
		seen[ifi.Index] = true
		for f := range s.fams {
			s.join(l, f, want[f], now)
		}
	}
	for idx, l := range s.links {
		if !seen[idx] {
			s.forget(l)
		}
	}
	// A new address (a new network, a new MAC, a new lease) gets a new
	// value, or the value would link the device's old and new addresses.
	// The pause is short: the operating system's own traffic (DHCP, ARP,
	// duplicate address detection) marks the moment anyway, and a device
	// that just joined a network should be found soon.
	key := s.addrKey()
	if s.scanned && key != s.addrs {
		s.rotate(now, now, "address change", cfg.Interval)
		rotated = true
	}
	s.addrs, s.scanned = key, true
	s.publish()
	return rotated
}

// join joins (want) or leaves family f's group on l. A fresh join plans a
// beacon within SoonJitter.
func (s *session) join(l *link, f int, want bool, now time.Time) {
	fam, st := s.fams[f], &l.st[f]
	if fam == nil || want == st.joined {
		return
	}
	if !want {
		_ = fam.leave(&l.ifi) // fails if the interface is gone, which leaves it too
		*st = famState{}
		return
	}
	if err := fam.join(&l.ifi); err != nil {
		level := slog.LevelWarn
		if st.warned {
			level = slog.LevelDebug // retried at every rescan: warn once
		}
		st.warned = true
		s.d.cfg.Log.Log(s.ctx, level, "discovery: join failed", "iface", l.ifi.Name, "family", fam.name, "err", err)
		return
	}
	s.d.cfg.Log.Debug("discovery: joined", "iface", l.ifi.Name, "family", fam.name)
	*st = famState{joined: true}
	if s.beaconing() {
		st.due = now.Add(s.uniform(SoonJitter))
	}
}

// forget leaves the groups on a vanished interface.
func (s *session) forget(l *link) {
	for f := range s.fams {
		s.join(l, f, false, time.Time{})
	}
	delete(s.links, l.ifi.Index)
	s.d.cfg.Log.Debug("discovery: interface gone", "iface", l.ifi.Name, "index", l.ifi.Index)
}

// publish hands the readers a fresh snapshot of the joined interfaces.
func (s *session) publish() {
	m := make(map[int]linkInfo, len(s.links))
	for idx, l := range s.links {
		m[idx] = linkInfo{name: l.ifi.Name, v4: l.st[fam4].joined, v6: l.st[fam6].joined}
	}
	s.d.links.Store(&m)
}

// sendDue sends a beacon on every interface and family whose time has come,
// and plans the next one.
func (s *session) sendDue(now time.Time) {
	cfg := &s.d.cfg
	if !s.beaconing() || !s.anyDue(now) {
		return
	}
	// Read the addresses again first: a beacon with the old value must not
	// leave from a new address (the rescan every few seconds may not have
	// seen it yet). That look is a rescan too: the next periodic one waits.
	t0 := cfg.Clock.Now()
	rotated := s.rescan(now)
	s.nextScan = now.Add(cfg.RescanInterval)
	if rotated {
		return // everything is silent for a while
	}
	// Listing the interfaces takes a moment: if a boundary passed meanwhile,
	// the old value must not leave after it.
	if took := cfg.Clock.Now().Sub(t0); took > 0 && !now.Add(took).Before(s.nextRotate) {
		s.rotate(now.Add(took), s.nextRotate, "period", cfg.RotateGap)
		return
	}
	idxs := make([]int, 0, len(s.links))
	for idx := range s.links {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	for _, idx := range idxs {
		l := s.links[idx]
		for f, fam := range s.fams {
			st := &l.st[f]
			if !st.joined || st.due.IsZero() || now.Before(st.due) {
				continue
			}
			b := Beacon{Port: cfg.Port, Value: cfg.Value()}
			s.d.remember(b.Value)
			if err := fam.send(&l.ifi, b.Marshal()); err != nil {
				st.fails++
				cfg.Log.Debug("discovery: send failed", "iface", l.ifi.Name, "family", fam.name, "err", err, "fails", st.fails)
			} else {
				st.fails = 0
				if s.d.onSend != nil {
					s.d.onSend(now, l.ifi.Name, b)
				}
			}
			if st.fails > 0 && st.fails <= maxSoonRetries {
				st.due = now.Add(SoonJitter/2 + s.uniform(SoonJitter))
			} else {
				st.due = now.Add(cfg.Interval/2 + s.uniform(cfg.Interval))
			}
		}
	}
}

func (s *session) anyDue(now time.Time) bool {
	for _, l := range s.links {
		for _, st := range l.st {
			if st.joined && !st.due.IsZero() && !now.Before(st.due) {
				return true
			}
		}
	}
	return false
}

// uniform returns a duration uniform in [0, span) drawn from cfg.Rand, or
// span/2 if Rand fails.
func (s *session) uniform(span time.Duration) time.Duration {
	if span <= 0 {
		return 0
	}
	var buf [8]byte
	if _, err := io.ReadFull(s.d.cfg.Rand, buf[:]); err != nil {
		s.d.cfg.Log.Warn("discovery: no randomness for jitter", "err", err)
		return span / 2
	}
	// The modulo bias is below 2^-30 for any span under 2^34 ns (17 s) and
	// irrelevant for a send schedule.
	return time.Duration(binary.BigEndian.Uint64(buf[:]) % uint64(span))
}

// remember records v as one of our own values.
func (d *Discoverer) remember(v [ValueSize]byte) {
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	if d.nOwn > 0 && d.own[0] == v {
		return
	}
	d.own[1] = d.own[0]
	d.own[0] = v
	d.nOwn = min(d.nOwn+1, 2)
}

// isOwn reports whether v is one of the last two values this Discoverer sent
// (the previous one covers beacons still in flight across a rotation).
func (d *Discoverer) isOwn(v [ValueSize]byte) bool {
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	for i := range d.nOwn {
		if d.own[i] == v {
			return true
		}
	}
	return false
}
