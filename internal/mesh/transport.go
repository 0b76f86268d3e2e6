package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Transport is a way to reach neighbours with a reliable byte stream: TCP
// today, an in-memory network in tests and in the simulator, later others.
type Transport interface {
	Name() string
	Listen(addr string) (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// Clock is the node's time source. The real one is the time package; tests
// run it on virtual time (testing/synctest), the simulator on its own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// TCP is the transport over TCP/IP.
type TCP struct{}

func (TCP) Name() string { return "tcp" }

func (TCP) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func (TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c, nil
}

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

// ErrRefused is what dialling an address with no listener gives.
var ErrRefused = errors.New("connection refused")

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
		return nil, fmt.Errorf("dial mem %s: %w", addr, ErrRefused)
	}
	a, b := bufferedPipe(memAddr(t.self), memAddr(addr))
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, fmt.Errorf("dial mem %s: %w", addr, ErrRefused)
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
