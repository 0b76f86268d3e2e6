package mesh

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

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
