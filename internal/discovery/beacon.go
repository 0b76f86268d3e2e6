// Package discovery finds Grapevine neighbours on the local network by UDP
// multicast beacons, and says nothing stable about the node while doing so.
//
// A beacon carries only the TCP port to dial and a 16-byte random value that
// the caller rotates together with its link key (see SPEC.md, "LAN
// discovery"): no name, no key, no counter, no timestamp. A receiver uses the
// value to recognise its own beacons, to de-duplicate one neighbour's beacons
// within a rotation, and to decide which side dials (Dials). Beacons are
// unauthenticated hints; the link handshake authenticates whoever answers.
//
// A Discoverer sends a beacon on every up, multicast-capable interface every
// Interval (±50 % jitter) to 239.255.73.42 and ff02::7342, port 7343, and
// reports every beacon it hears from someone else. It follows interfaces as
// they come and go, and tells its caller when to rotate the value: at every
// whole RotateEvery of the wall clock and whenever an address changes, each
// time followed by a random silence. In Stealth mode it sends nothing at all,
// not even a multicast join, and hears nothing.
package discovery

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Beacon wire layout, version 1 (fixed size, integers big-endian):
//
//	offset size field
//	     0    2 magic "GV" (0x47 0x56)
//	     2    1 version (1)
//	     3    2 TCP port to dial (1..65535)
//	     5   16 rotating random value
//	    21      end: a datagram of any other length is not a beacon
const (
	Version    = 1
	BeaconSize = 21
	ValueSize  = 16
)

var magic = [2]byte{'G', 'V'}

// Errors returned by Decode. A receiver drops such datagrams silently.
var (
	ErrSize    = errors.New("discovery: datagram is not 21 bytes")
	ErrMagic   = errors.New("discovery: not a Grapevine beacon")
	ErrVersion = errors.New("discovery: unsupported beacon version")
	ErrPort    = errors.New("discovery: beacon advertises port 0")
)

// Beacon is the whole content of a version 1 beacon.
type Beacon struct {
	// Port is the TCP port the sender accepts links on.
	Port uint16
	// Value is the sender's current rotating random value.
	Value [ValueSize]byte
}

// Marshal returns the 21-byte datagram for b.
func (b Beacon) Marshal() []byte {
	p := make([]byte, BeaconSize)
	copy(p[0:2], magic[:])
	p[2] = Version
	binary.BigEndian.PutUint16(p[3:5], b.Port)
	copy(p[5:21], b.Value[:])
	return p
}

// Decode parses a datagram. Anything but a well-formed version 1 beacon with a
// non-zero port is an error; Marshal(Decode(p)) == p whenever Decode succeeds.
func Decode(p []byte) (Beacon, error) {
	if len(p) != BeaconSize {
		return Beacon{}, ErrSize
	}
	if !bytes.Equal(p[0:2], magic[:]) {
		return Beacon{}, ErrMagic
	}
	if p[2] != Version {
		return Beacon{}, ErrVersion
	}
	var b Beacon
	b.Port = binary.BigEndian.Uint16(p[3:5])
	if b.Port == 0 {
		return Beacon{}, ErrPort
	}
	copy(b.Value[:], p[5:21])
	return b, nil
}

// Dials reports whether the node whose current value is own should dial the
// neighbour that beaconed peer: the side with the numerically smaller value
// (compared as 16-byte big-endian integers) dials, the other waits. Equal
// values — one's own beacon — dial nobody. The rule is for two beaconing
// nodes: a ListenOnly node is never heard, so it dials whomever it hears.
func Dials(own, peer [ValueSize]byte) bool {
	return bytes.Compare(own[:], peer[:]) < 0
}
