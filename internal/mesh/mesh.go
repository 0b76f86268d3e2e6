// Package mesh runs a node on the network: it listens for and dials
// neighbours (static peers with backoff, LAN discovery), opens encrypted
// links to them (package link), runs the sync protocol on each (package
// session), pushes new envelopes to every neighbour at once, and guards the
// node against misbehaving peers (limits, rate limits, penalties).
//
// Its transport is an interface: the tests run this same code over an
// in-memory network on virtual time (testing/synctest). The simulator (package
// sim) runs the node and the session below it, not this package.
package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/grapevine-mesh/grapevine/internal/session"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/grapevine-mesh/grapevine/internal/discovery"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// DefaultPort is the TCP port a node listens on unless told otherwise.
const DefaultPort = discovery.TCPPort

// Config is how a node meets its neighbours. Zero values take defaults.
type Config struct {
	Listen    string   // address to listen on; "" listens nowhere (dial only)
	Peers     []string // static peers, dialled and redialled with backoff
	Discovery bool     // LAN discovery by multicast beacons
	Stealth   bool     // send nothing unasked: no beacon, no multicast join, no dial to a beacon heard
	// RelayQuota is the most bytes carried for others; 0 means the default
	// (node.DefaultRelayQuota), a negative value turns relaying off.
	RelayQuota int64

	Transport Transport // default TCP
	Rand      io.Reader // default crypto/rand
	Log       *slog.Logger
	// DiscoveryConfig tunes discovery (tests); Port, Value, Stealth, Rand
	// and Log are filled in by the mesh.
	DiscoveryConfig discovery.Config

	Keepalive      time.Duration // a Ping after about this much silence (±1/3, random); default 15 s
	IdleTimeout    time.Duration // cut a link silent this long; default 45 s
	ResyncInterval time.Duration // reconcile again this often; default 5 min
	KeyRotation    time.Duration // new link key and beacon value at every whole multiple of the clock; default 1 h
	MaintainEvery  time.Duration // expire items, forget old keys; default 10 min
	BackoffMin     time.Duration // first redial delay of a static peer; default 1 s
	BackoffMax     time.Duration // default 60 s
	MaxPeers       int           // links at once; default 64
	// MaxPerHost is how many links one address may hold at once (default
	// 2), MaxHandshakes how many handshakes may be in progress at once
	// (default 16, at most 2 per address): one host cannot take every slot.
	MaxPerHost    int
	MaxHandshakes int
	// WriteTimeout cuts a link whose peer does not read what it is sent;
	// default 30 s.
	WriteTimeout time.Duration
	// DialRate bounds the dials that beacons cause, per second (default 2),
	// so forged beacons cannot turn the node into a port scanner.
	DialRate float64
	// Penalty is how long a host that broke the protocol is refused;
	// doubled on each repeat up to 16×. Default 30 s.
	Penalty time.Duration
	// RateEnvelopes and RateBytes bound what one neighbour may send per
	// second; beyond, its link is read slower (TCP pushes back).
	RateEnvelopes float64 // default 20,000
	RateBytes     float64 // default 16 MiB
}

// WithDefaults returns c with every unset timing and limit at its default
// (the simulator keeps the same timers: sim.ResyncInterval and
// sim.MaintainInterval).
func (c Config) WithDefaults() Config {
	c.fill()
	return c
}

func (c *Config) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Keepalive, 15*time.Second)
	def(&c.IdleTimeout, 45*time.Second)
	def(&c.ResyncInterval, session.ResyncInterval)
	def(&c.KeyRotation, time.Hour)
	def(&c.MaintainEvery, 10*time.Minute)
	def(&c.BackoffMin, time.Second)
	def(&c.BackoffMax, time.Minute)
	def(&c.Penalty, 30*time.Second)
	if c.Transport == nil {
		c.Transport = TCP{}
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 64
	}
	if c.MaxPerHost <= 0 {
		c.MaxPerHost = 2
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = 16
	}
	def(&c.WriteTimeout, 30*time.Second)
	if c.DialRate <= 0 {
		c.DialRate = 2
	}
	if c.RateEnvelopes <= 0 {
		c.RateEnvelopes = 20000
	}
	if c.RateBytes <= 0 {
		c.RateBytes = 16 << 20
	}
}

// Mesh is a node on the network.
type Mesh struct {
	node    *node.Node
	cfg     Config
	log     *slog.Logger
	started time.Time

	mu        sync.Mutex
	key       noise.DHKey         // current link key
	keyAddrs  map[netip.Addr]bool // the host's addresses when key was made
	value     [discovery.ValueSize]byte
	peers     map[*peer]struct{}
	busy      map[string]bool // addresses being dialled or linked from here
	penalties map[string]penalty
	shaking   map[string]int         // handshakes in progress, per host
	shakes    int                    // handshakes in progress in all
	inShake   map[net.Conn]time.Time // inbound handshakes in progress, since when
	waiting   []waiter               // inbound connections waiting for a handshake slot, oldest first
	kick      chan struct{}          // a handshake slot may be free: see admitWaiting
	shedLog   time.Time              // when shedding load was last logged
	listen    []string

	// The discovery service runs under its own context, so SetStealth can
	// restart it with the new choice; discMu orders restarts and Serve's end.
	discMu     sync.Mutex
	discCtx    context.Context    // Serve's; nil when discovery is not running
	discCancel context.CancelFunc // stops the running discovery service
	discDone   chan struct{}      // closed when it has stopped

	tried            map[[discovery.ValueSize]byte]time.Time // beacon value → when it last made us dial
	discoveryRotates atomic.Bool                             // discovery runs and calls rotate itself

	links   sync.WaitGroup // inbound and discovered links in progress
	ready   chan struct{}  // closed once Serve listens
	fresh   chan struct{}  // new envelopes wait in newIDs
	freshMu sync.Mutex
	newIDs  []envelope.ID
}

type penalty struct {
	until  time.Time
	strike int
}

// New prepares a mesh around an unlocked node.
func New(n *node.Node, cfg Config) *Mesh {
	cfg.fill()
	switch {
	case cfg.RelayQuota < 0:
		n.SetRelayQuota(0)
	case cfg.RelayQuota > 0:
		n.SetRelayQuota(cfg.RelayQuota)
	}
	return &Mesh{node: n, cfg: cfg, log: cfg.Log, peers: map[*peer]struct{}{}, busy: map[string]bool{},
		penalties: map[string]penalty{}, shaking: map[string]int{}, inShake: map[net.Conn]time.Time{}, kick: make(chan struct{}, 1), tried: map[[discovery.ValueSize]byte]time.Time{}, fresh: make(chan struct{}, 1), ready: make(chan struct{})}
}

// Serve runs the node on the network until ctx is done. It returns an error
// only if it cannot start (for example, the listen address is taken).
func (m *Mesh) Serve(ctx context.Context) error {
	if err := m.rotate(); err != nil {
		return err
	}
	m.mu.Lock()
	m.started = time.Now() // Status reads it, from the local API
	m.mu.Unlock()
	var ln net.Listener
	if m.cfg.Listen != "" {
		var err error
		if ln, err = m.cfg.Transport.Listen(m.cfg.Listen); err != nil {
			return fmt.Errorf("failed to listen on %s: %w", m.cfg.Listen, err)
		}
		m.mu.Lock()
		m.listen = []string{ln.Addr().String()}
		m.mu.Unlock()
	}
	close(m.ready)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	goes := wg.Go

	m.node.Watch(m.noteNew) // runs under the node's lock: only note the IDs
	defer m.node.Watch(nil)
	goes(func() { m.fanout(ctx) })
	goes(func() { m.housekeeping(ctx) })
	if ln != nil {
		goes(func() { m.accept(ctx, ln) })
		goes(func() { m.admitWaiting(ctx) })
		goes(func() { <-ctx.Done(); ln.Close() })
	}
	for _, addr := range m.cfg.Peers {
		goes(func() { m.keepDialling(ctx, addr) })
	}
	if m.cfg.Discovery {
		m.discMu.Lock()
		m.discCtx = ctx
		m.startDiscovery()
		m.discMu.Unlock()
	}
	<-ctx.Done()
	m.discMu.Lock()
	if m.discCtx != nil {
		m.discCancel()
		<-m.discDone
		m.discCtx = nil
	}
	m.discMu.Unlock()
	m.closeAll()
	wg.Wait()
	m.links.Wait() // every link has stored what it received: the node may close
	return nil
}

// Ready is closed once Serve has started listening.
func (m *Mesh) Ready() <-chan struct{} { return m.ready }

// Addrs returns the addresses the node listens on, once Serve has started.
func (m *Mesh) Addrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.listen...)
}

// rotate draws a new link key and beacon value. Links already up keep
// theirs; a stranger who links again later sees a different key.
func (m *Mesh) rotate() error {
	key, err := link.NewStatic(m.cfg.Rand)
	if err != nil {
		return fmt.Errorf("failed to make a link key: %w", err)
	}
	var v [discovery.ValueSize]byte
	if _, err := io.ReadFull(m.cfg.Rand, v[:]); err != nil {
		return fmt.Errorf("failed to draw a beacon value: %w", err)
	}
	addrs := map[netip.Addr]bool{}
	if ifas, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifas {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					addrs[ip.Unmap()] = true
				}
			}
		}
	}
	m.mu.Lock()
	m.key, m.value, m.keyAddrs = key, v, addrs
	m.mu.Unlock()
	return nil
}

// keyFor returns the link key for a connection from local. An address the
// host did not have when the key was made means the device moved (a new
// network, a new lease): the key rotates first, or it would link the old
// address and the new (discovery notices the move too, but only at its
// next look, seconds later).
func (m *Mesh) keyFor(local net.Addr) noise.DHKey {
	ip := addrIP(local)
	m.mu.Lock()
	moved := ip.IsValid() && !ip.IsLoopback() && len(m.keyAddrs) > 0 && !m.keyAddrs[ip]
	m.mu.Unlock()
	if moved {
		m.log.Debug("new local address: rotating the link key", "addr", ip)
		if err := m.rotate(); err != nil {
			m.log.Warn("link key rotation failed", "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.key
}

// addrIP is the IP address of a TCP address, zone removed; invalid for
// other transports.
func addrIP(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().WithZone("").Unmap()
}

// ReleaseEvery is how often a running node looks for receipts due to leave.
const ReleaseEvery = time.Second

func (m *Mesh) housekeeping(ctx context.Context) {
	// Rotations come at whole multiples of the wall clock, as discovery's
	// do (SPEC §9.4), so that one node's hides among its neighbours'.
	untilBoundary := func() time.Duration {
		now := time.Now()
		return now.Truncate(m.cfg.KeyRotation).Add(m.cfg.KeyRotation).Sub(now)
	}
	rotate := time.After(untilBoundary())
	maintain := time.After(m.cfg.MaintainEvery)
	release := time.After(ReleaseEvery)
	for {
		select {
		case <-ctx.Done():
			return
		case <-release: // receipts whose random delay is over leave now (SPEC §6)
			if err := m.node.ReleaseReceipts(false); err != nil {
				m.log.Warn("releasing receipts failed", "err", err)
			}
			release = time.After(ReleaseEvery)
		case <-rotate:
			if !m.discoveryRotates.Load() {
				if err := m.rotate(); err != nil {
					m.log.Warn("link key rotation failed", "err", err)
				}
			}
			rotate = time.After(untilBoundary())
		case <-maintain:
			if err := m.node.Maintain(); err != nil {
				m.log.Warn("maintenance failed", "err", err)
			}
			m.forgetPenalties()
			maintain = time.After(m.cfg.MaintainEvery)
		}
	}
}

// noteNew is the node's watcher: it runs with the node locked, so it only
// records the IDs for fanout.
func (m *Mesh) noteNew(ids []envelope.ID) {
	m.freshMu.Lock()
	m.newIDs = append(m.newIDs, ids...)
	m.freshMu.Unlock()
	select {
	case m.fresh <- struct{}{}:
	default:
	}
}

// fanout offers new envelopes to every neighbour (live push). A session
// skips what its peer is known to hold, such as what came from it.
func (m *Mesh) fanout(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.fresh:
		}
		m.freshMu.Lock()
		ids := m.newIDs
		m.newIDs = nil
		m.freshMu.Unlock()
		for _, p := range m.peerList() {
			p.offer(ids)
		}
	}
}

func (m *Mesh) peerList() []*peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*peer, 0, len(m.peers))
	for p := range m.peers {
		out = append(out, p)
	}
	return out
}

func (m *Mesh) closeAll() {
	for _, p := range m.peerList() {
		p.close()
	}
}

func (m *Mesh) accept(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				m.log.Warn("accept failed", "err", err)
				select { // e.g. out of file descriptors: breathe
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			return
		}
		host := hostOf(c.RemoteAddr().String())
		if m.penalised(host) {
			c.Close()
			continue
		}
		switch why := m.admit(host, c); why {
		case "":
			m.handshake(ctx, c, host)
		case queued: // admitWaiting starts it when a slot frees
		default:
			m.shed(host, why)
			c.Close()
		}
	}
}

// handshake runs the link of an admitted inbound connection.
func (m *Mesh) handshake(ctx context.Context, c net.Conn, host string) {
	m.links.Go(func() { m.run(ctx, c, false, "", false, func() { m.handshook(host, c) }) })
}

// A waiter is an inbound connection waiting for a handshake slot.
type waiter struct {
	c     net.Conn
	host  string
	since time.Time
}

// queued is admit's answer for a connection put in the waiting line.
const queued = "queued"

// admitWaiting admits waiting connections as handshake slots free up, in
// the order they came: when all are taken, the oldest handshake that has
// had handshakeGrace yields its slot to the first in line. So connections
// that speak a byte now and then (slowloris) cannot keep a neighbour out,
// however fast they reconnect: a newcomer waits its turn behind at most
// MaxHandshakes others. A connection that waited the handshake timeout is
// dropped.
func (m *Mesh) admitWaiting(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			for _, w := range m.waiting {
				w.c.Close()
			}
			m.waiting = nil
			m.mu.Unlock()
			return
		case <-tick.C:
		case <-m.kick:
		}
		var start []waiter
		m.mu.Lock()
		now := time.Now()
		for len(m.waiting) > 0 {
			w := m.waiting[0]
			if now.Sub(w.since) > link.DefaultHandshakeTimeout {
				w.c.Close()
				m.waiting = m.waiting[1:]
				continue
			}
			if m.shakes < m.cfg.MaxHandshakes {
				m.waiting = m.waiting[1:]
				m.reserve(w.host, w.c)
				start = append(start, w)
				continue
			}
			m.yieldOldestHandshake() // its slot frees when its handshake returns: kick
			break
		}
		m.mu.Unlock()
		for _, w := range start {
			m.handshake(ctx, w.c, w.host)
		}
	}
}

func (m *Mesh) full() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.peers) >= m.cfg.MaxPeers && m.idlest() == nil
}

// admit reserves a handshake for a new inbound connection c from host, or
// says why not: too many handshakes from this host, or this host holds its
// share of links already. A full node still admits one when some link
// carries nothing useful: it yields (register). When every handshake slot
// is taken, c waits in line (queued; see admitWaiting), one per address
// and as many as there are slots; beyond that it is refused.
func (m *Mesh) admit(host string, c net.Conn) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.shaking[host] >= 2:
		return "too many handshakes from one address"
	case m.linksFrom(host) >= m.cfg.MaxPerHost:
		return "this address holds its share of links"
	case len(m.peers) >= m.cfg.MaxPeers && m.idlest() == nil:
		return "every link slot busy"
	case m.shakes >= m.cfg.MaxHandshakes:
		if slices.ContainsFunc(m.waiting, func(w waiter) bool { return w.host == host }) {
			return "too many handshakes in progress"
		}
		if len(m.waiting) >= m.cfg.MaxHandshakes && !m.displaceWaiter(host) {
			return "too many handshakes in progress"
		}
		m.waiting = append(m.waiting, waiter{c: c, host: host, since: time.Now()})
		select {
		case m.kick <- struct{}{}:
		default:
		}
		return queued
	}
	m.reserve(host, c)
	return ""
}

// displaceWaiter makes room in a full line for a newcomer from host: the
// waiter whose address has the most handshakes in progress goes, if that is
// more than host has. An address that already holds slots cannot keep one
// that holds none out of the line. Called with m.mu held.
func (m *Mesh) displaceWaiter(host string) bool {
	worst := -1
	for i, w := range m.waiting {
		if worst < 0 || m.shaking[w.host] > m.shaking[m.waiting[worst].host] {
			worst = i
		}
	}
	if worst < 0 || m.shaking[m.waiting[worst].host] <= m.shaking[host] {
		return false
	}
	m.waiting[worst].c.Close()
	m.waiting = slices.Delete(m.waiting, worst, worst+1)
	return true
}

// reserve takes a handshake slot for c. Called with m.mu held.
func (m *Mesh) reserve(host string, c net.Conn) {
	m.shaking[host]++
	m.shakes++
	m.inShake[c] = time.Now()
}

// handshakeGrace is how long a handshake keeps its slot whatever happens;
// after it, a newcomer may take the slot when all are busy.
const handshakeGrace = 2 * time.Second

// yieldOldestHandshake closes the oldest inbound handshake in progress if
// it began over handshakeGrace ago, and reports whether it did (its slot is
// counted free once the handshake returns, moments later). Called with m.mu
// held.
func (m *Mesh) yieldOldestHandshake() bool {
	var oldest net.Conn
	var since time.Time
	for c, t := range m.inShake {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	if oldest == nil || time.Since(since) < handshakeGrace {
		return false
	}
	delete(m.inShake, oldest)
	oldest.Close()
	if now := time.Now(); now.Sub(m.shedLog) > time.Minute {
		m.shedLog = now
		m.log.Warn("shedding load: a slow handshake yields its slot to a newcomer", "addr", oldest.RemoteAddr().String())
	}
	return true
}

func (m *Mesh) handshook(host string, c net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shaking[host]--; m.shaking[host] <= 0 {
		delete(m.shaking, host)
	}
	m.shakes--
	delete(m.inShake, c)
	select { // a slot is free: the first in line may take it
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Mesh) linksFrom(host string) int {
	n := 0
	for p := range m.peers {
		if hostOf(p.info.Addr) == host {
			n++
		}
	}
	return n
}

// IdleYield is how long a link must have carried no envelope, either way,
// before it gives its slot to a newcomer when every slot is taken.
const IdleYield = 2 * time.Minute

// idlest is the link that has carried nothing for longest, if any has
// been idle for IdleYield; with m.mu held.
func (m *Mesh) idlest() *peer {
	var best *peer
	var bestAt time.Time
	now := time.Now()
	for p := range m.peers {
		at := p.lastUseful()
		if now.Sub(at) >= IdleYield && (best == nil || at.Before(bestAt)) {
			best, bestAt = p, at
		}
	}
	return best
}

// shed logs, at most every 10 s, that the node turned a connection away.
func (m *Mesh) shed(host, why string) {
	m.mu.Lock()
	now := time.Now()
	log := now.Sub(m.shedLog) >= 10*time.Second
	if log {
		m.shedLog = now
	}
	m.mu.Unlock()
	if log {
		m.log.Warn("shedding load: connection refused", "from", host, "why", why)
	}
}

func hostOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().WithZone("").String()
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (m *Mesh) penalised(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.penalties[host]
	return ok && time.Now().Before(p.until)
}

// penalise refuses a host that broke the protocol for a while, longer on
// each repeat.
func (m *Mesh) penalise(host string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.penalties[host]
	p.strike = min(p.strike+1, 5)
	p.until = time.Now().Add(m.cfg.Penalty << (p.strike - 1))
	m.penalties[host] = p
}

// forgetPenalties drops penalties that ran out, so the table stays small.
func (m *Mesh) forgetPenalties() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for host, p := range m.penalties {
		if now.After(p.until.Add(m.cfg.Penalty << 4)) { // past the longest penalty: a fresh start
			delete(m.penalties, host)
		}
	}
}

// keepDialling keeps a link to a static peer up, redialling with jittered
// exponential backoff; a link that lasted resets the backoff.
func (m *Mesh) keepDialling(ctx context.Context, addr string) {
	backoff := m.cfg.BackoffMin
	for ctx.Err() == nil {
		began := time.Now()
		err := m.dial(ctx, addr, true)
		var dup *alreadyLinked
		if errors.As(err, &dup) { // they dialled us first: redial only once that link ends
			select {
			case <-ctx.Done():
				return
			case <-dup.existing.done:
			}
			backoff = m.cfg.BackoffMin
			continue
		}
		if err != nil {
			m.log.Debug("dial failed", "addr", addr, "err", err)
		}
		if time.Now().Sub(began) > 2*m.cfg.BackoffMax {
			backoff = m.cfg.BackoffMin
		}
		wait := backoff/2 + m.jitter(backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, m.cfg.BackoffMax)
	}
}

// jitter is uniform in [0, d) (near enough: d is far below 2^64).
func (m *Mesh) jitter(d time.Duration) time.Duration {
	var b [8]byte
	if d <= 0 {
		return 0
	}
	if _, err := io.ReadFull(m.cfg.Rand, b[:]); err != nil {
		return d / 2
	}
	return time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(d))
}

// dial links to addr and runs the link until it ends. It does nothing if
// the address is already being dialled or linked from here.
func (m *Mesh) dial(ctx context.Context, addr string, static bool) error {
	m.mu.Lock()
	if m.busy[addr] {
		m.mu.Unlock()
		return nil
	}
	m.busy[addr] = true
	m.mu.Unlock()
	defer func() { m.mu.Lock(); delete(m.busy, addr); m.mu.Unlock() }()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := m.cfg.Transport.Dial(dctx, addr)
	cancel()
	if err != nil {
		return err
	}
	return m.run(ctx, c, true, addr, static, nil)
}

// startDiscovery runs the discovery service under a child of m.discCtx,
// with m.discMu held.
func (m *Mesh) startDiscovery() {
	ctx, cancel := context.WithCancel(m.discCtx)
	done := make(chan struct{})
	m.discCancel, m.discDone = cancel, done
	go func() {
		defer close(done)
		m.discover(ctx)
	}()
}

// SetStealth turns stealth on (nothing sent unasked on the LAN: no beacons,
// no multicast joins; see discovery.Config.Stealth) or off, at once: the
// discovery service stops and starts again with the new choice. Without
// discovery it only changes what Serve will start with.
func (m *Mesh) SetStealth(on bool) {
	m.mu.Lock()
	changed := m.cfg.Stealth != on
	m.cfg.Stealth = on
	m.mu.Unlock()
	if !changed {
		return
	}
	m.discMu.Lock()
	defer m.discMu.Unlock()
	if m.discCtx == nil {
		return
	}
	m.discCancel()
	<-m.discDone
	m.log.Info("discovery restarted", "stealth", on)
	m.startDiscovery()
}

func (m *Mesh) stealth() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Stealth
}

func (m *Mesh) discover(ctx context.Context) {
	stealth := m.stealth() // a change restarts discovery (SetStealth)
	dc := m.cfg.DiscoveryConfig
	dc.Port = portOf(m.Addrs())
	dc.Value = func() [discovery.ValueSize]byte { m.mu.Lock(); defer m.mu.Unlock(); return m.value }
	dc.Stealth = stealth
	dc.ListenOnly = len(m.Addrs()) == 0 // nothing to advertise when not listening
	dc.Rand = m.cfg.Rand
	dc.Log = m.log
	dc.RotateEvery = m.cfg.KeyRotation
	dc.Rotate = func() {
		if err := m.rotate(); err != nil {
			m.log.Warn("link key rotation failed", "err", err)
		}
	}
	m.discoveryRotates.Store(true)
	defer m.discoveryRotates.Store(false)
	interval := dc.Interval
	if interval <= 0 {
		interval = discovery.DefaultInterval
	}
	dials := newTokenBucket(m.cfg.DialRate, time.Now())
	heard := &heardValues{m: map[[discovery.ValueSize]byte]*heardValue{}, alias: map[string][]string{}}
	d := discovery.New(dc)
	err := d.Serve(ctx, func(s discovery.Sighting) {
		m.mu.Lock()
		own := m.value
		m.mu.Unlock()
		now := time.Now()
		first, target := heard.note(s, now)
		// The smaller value dials. A node that does not listen is heard by
		// nobody, so it dials whatever it hears; and a neighbour that
		// should have dialled but has not for three intervals (our beacons
		// may not reach it) is dialled anyway — unless a link was dialled
		// to us since we first heard it, which is taken to be from it.
		waited := now.Sub(first) > 3*interval && !m.acceptedSince(first.Add(-interval))
		if !dc.ListenOnly && !discovery.Dials(own, s.Value) && !waited {
			return
		}
		if !dialable(target) || m.penalised(hostOf(target.String())) || m.full() || m.linkedTo(target, heard.aliases(target)) ||
			!m.mayTry(s.Value, now, 3*interval) {
			return
		}
		if dials.take(1, now) > 0 { // beacons may be forged: dial at a bounded rate
			return
		}
		// Not at once: a SYN a millisecond after every beacon would show
		// a listener who hears whom (SPEC §9.6).
		delay := m.jitter(interval)
		m.links.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			if target := heard.target(s); dialable(target) && !m.linkedTo(target, heard.aliases(target)) {
				m.dial(ctx, target.String(), false)
			}
		})
	})
	if err != nil {
		m.log.Warn("discovery stopped", "err", err)
	}
}

// heardValues remembers, per beacon value, when it was first heard and
// from which addresses. A dual-stack neighbour beacons over both families,
// from two addresses: one value heard from both says they are one node's
// (aliases), so a link to either counts for both, also after the neighbour
// rotates to a new value. Links go to the IPv6 link-local address whenever
// the value was heard there.
type heardValues struct {
	mu    sync.Mutex
	m     map[[discovery.ValueSize]byte]*heardValue
	alias map[string][]string // host → other hosts of the same node
}

type heardValue struct {
	first time.Time
	six   netip.AddrPort
	hosts []string
}

// aliases returns the hosts known to be the same node as ap's.
func (h *heardValues) aliases(ap netip.AddrPort) []string {
	host := ap.Addr().WithZone("").String()
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{host}, h.alias[host]...)
}

// note records a sighting and returns when its value was first heard and
// the address to dial for it.
func (h *heardValues) note(s discovery.Sighting, now time.Time) (time.Time, netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.m[s.Value]
	if v == nil {
		if len(h.m) > 4096 {
			clear(h.m)
			clear(h.alias)
		}
		v = &heardValue{first: now}
		h.m[s.Value] = v
	}
	if host := s.Addr.Addr().WithZone("").String(); !slices.Contains(v.hosts, host) && len(v.hosts) < 8 {
		for _, other := range v.hosts {
			h.alias[host] = append(h.alias[host], other)
			h.alias[other] = append(h.alias[other], host)
		}
		v.hosts = append(v.hosts, host)
	}
	if s.Addr.Addr().Is6() && s.Addr.Addr().IsLinkLocalUnicast() {
		v.six = s.Addr
	}
	if v.six.IsValid() {
		return v.first, v.six
	}
	return v.first, s.Addr
}

// target is the address to dial for s's value now.
func (h *heardValues) target(s discovery.Sighting) netip.AddrPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v := h.m[s.Value]; v != nil && v.six.IsValid() {
		return v.six
	}
	return s.Addr
}

// dialable says whether a beacon could honestly announce this address: a
// unicast address of a neighbour on the link (the beacon's own source) and
// a port of the unprivileged range Grapevine listens on. Anything else is
// a forged beacon trying to aim the node at some host's service.
func dialable(ap netip.AddrPort) bool {
	a := ap.Addr()
	return ap.Port() >= 1024 && a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		(a.IsLinkLocalUnicast() || a.IsPrivate() || a.Is4() && a.IsGlobalUnicast())
}

// acceptedSince reports whether a link that a neighbour dialled is up and
// began after t.
func (m *Mesh) acceptedSince(t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.peers {
		if p.info.Direction == "in" && !p.info.Since.Before(t) {
			return true
		}
	}
	return false
}

// mayTry records a dial caused by a beacon value, unless one was made for
// it within the last `within`: a node that has just tried a neighbour does
// not answer its next beacons (over either family) too.
func (m *Mesh) mayTry(value [discovery.ValueSize]byte, now time.Time, within time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tried[value]; ok && now.Sub(t) < within {
		return false
	}
	if len(m.tried) > 4096 {
		clear(m.tried)
	}
	m.tried[value] = now
	return true
}

// linkedTo says whether a link to ap is up or being made, or one to a host
// known to be the same node (hosts: ap's and its aliases).
func (m *Mesh) linkedTo(ap netip.AddrPort, hosts []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[ap.String()] {
		return true
	}
	for p := range m.peers {
		if slices.Contains(hosts, hostOf(p.info.Addr)) {
			return true
		}
	}
	return false
}

func portOf(addrs []string) uint16 {
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			return ap.Port()
		}
	}
	return DefaultPort
}

// register adds a linked peer. Two links to the same neighbour (both
// dialled at once) are resolved the same way on both sides: the link
// dialled by the side with the smaller link key stays.
func (m *Mesh) register(p *peer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if bytes.Equal(p.remoteKey, m.key.Public) || bytes.Equal(p.remoteKey, p.localKey) {
		return errors.New("linked to myself")
	}
	if m.linksFrom(hostOf(p.info.Addr)) >= m.cfg.MaxPerHost {
		return errors.New("this address holds its share of links")
	}
	if len(m.peers) >= m.cfg.MaxPeers {
		q := m.idlest()
		if q == nil {
			return errors.New("too many peers")
		}
		m.log.Info("link yields its slot: it carried nothing for a while", "addr", q.info.Addr)
		q.close()
		delete(m.peers, q)
	}
	for q := range m.peers {
		if !bytes.Equal(q.remoteKey, p.remoteKey) {
			continue
		}
		if p.dialer() < q.dialer() {
			q.close()
			continue
		}
		return &alreadyLinked{q}
	}
	m.peers[p] = struct{}{}
	return nil
}

// alreadyLinked says a new link duplicated one that stays.
type alreadyLinked struct{ existing *peer }

func (e *alreadyLinked) Error() string { return "already linked to this neighbour" }

func (m *Mesh) unregister(p *peer) {
	m.mu.Lock()
	delete(m.peers, p)
	m.mu.Unlock()
}

// Peers lists the neighbours linked now.
func (m *Mesh) Peers() []PeerInfo {
	var out []PeerInfo
	for _, p := range m.peerList() {
		out = append(out, p.snapshot())
	}
	sortPeers(out)
	return out
}

// Status summarises the node.
func (m *Mesh) Status() Status {
	st, err := m.node.Stats()
	if err != nil {
		m.log.Warn("failed to read node stats", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{Stats: st, Peers: len(m.peers), Listen: append([]string(nil), m.listen...),
		Discovery: m.cfg.Discovery && !m.cfg.Stealth && len(m.listen) > 0, Relay: st.RelayQuota > 0, Started: m.started}
}
