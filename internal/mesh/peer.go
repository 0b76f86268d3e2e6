package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/session"
)

// peer is one live link: a reader goroutine feeds frames to the session
// loop, a writer goroutine drains control frames first, then queued
// envelopes, so neither side can deadlock the other by not reading.
type peer struct {
	m         *Mesh
	conn      *link.Conn
	sess      *session.Session
	info      PeerInfo
	localKey  []byte
	remoteKey []byte
	initiator bool

	mu             sync.Mutex
	ctrl           []session.Frame // control frames to send before any envelope
	received, junk int             // envelopes ingested from this link, and how many were junk
	useful         time.Time       // when an envelope last went either way (or the link came up)
	wake           chan struct{}
	done           chan struct{}
	once           sync.Once
}

// lastUseful is when an envelope last went over the link, either way.
func (p *peer) lastUseful() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.useful
}

func (p *peer) wasUseful() {
	p.mu.Lock()
	p.useful = time.Now()
	p.mu.Unlock()
}

// maxCtrl bounds one link's state (SPEC §12.4): a peer that does not read
// what it is sent is cut once this many control frames wait for it (what
// it sends us waits for the store within session.BacklogBytes).
const maxCtrl = 1024

// dialer returns the link key of the side that dialled this link.
func (p *peer) dialer() string {
	if p.initiator {
		return string(p.localKey)
	}
	return string(p.remoteKey)
}

func (p *peer) close() {
	p.once.Do(func() {
		close(p.done)
		p.conn.Close()
	})
}

// run handshakes over c and serves the link until it ends. shaken, if not
// nil, is called once the handshake is over, whatever its outcome.
func (m *Mesh) run(ctx context.Context, c net.Conn, initiator bool, addr string, static bool, shaken func()) error {
	key := m.keyFor(c.LocalAddr())
	cfg := link.Config{Static: key, Rand: m.cfg.Rand, MaxPayload: func(t byte) int { return session.MaxPayload(session.FrameType(t)) }}
	var lc *link.Conn
	var err error
	if initiator {
		lc, err = link.Client(ctx, c, cfg)
	} else {
		lc, err = link.Server(ctx, c, cfg)
	}
	if shaken != nil {
		shaken()
	}
	remote := c.RemoteAddr().String()
	if addr == "" {
		addr = remote
	}
	if err != nil {
		c.Close()
		if errors.Is(err, link.ErrProtocol) {
			m.penalise(hostOf(remote)) // garbage where a handshake belonged
		}
		return fmt.Errorf("failed to link with %s: %w", addr, err)
	}
	dir := "in"
	if initiator {
		dir = "out"
	}
	p := &peer{m: m, conn: lc, initiator: initiator, localKey: lc.LocalStatic(), remoteKey: lc.RemoteStatic(),
		sess: session.New(m.node, session.Config{Initiator: initiator, Source: hostOf(remote), Binding: lc.ChannelBinding()}),
		info: PeerInfo{Addr: addr, Transport: m.cfg.Transport.Name(), Direction: dir, Static: static, Since: time.Now()},
		wake: make(chan struct{}, 1), done: make(chan struct{}), useful: time.Now()}
	if err := m.register(p); err != nil {
		lc.Close()
		return err
	}
	defer m.unregister(p)
	m.log.Info("linked", "addr", addr, "direction", dir)
	err = p.serve(ctx)
	// What the link carried, for whoever wonders what a flapping link cost
	// (and for the tests that count what was sent again after one).
	st := p.sess.Stats()
	if se := (*storeError)(nil); errors.As(err, &se) {
		// Not the neighbour's doing: this node cannot write (a full disk,
		// a damaged store). Its owner must hear of it.
		m.log.Error("link closed: failed to store what the neighbour sent", "addr", addr, "err", err)
	} else {
		m.log.Info("link closed", "addr", addr, "envelopes_sent", st.EnvelopesSent, "envelopes_received", st.EnvelopesReceived, "err", err)
	}
	if errors.Is(err, session.ErrProtocol) || errors.Is(err, link.ErrProtocol) {
		m.penalise(hostOf(remote))
	}
	return err
}

func (p *peer) serve(ctx context.Context) error {
	in := make(chan session.Frame, 64)
	errc := make(chan error, 3)
	flushc := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for _, f := range []func() error{func() error { return p.read(in) }, p.write, func() error { return p.flusher(flushc) }} {
		wg.Go(func() { errc <- f() })
	}
	defer func() {
		p.close()
		wg.Wait()
		p.flush() // keep what arrived; nothing was acknowledged anyway
		// Spray copies the neighbour never acknowledged come back here.
		if err := p.sess.Close(); err != nil {
			p.m.log.Error("failed to take back spray copies", "addr", p.info.Addr, "err", err)
		}
	}()
	start, err := p.sess.Start()
	if err != nil {
		return err
	}
	p.send(start)
	resync := time.After(p.m.cfg.ResyncInterval)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return errors.New("link closed")
		case err := <-errc:
			return err
		case <-resync:
			open, err := p.sess.Open()
			if err != nil {
				return err
			}
			p.send(open)
			resync = time.After(p.m.cfg.ResyncInterval)
		case f := <-in:
			out, next, err := p.sess.Receive(f)
			if err != nil {
				return err
			}
			p.send(out)
			if next.Pull { // a Want queues envelopes without a reply frame
				p.poke()
			}
			if next.Release > 0 { // a hold began: it ends by then at the latest
				time.AfterFunc(next.Release, func() { p.sess.Release(); p.poke() })
			}
			if next.StoreNow { // the flusher is behind: wait for it
				if err := p.flush(); err != nil {
					return err
				}
			}
			if next.Store {
				select {
				case flushc <- struct{}{}:
				default:
				}
			}
		}
	}
}

// flusher ingests received envelopes in the background: while one durable
// commit runs, the next envelopes pile up and go into the following one
// (group commit), so a fast link is not held to one fsync per envelope.
func (p *peer) flusher(signal <-chan struct{}) error {
	for {
		select {
		case <-p.done:
			return nil
		case <-signal:
		}
		if err := p.flush(); err != nil {
			return err
		}
	}
}

func (p *peer) flush() error {
	if p.sess.Pending() == 0 {
		return nil
	}
	rep, err := p.sess.Flush()
	if err != nil {
		return &storeError{fmt.Errorf("failed to store envelopes from %s: %w", p.info.Addr, err)}
	}
	if p.sess.Queued() > 0 {
		p.poke() // acknowledgements of spray copies wait to leave
	}
	log := p.m.log
	if rep.Messages+rep.Requests+rep.Delivered > 0 { // what the person at this node wants to know
		log.Info("mail arrived", "messages", rep.Messages, "contact_requests", rep.Requests, "delivered", rep.Delivered)
	}
	log.Debug("envelopes received", "addr", p.info.Addr, "new", rep.New, "duplicate", rep.Duplicate,
		"expired", rep.Expired, "invalid", rep.Invalid, "evicted", rep.Evicted, "unstamped", rep.Unstamped, "limited", rep.Limited)
	// Junk — expired, or bearing one of my tags yet not authenticating, or
	// a public post without a valid stamp (SPEC §15.16) — is tolerated in
	// small doses (clocks differ); a link that is mostly junk is cut.
	p.mu.Lock()
	p.received += rep.Received
	p.junk += rep.Expired + rep.Invalid + rep.Unstamped
	junk, received := p.junk, p.received
	p.mu.Unlock()
	if junk > junkLimit && junk > received/2 {
		return fmt.Errorf("%w: %d of %d envelopes were expired, invalid or unstamped", session.ErrProtocol, junk, received)
	}
	return nil
}

// junkLimit is how many expired or invalid envelopes a link may deliver
// before the share of junk is judged.
const junkLimit = 1000

// read moves frames from the link to the session loop, at most at the
// configured rate: beyond it, the link is simply read slower.
func (p *peer) read(in chan<- session.Frame) error {
	envs := newTokenBucket(p.m.cfg.RateEnvelopes, time.Now())
	volume := newTokenBucket(p.m.cfg.RateBytes, time.Now())
	// A reconciliation message can cost the node a scan of its snapshot;
	// an honest round needs a handful. Ten a second is plenty.
	negs := newTokenBucket(10, time.Now())
	// Every other frame (Ping, Offer, Hello, Done) costs little each,
	// but a peer could send them without end: a hundred a second is plenty.
	ctrl := newTokenBucket(100, time.Now())
	for {
		p.conn.SetReadDeadline(time.Now().Add(p.m.cfg.IdleTimeout))
		typ, payload, err := p.conn.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("link silent for %s", p.m.cfg.IdleTimeout)
			}
			return err // link.ErrProtocol for undecryptable, oversized or unknown frames
		}
		var wait time.Duration
		switch session.FrameType(typ) {
		case session.TypeEnvelope, session.TypeSpray:
			now := time.Now()
			wait = max(envs.take(1, now), volume.take(float64(len(payload)), now))
			p.wasUseful()
		case session.TypeHave, session.TypeWant:
			// Announcements and the Wants that answer them come at the
			// rate of envelopes, one token an entry: at a hundred frames a
			// second, a live push (Have, Want, Envelope) would wait up to
			// 10 ms for its Want.
			entry := envelope.IDSize
			if session.FrameType(typ) == session.TypeHave {
				entry++
			}
			wait = envs.take(float64(max(1, len(payload)/entry)), time.Now())
		case session.TypeNegOpen, session.TypeNeg:
			wait = negs.take(1, time.Now())
		default:
			wait = ctrl.take(1, time.Now())
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-p.done:
				return nil
			}
		}
		select {
		case in <- session.Frame{Type: session.FrameType(typ), Payload: bytes.Clone(payload)}:
		case <-p.done:
			return nil
		}
	}
}

// write sends control frames first, then queued envelopes, and a Ping when
// the link has been quiet for the keepalive interval.
func (p *peer) write() error {
	for {
		p.mu.Lock()
		ctrl := p.ctrl
		p.ctrl = nil
		p.mu.Unlock()
		// A peer that stops reading is cut after WriteTimeout, rather
		// than holding this goroutine and the frames queued for it.
		p.conn.SetWriteDeadline(time.Now().Add(p.m.cfg.WriteTimeout))
		for _, f := range ctrl {
			if err := p.conn.WriteFrame(byte(f.Type), f.Payload); err != nil {
				return err
			}
		}
		frames, ids, err := p.sess.Pull()
		if err != nil {
			return err
		}
		for _, f := range frames {
			if err := p.conn.WriteFrame(byte(f.Type), f.Payload); err != nil {
				return err
			}
		}
		if len(ids) > 0 {
			p.wasUseful()
		}
		if len(ctrl) > 0 || len(frames) > 0 {
			continue
		}
		select {
		case <-p.wake:
		case <-p.done:
			return nil
		case <-time.After(jittered(p.m.cfg.Keepalive)):
			p.send([]session.Frame{{Type: session.TypePing}})
		}
	}
}

// jittered returns a keepalive gap uniform in [2k/3, 4k/3): Pings at a
// fixed interval (15.000 s) would mark a Grapevine link to a listener who
// sees only packet times (SPEC §13.2).
func jittered(k time.Duration) time.Duration {
	return k*2/3 + rand.N(k*2/3)
}

func (p *peer) send(frames []session.Frame) {
	if len(frames) == 0 {
		return
	}
	p.mu.Lock()
	p.ctrl = append(p.ctrl, frames...)
	over := len(p.ctrl) > maxCtrl
	p.mu.Unlock()
	if over { // it asks (Pings) without reading the answers
		p.m.log.Warn("link cut: the neighbour does not read what it asks for", "addr", p.info.Addr)
		p.close()
		return
	}
	p.poke()
}

func (p *peer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) offer(ids []envelope.ID) {
	p.sess.Offer(ids)
	p.poke()
}

func (p *peer) snapshot() PeerInfo {
	info := p.info
	info.BytesSent, info.BytesReceived = p.conn.Stats()
	st := p.sess.Stats()
	info.EnvelopesSent, info.EnvelopesReceived, info.Synced = st.EnvelopesSent, st.EnvelopesReceived, st.Synced
	info.OffersSent = st.OffersSent
	info.Contact = st.Contact
	return info
}

func sortPeers(ps []PeerInfo) {
	slices.SortFunc(ps, func(a, b PeerInfo) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Addr, b.Addr)
	})
}

// tokenBucket limits one quantity per second, with a burst of one second's
// worth.
type tokenBucket struct {
	rate, tokens float64
	last         time.Time
}

func newTokenBucket(rate float64, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, tokens: rate, last: now}
}

// take spends n and returns how long to wait before going on (zero if the
// budget allowed it).
func (t *tokenBucket) take(n float64, now time.Time) time.Duration {
	t.tokens = min(t.rate, t.tokens+now.Sub(t.last).Seconds()*t.rate) - n
	t.last = now
	return time.Duration(max(-t.tokens/t.rate, 0) * float64(time.Second))
}

// storeError is a failure to write what a neighbour sent to the store.
type storeError struct{ error }

func (e *storeError) Unwrap() error { return e.error }
