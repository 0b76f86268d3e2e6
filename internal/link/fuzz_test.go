package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// scriptConn is a net.Conn that reads a fixed script and discards writes.
type scriptConn struct{ r io.Reader }

func (c scriptConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c scriptConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c scriptConn) Close() error                       { return nil }
func (c scriptConn) LocalAddr() net.Addr                { return scriptAddr{} }
func (c scriptConn) RemoteAddr() net.Addr               { return scriptAddr{} }
func (c scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c scriptConn) SetWriteDeadline(t time.Time) error { return nil }

type scriptAddr struct{}

func (scriptAddr) Network() string { return "script" }
func (scriptAddr) String() string  { return "script" }

// fuzzLimits exercises per-type limits and a refused type.
func fuzzLimits(typ byte) int {
	switch typ {
	case 7:
		return 16
	case 0xee:
		return -1
	}
	return MaxPayload
}

// fuzzKey is the key of the initiator → responder direction of the first
// vector's link.
func fuzzKey(f *testing.F) [32]byte {
	v := seedVectors()[0]
	a, b := net.Pipe()
	client, _ := link(f, a, b,
		Config{Static: testKeyFrom(f, unhex(f, v.InitiatorStaticPriv)), Rand: bytes.NewReader(unhex(f, v.InitiatorEphemeralPriv+v.InitiatorPadRand))},
		Config{Static: testKeyFrom(f, unhex(f, v.ResponderStaticPriv)), Rand: bytes.NewReader(unhex(f, v.ResponderEphemeralPriv+v.ResponderPadRand))})
	return client.send.UnsafeKey()
}

// chunk appends one framed-mode fuzz chunk: kind (1) || length (2) || bytes.
func chunk(dst []byte, kind byte, b []byte) []byte {
	dst = append(dst, kind)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// FuzzReadFrame feeds arbitrary bytes to ReadFrame as the peer's stream after
// a valid handshake. With framed set, the input is a list of chunks, kind (1)
// || length (2) || bytes: an odd kind seals the bytes (type || payload) as
// the real peer would and frames them, an even kind appends them raw, so the
// fuzzer can mix genuine frames with damage.
//
// Properties: no panic; every frame returned is the next genuinely sealed
// one, intact, within its limit; the first error is returned again; a stream
// of genuine, allowed frames reads to io.EOF.
func FuzzReadFrame(f *testing.F) {
	key := fuzzKey(f)
	f.Add([]byte{}, false)
	f.Add([]byte{0, 0}, false)
	f.Add([]byte{0, 17, 1, 2, 3}, false)
	f.Add(append([]byte{0xff, 0xff}, make([]byte, 65535)...), false)
	var s []byte
	s = chunk(s, 1, []byte("\x01hello"))
	s = chunk(s, 1, []byte("\x07sixteen bytes!!!"))
	s = chunk(s, 1, []byte("\x02"))
	f.Add(s, true)
	f.Add(chunk(chunk(nil, 1, []byte("\x07seventeen bytes!!")), 1, []byte("\x01")), true)
	f.Add(chunk(chunk(nil, 1, []byte("\xee")), 1, []byte("\x01")), true)
	f.Add(chunk(chunk(chunk(nil, 1, []byte("\x01a")), 0, []byte{0, 17}), 1, []byte("\x01b")), true)
	f.Add(chunk(chunk(nil, 1, nil), 1, []byte("\x01")), true)

	f.Fuzz(func(t *testing.T, data []byte, framed bool) {
		sender := noise.UnsafeNewCipherState(cipherSuite, key, 0)
		var stream []byte
		var sealed [][]byte // plaintexts, in nonce order
		raw := false
		if !framed {
			stream, raw = data, true
		}
		for framed && len(data) >= 3 {
			kind, n := data[0], int(binary.BigEndian.Uint16(data[1:3]))
			b := data[3:][:min(n, len(data)-3)]
			data = data[3+len(b):]
			if kind&1 == 0 {
				stream, raw = append(stream, b...), true
				continue
			}
			b = b[:min(len(b), MaxRecord-tagSize)]
			rec, err := sender.Encrypt(nil, nil, b)
			if err != nil {
				t.Fatal(err)
			}
			stream = append(binary.BigEndian.AppendUint16(stream, uint16(len(rec))), rec...)
			sealed = append(sealed, b)
		}

		c := &Conn{
			conn:       scriptConn{bytes.NewReader(stream)},
			maxPayload: fuzzLimits,
			recv:       noise.UnsafeNewCipherState(cipherSuite, key, 0),
		}
		c.br = bufio.NewReaderSize(c.conn, readBuf)
		c.established()
		var err error
		n := 0
		for ; ; n++ {
			var typ byte
			var payload []byte
			typ, payload, err = c.ReadFrame()
			if err != nil {
				break
			}
			if n >= len(sealed) {
				t.Fatalf("frame %d (type %d, %d bytes) was never sealed", n, typ, len(payload))
			}
			if want := sealed[n]; len(want) == 0 || typ != want[0] || !bytes.Equal(payload, want[1:]) {
				t.Fatalf("frame %d: got type %d %x, sealed %x", n, typ, payload, want)
			}
			if len(payload) > fuzzLimits(typ) {
				t.Fatalf("frame %d of type %d is %d bytes, over its limit", n, typ, len(payload))
			}
		}
		if _, _, again := c.ReadFrame(); again != err {
			t.Fatalf("first error %v, then %v", err, again)
		}
		if !raw {
			// Without damage, reading stops exactly at the first frame
			// that breaks a rule, or at the clean end.
			for ; n < len(sealed); n++ {
				if p := sealed[n]; len(p) == 0 || len(p)-1 > fuzzLimits(p[0]) {
					break
				}
			}
			switch {
			case n == len(sealed) && err != io.EOF:
				t.Fatalf("genuine stream of %d frames ended with %v, want io.EOF", n, err)
			case n < len(sealed) && err == io.EOF:
				t.Fatalf("frame %d (%x) should have been refused", n, sealed[n])
			}
		}
	})
}

// FuzzHandshake feeds arbitrary bytes to Client or Server as everything the
// peer sends: its handshake messages and then frames. The local side uses the
// first vector's keys and ephemeral key, so the vector's transcript is a
// valid seed and the fuzzer can explore around a handshake that succeeds.
func FuzzHandshake(f *testing.F) {
	v := seedVectors()[0].compute(f)
	var fromInitiator, fromResponder []byte
	fromInitiator = append(fromInitiator, unhex(f, v.Message1)...)
	fromInitiator = append(fromInitiator, unhex(f, v.Message3)...)
	fromResponder = append(fromResponder, unhex(f, v.Message2)...)
	for _, fr := range v.Frames {
		if fr.From == "initiator" {
			fromInitiator = append(fromInitiator, unhex(f, fr.Wire)...)
		} else {
			fromResponder = append(fromResponder, unhex(f, fr.Wire)...)
		}
	}
	f.Add(fromInitiator, true)
	f.Add(fromResponder, false)
	f.Add(fromInitiator[:40], true)
	f.Add(fromResponder[:50], false)
	f.Add([]byte{}, true)
	f.Add([]byte{0, 32}, true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), true)

	ik := testKeyFrom(f, unhex(f, v.InitiatorStaticPriv))
	rk := testKeyFrom(f, unhex(f, v.ResponderStaticPriv))
	iEph, rEph := unhex(f, v.InitiatorEphemeralPriv), unhex(f, v.ResponderEphemeralPriv)

	f.Fuzz(func(t *testing.T, data []byte, asServer bool) {
		nc := scriptConn{bytes.NewReader(data)}
		var c *Conn
		var err error
		if asServer {
			c, err = Server(context.Background(), nc, Config{Static: rk, Rand: bytes.NewReader(rEph), MaxPayload: fuzzLimits})
		} else {
			c, err = Client(context.Background(), nc, Config{Static: ik, Rand: bytes.NewReader(iEph), MaxPayload: fuzzLimits})
		}
		if err != nil {
			if c != nil {
				t.Fatal("a failed handshake returned a Conn")
			}
			if errors.Is(err, context.Canceled) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if len(c.RemoteStatic()) != keySize || len(c.ChannelBinding()) != 32 {
			t.Fatalf("handshake succeeded with remote key %x, binding %x", c.RemoteStatic(), c.ChannelBinding())
		}
		for {
			typ, payload, err := c.ReadFrame()
			if err != nil {
				break
			}
			if len(payload) > fuzzLimits(typ) {
				t.Fatalf("frame of type %d is %d bytes, over its limit", typ, len(payload))
			}
		}
	})
}
