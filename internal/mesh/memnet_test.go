package mesh

// An in-memory network for the tests: listeners by name, and connections
// that are buffered pipes with deadlines.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// MemNetwork is an in-memory network: listeners by name, connections are
// buffered in-memory pipes, so it runs on virtual time under testing/synctest.
type MemNetwork struct {
	mu        sync.Mutex
	listeners map[string]*memListener
}

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork { return &MemNetwork{listeners: map[string]*memListener{}} }

// Transport returns the transport of the node called self on this network;
// its connections show self as their local address.
func (mn *MemNetwork) Transport(self string) Transport { return &memTransport{mn, self} }

type memTransport struct {
	mn   *MemNetwork
	self string
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// errRefused is what dialling an address with no listener gives.
var errRefused = errors.New("connection refused")

func (t *memTransport) Name() string { return "mem" }

func (t *memTransport) Listen(addr string) (net.Listener, error) {
	t.mn.mu.Lock()
	defer t.mn.mu.Unlock()
	if addr == "" {
		addr = t.self
	}
	if _, ok := t.mn.listeners[addr]; ok {
		return nil, fmt.Errorf("listen mem %s: address in use", addr)
	}
	l := &memListener{mn: t.mn, addr: memAddr(addr), conns: make(chan net.Conn), done: make(chan struct{})}
	t.mn.listeners[addr] = l
	return l, nil
}

func (t *memTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	t.mn.mu.Lock()
	l := t.mn.listeners[addr]
	t.mn.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("dial mem %s: %w", addr, errRefused)
	}
	a, b := bufferedPipe(memAddr(t.self), memAddr(addr))
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, fmt.Errorf("dial mem %s: %w", addr, errRefused)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memListener struct {
	mn    *MemNetwork
	addr  memAddr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.mn.mu.Lock()
		delete(l.mn.listeners, string(l.addr))
		l.mn.mu.Unlock()
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// bufferedPipe returns two connected in-memory conns. Unlike net.Pipe, a
// write returns as soon as its bytes are queued (up to pipeChunks writes in
// flight each way), as with TCP: an unbuffered pipe makes every write wait
// for the peer's read, which hides bugs where a side forgets to wake its
// writer. Deadlines use the time package, so they run on synctest's clock.
func bufferedPipe(a, b net.Addr) (net.Conn, net.Conn) {
	ab, ba := make(chan []byte, pipeChunks), make(chan []byte, pipeChunks)
	done := make(chan struct{})
	once := new(sync.Once)
	x := &pipeConn{rd: ba, wr: ab, done: done, once: once, local: a, remote: b}
	y := &pipeConn{rd: ab, wr: ba, done: done, once: once, local: b, remote: a}
	x.rdl.init()
	x.wdl.init()
	y.rdl.init()
	y.wdl.init()
	return x, y
}

const pipeChunks = 256

type pipeConn struct {
	rd   <-chan []byte
	wr   chan<- []byte
	rbuf []byte
	done chan struct{} // closed when either end closes
	once *sync.Once

	rdl, wdl      deadline
	local, remote net.Addr
}

// deadline is a settable deadline that wakes whoever waits on it when it
// changes.
type deadline struct {
	mu      sync.Mutex
	t       time.Time
	changed chan struct{}
}

func (d *deadline) init() { d.changed = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	d.t = t
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// wait returns a channel that fires at the deadline (nil: none), one that
// closes if the deadline changes, and whether it has already passed.
func (d *deadline) wait() (<-chan time.Time, <-chan struct{}, func(), bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.t.IsZero() {
		return nil, d.changed, func() {}, false
	}
	left := time.Until(d.t)
	if left <= 0 {
		return nil, d.changed, func() {}, true
	}
	t := time.NewTimer(left)
	return t.C, d.changed, func() { t.Stop() }, false
}

func (c *pipeConn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		timer, changed, stop, passed := c.rdl.wait()
		if passed {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case b := <-c.rd:
			c.rbuf = b
		case <-c.done:
			stop()
			select { // what was written before the close is still read
			case b := <-c.rd:
				c.rbuf = b
			default:
				return 0, io.EOF
			}
		case <-timer:
			return 0, os.ErrDeadlineExceeded
		case <-changed:
		}
		stop()
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *pipeConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b := append([]byte(nil), p...)
	for {
		timer, changed, stop, passed := c.wdl.wait()
		if passed {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case <-c.done:
			stop()
			return 0, io.ErrClosedPipe
		default:
		}
		select {
		case c.wr <- b:
			stop()
			return len(p), nil
		case <-c.done:
			stop()
			return 0, io.ErrClosedPipe
		case <-timer:
			return 0, os.ErrDeadlineExceeded
		case <-changed:
		}
		stop()
	}
}

func (c *pipeConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }
