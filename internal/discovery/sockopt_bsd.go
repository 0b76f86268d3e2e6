//go:build darwin || ios || freebsd || netbsd || openbsd || dragonfly

package discovery

import "syscall"

// reuseAddr sets SO_REUSEADDR and SO_REUSEPORT: BSD kernels need both for
// several sockets to bind the beacon port and all receive every multicast
// datagram.
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
