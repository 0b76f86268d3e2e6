package testkit

import (
	"net"
	"testing"
)

// Loopback returns the host's loopback interface, for tests that run LAN
// discovery on it, or skips the test.
func Loopback(t testing.TB) net.Interface {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 && ifi.Flags&net.FlagUp != 0 {
			return ifi
		}
	}
	t.Skip("no loopback interface")
	panic("unreachable")
}

// FreeUDPPort returns a UDP port that was free a moment ago, so that tests
// on the host's loopback never use the real beacon port.
func FreeUDPPort(t testing.TB) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}
