package mesh

import (
	"context"
	"net"
)

// Transport is a way to reach neighbours with a reliable byte stream: TCP
// today (an in-memory network in tests: memnet_test.go), later others.
type Transport interface {
	Name() string
	Listen(addr string) (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

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
