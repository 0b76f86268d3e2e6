//go:build !unix

package discovery

import "syscall"

// reuseAddr does nothing here: only one node per host hears the beacons.
func reuseAddr(network, address string, c syscall.RawConn) error { return nil }
