// Package link owns the encrypted, framed connection between two neighbouring
// Grapevine nodes over any reliable byte stream (TCP today; net.Pipe in tests
// and in the simulator): the Noise XX handshake under a rotating link key, the
// hello that pins the link protocol version, and the record layer that carries
// typed frames of the sync protocol.
//
// It does not own identities (a link key is deliberately not the user's
// identity, see NewStatic), discovery, what frame types mean, or any clock:
// the package starts no goroutines and runs no timers. Keepalive is the
// caller's: send a frame when nothing has been written for KeepaliveInterval,
// set a read deadline of IdleTimeout before each ReadFrame, and Close the link
// when it expires.
//
// The wire format is specified in SPEC.md §10, "Links between neighbours";
// test vectors live in testdata/vectors/link.json.
package link

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
)

const (
	// Version is the link protocol version sent in the hello and the only one
	// accepted from a peer.
	Version = 2

	// Prologue is mixed into the Noise handshake hash; a peer using any other
	// prologue fails to authenticate handshake message 2 or 3.
	Prologue = "grapevine link v2"

	// Protocol is the full Noise protocol name.
	Protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2s"

	// MaxRecord is the largest Noise message, and so the largest record (the
	// ciphertext after the 2-byte length) on the wire.
	MaxRecord = noise.MaxMsgLen // 65535

	// MaxPayload is the largest frame payload: a record is
	// type (1) || payload || AEAD tag (16) and at most MaxRecord bytes.
	MaxPayload = MaxRecord - 1 - tagSize // 65518

	// DefaultHandshakeTimeout bounds a whole handshake when
	// Config.HandshakeTimeout is zero.
	DefaultHandshakeTimeout = 10 * time.Second

	// KeepaliveInterval is how long a caller should let a link stay silent in
	// its sending direction before it sends a frame (an empty one of its own
	// keepalive type will do), so the peer's IdleTimeout does not fire.
	KeepaliveInterval = 15 * time.Second

	// IdleTimeout is how long a caller should wait for the next frame (via
	// SetReadDeadline) before it considers the neighbour gone and closes the
	// link: three keepalive intervals.
	IdleTimeout = 3 * KeepaliveInterval
)

const (
	tagSize   = 16                  // ChaChaPoly authentication tag
	keySize   = 32                  // X25519 public key
	helloSize = 2                   // version || flags
	minRecord = 1 + tagSize         // type byte and tag, empty payload
	lenSize   = 2                   // big-endian length before every message
	readBuf   = 4096                // bufio size: whole small frames per read
	writeBuf  = lenSize + MaxRecord // one frame, encrypted in place
)

// ErrProtocol is matched (errors.Is) by every error that means the peer broke
// the link protocol: a handshake message of the wrong size or that does not
// authenticate, an unknown version, a record that is too short or does not
// authenticate, a frame over its limit. A caller may hold that against the
// peer's address; network errors, timeouts and io.EOF do not match it.
var ErrProtocol = errors.New("link protocol violation")

// violation marks err as a protocol violation without changing its text.
func violation(err error) error { return protocolError{err} }

type protocolError struct{ error }

func (e protocolError) Is(target error) bool { return target == ErrProtocol }
func (e protocolError) Unwrap() error        { return e.error }

// cipherSuite is 25519, ChaChaPoly, BLAKE2s, as named by Protocol.
var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Config configures one end of a link. The zero value is not usable: Static
// is required.
type Config struct {
	// Static is this node's current link key. It is not the user's identity:
	// make one with NewStatic at every start and rotate it (say hourly), so
	// that a stranger who links to this node twice cannot tell it is the same
	// node. Links already up keep the key they were made with.
	Static noise.DHKey

	// Rand is the source of the handshake's ephemeral key; nil means
	// crypto/rand. Only tests and simulations set it, for reproducible runs.
	Rand io.Reader

	// HandshakeTimeout bounds the whole handshake; zero means
	// DefaultHandshakeTimeout. A context deadline that comes sooner wins.
	HandshakeTimeout time.Duration

	// MaxPayload returns the largest payload accepted in a frame of type typ;
	// nil means MaxPayload for every type. Values above MaxPayload mean
	// MaxPayload; a negative value refuses the type outright. Both ends of a
	// link normally use the same limits: a frame over the limit is refused by
	// WriteFrame and is a protocol violation in ReadFrame.
	MaxPayload func(typ byte) int
}

// NewStatic returns a fresh link key drawn from rand (nil means crypto/rand).
func NewStatic(rand io.Reader) (noise.DHKey, error) {
	return cipherSuite.GenerateKeypair(rand)
}

// checkStatic reports whether k is a usable X25519 key pair: the public key
// must be the one its private key derives, so RemoteStatic at the peer is
// what this node actually proved possession of.
func checkStatic(k noise.DHKey) error {
	if len(k.Private) != keySize || len(k.Public) != keySize {
		return errors.New("Config.Static is not an X25519 key pair (use NewStatic)")
	}
	derived, err := cipherSuite.GenerateKeypair(bytes.NewReader(k.Private))
	if err != nil {
		return fmt.Errorf("Config.Static: %w", err)
	}
	if !bytes.Equal(derived.Public, k.Public) {
		return errors.New("Config.Static: public key does not match private key")
	}
	return nil
}

// Conn is an established link. WriteFrame may be called from several
// goroutines at once; ReadFrame from one at a time.
type Conn struct {
	conn       net.Conn
	br         *bufio.Reader // handshake and frames; may hold bytes read ahead
	maxPayload func(typ byte) int

	local, remote, binding []byte

	// Read side: one reader at a time.
	recv     *noise.CipherState
	rbuf     []byte // one record; decrypted in place
	rerr     error  // sticky: once set, every ReadFrame returns it
	received atomic.Uint64

	// Write side.
	wmu  sync.Mutex
	send *noise.CipherState
	wbuf []byte // length || record; encrypted in place
	werr error  // sticky, under wmu
	sent atomic.Uint64
}

// established allocates the frame buffers once the handshake is done, so a
// peer that fails the handshake costs little memory.
func (c *Conn) established() {
	c.rbuf = make([]byte, MaxRecord)
	c.wbuf = make([]byte, writeBuf)
}

// limit returns the largest payload accepted for typ, or -1 if typ is refused.
func (c *Conn) limit(typ byte) int {
	if c.maxPayload == nil {
		return MaxPayload
	}
	return max(min(c.maxPayload(typ), MaxPayload), -1)
}

// checkLimit returns an error if a payload of n bytes is not allowed for typ.
func (c *Conn) checkLimit(typ byte, n int) error {
	switch limit := c.limit(typ); {
	case limit < 0:
		return fmt.Errorf("link: frame of type %d is not accepted", typ)
	case n > limit:
		return fmt.Errorf("link: frame of type %d is %d bytes, limit %d", typ, n, limit)
	}
	return nil
}

// WriteFrame encrypts one frame and writes it. A payload over the limit for
// typ is refused without touching the link. Any other error is final: the
// link is broken and the caller should Close it.
//
// On the wire (§ Links, frames):
//
//	[0:2]    n, big-endian: length of the record, 17 ≤ n ≤ 65535
//	[2:2+n]  record = ChaChaPoly(k, nonce, ad = empty, type (1) || payload) || tag (16)
func (c *Conn) WriteFrame(typ byte, payload []byte) error {
	if err := c.checkLimit(typ, len(payload)); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	n := 1 + len(payload) + tagSize
	buf := c.wbuf[:lenSize+n]
	binary.BigEndian.PutUint16(buf, uint16(n))
	buf[lenSize] = typ
	copy(buf[lenSize+1:], payload)
	if _, err := c.send.Encrypt(buf[:lenSize], nil, buf[lenSize:lenSize+1+len(payload)]); err != nil {
		c.werr = fmt.Errorf("link: failed to encrypt frame: %w", err)
		return c.werr
	}
	written, err := c.conn.Write(buf)
	c.sent.Add(uint64(written))
	if err != nil {
		// The nonce is spent and the peer may hold part of the record: the
		// stream cannot be resumed.
		c.werr = fmt.Errorf("link: failed to write frame: %w", err)
		return c.werr
	}
	return nil
}

// ReadFrame reads and decrypts the next frame. payload is valid until the
// next call to ReadFrame.
//
// It returns io.EOF, unwrapped, if the peer closed the stream cleanly between
// frames. A read deadline that expires before the first byte of a frame
// returns an error wrapping os.ErrDeadlineExceeded and leaves the link usable.
// Every other error — a short record, one that fails to authenticate, a frame
// over the limit for its type (these match ErrProtocol), the stream ending
// mid-frame — is final and returned again by every later call; the caller
// should Close the link.
func (c *Conn) ReadFrame() (typ byte, payload []byte, err error) {
	if c.rerr != nil {
		return 0, nil, c.rerr
	}
	hdr := c.rbuf[:lenSize]
	if got, err := io.ReadFull(c.br, hdr); err != nil {
		switch {
		case got == 0 && err == io.EOF:
			return 0, nil, c.readFailed(io.EOF)
		case got == 0 && errors.Is(err, os.ErrDeadlineExceeded):
			return 0, nil, fmt.Errorf("link: failed to read frame: %w", err)
		}
		return 0, nil, c.readFailed(fmt.Errorf("link: failed to read frame: %w", unexpectedEOF(err)))
	}
	n := int(binary.BigEndian.Uint16(hdr))
	if n < minRecord {
		c.received.Add(lenSize)
		return 0, nil, c.readFailed(violation(fmt.Errorf("link: record of %d bytes is too short, minimum %d", n, minRecord)))
	}
	rec := c.rbuf[:n]
	got, err := io.ReadFull(c.br, rec)
	c.received.Add(uint64(lenSize + got))
	if err != nil {
		return 0, nil, c.readFailed(fmt.Errorf("link: failed to read frame: %w", unexpectedEOF(err)))
	}
	plain, err := c.recv.Decrypt(rec[:0], nil, rec)
	if err != nil {
		return 0, nil, c.readFailed(violation(fmt.Errorf("link: failed to decrypt frame: %w", err)))
	}
	typ, payload = plain[0], plain[1:]
	if err := c.checkLimit(typ, len(payload)); err != nil {
		return 0, nil, c.readFailed(violation(err))
	}
	return typ, payload, nil
}

func (c *Conn) readFailed(err error) error {
	c.rerr = err
	return err
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// RemoteStatic returns the peer's link key, proven during the handshake. It
// identifies the peer's current link key, not the peer: use it to notice two
// links to the same neighbour, never as an identity.
func (c *Conn) RemoteStatic() []byte { return bytes.Clone(c.remote) }

// LocalStatic returns this end's link key, as sent in the handshake.
func (c *Conn) LocalStatic() []byte { return bytes.Clone(c.local) }

// ChannelBinding returns the Noise handshake hash (32 bytes), which is unique
// to this link and equal at both ends.
func (c *Conn) ChannelBinding() []byte { return bytes.Clone(c.binding) }

// Stats returns the bytes written to and consumed from the underlying stream,
// handshake and framing included.
func (c *Conn) Stats() (bytesSent, bytesReceived uint64) {
	return c.sent.Load(), c.received.Load()
}

// SetReadDeadline sets the deadline for ReadFrame on the underlying stream;
// see ReadFrame for what an expired deadline does.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying stream's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// LocalAddr returns the underlying stream's local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the underlying stream's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// Close closes the underlying stream, unblocking any ReadFrame and WriteFrame.
func (c *Conn) Close() error { return c.conn.Close() }
