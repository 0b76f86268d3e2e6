package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// listenConfig binds with the address shared (SO_REUSEADDR, and
// SO_REUSEPORT where multicast needs it), so several nodes on one host can
// all hear the beacons.
var listenConfig = net.ListenConfig{Control: reuseAddr}

// listen4 opens the IPv4 beacon socket: wildcard address, TTL 1, our own
// datagrams looped back (other nodes on this host must hear us; we drop our
// own by value), and the arrival interface and destination reported.
func listen4(port uint16) (*ipv4.PacketConn, error) {
	c, err := listenConfig.ListenPacket(context.Background(), "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	p := ipv4.NewPacketConn(c)
	err = errors.Join(
		p.SetMulticastTTL(1),
		p.SetMulticastLoopback(true),
		p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true),
	)
	if err != nil {
		c.Close()
		return nil, err
	}
	return p, nil
}

// listen6 is listen4 for IPv6 (hop limit 1).
func listen6(port uint16) (*ipv6.PacketConn, error) {
	c, err := listenConfig.ListenPacket(context.Background(), "udp6", net.JoinHostPort("::", strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	p := ipv6.NewPacketConn(c)
	err = errors.Join(
		p.SetMulticastHopLimit(1),
		p.SetMulticastLoopback(true),
		p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true),
	)
	if err != nil {
		c.Close()
		return nil, err
	}
	return p, nil
}

// maxDatagram is the read buffer: longer datagrams are truncated to it, and
// dropped as not BeaconSize long.
const maxDatagram = 512

func (s *session) read4(found func(Sighting)) {
	buf := make([]byte, maxDatagram)
	for {
		n, cm, src, err := s.p4.ReadFrom(buf)
		if err != nil {
			if s.readFailed(err) {
				return
			}
			continue
		}
		var ifIndex int
		var dst net.IP
		if cm != nil {
			ifIndex, dst = cm.IfIndex, cm.Dst
		}
		s.receive(buf[:n], src, ifIndex, dst, false, found)
	}
}

func (s *session) read6(found func(Sighting)) {
	buf := make([]byte, maxDatagram)
	for {
		n, cm, src, err := s.p6.ReadFrom(buf)
		if err != nil {
			if s.readFailed(err) {
				return
			}
			continue
		}
		var ifIndex int
		var dst net.IP
		if cm != nil {
			ifIndex, dst = cm.IfIndex, cm.Dst
		}
		s.receive(buf[:n], src, ifIndex, dst, true, found)
	}
}

// readFailed logs a read error and reports whether the reader should stop
// (the socket was closed). Other errors pause the reader briefly so that a
// persistent one cannot spin.
func (s *session) readFailed(err error) (stop bool) {
	if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
		return true
	}
	s.d.cfg.Log.Debug("discovery: read", "err", err)
	select {
	case <-s.ctx.Done():
		return true
	case <-time.After(50 * time.Millisecond):
		return false
	}
}

// receive turns one datagram into a Sighting, or drops it: not sent to our
// group, arrived on an interface we did not join, not a beacon, or our own.
func (s *session) receive(p []byte, src net.Addr, ifIndex int, dst net.IP, v6 bool, found func(Sighting)) {
	cfg := &s.d.cfg
	group := cfg.Group4
	if v6 {
		group = cfg.Group6
	}
	if dst != nil {
		if a, ok := netip.AddrFromSlice(dst); !ok || a.Unmap() != group {
			return // another group or unicast to our port
		}
	}
	name := ""
	if ifIndex != 0 {
		li, ok := (*s.d.links.Load())[ifIndex]
		if !ok || (v6 && !li.v6) || (!v6 && !li.v4) {
			return // an interface we do not use (another socket joined there)
		}
		name = li.name
	}
	ua, ok := src.(*net.UDPAddr)
	if !ok {
		return
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		return
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() {
		return
	}
	b, err := Decode(p)
	if err != nil {
		cfg.Log.Debug("discovery: not a beacon", "from", ua, "len", len(p), "err", err)
		return
	}
	if s.d.isOwn(b.Value) {
		cfg.Log.Debug("discovery: own beacon ignored", "iface", name, "from", ua)
		return
	}
	if ip.Is6() && ip.IsLinkLocalUnicast() {
		zone := name
		if zone == "" {
			zone = ua.Zone
		}
		ip = ip.WithZone(zone)
	}
	sg := Sighting{Addr: netip.AddrPortFrom(ip, b.Port), Value: b.Value, Interface: name}
	s.d.foundMu.Lock()
	defer s.d.foundMu.Unlock()
	found(sg)
}
