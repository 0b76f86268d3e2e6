package link

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/flynn/noise"
)

// Noise_XX_25519_ChaChaPoly_BLAKE2s, prologue "grapevine link v2":
//
//	-> e              payload: pad (random bytes, in clear)
//	<- e, ee, s, es   payload: hello
//	-> s, se          payload: hello
//
// Every handshake message is preceded by its length, 2 bytes big-endian. Each
// carries 0 to maxPad bytes of padding, so that the three sizes are not a
// fixed fingerprint; anything outside a message's range is refused before
// its body is read:
//
//	message 1  [0:32]  e
//	           [32:]   pad, 0..31 random bytes                32..63 bytes
//	message 2  [0:32]  e
//	           [32:80] ENC(s)   = 32 + tag
//	           [80:]   ENC(hello) = 2 + pad + tag              98..129 bytes
//	message 3  [0:48]  ENC(s)
//	           [48:]   ENC(hello)                              66..97 bytes
//
// hello:
//
//	[0]  version = 2
//	[1]  flags, reserved: sent as 0, ignored on receipt
//	[2:] padding: sent as zeros (it is encrypted), ignored on receipt
//
// The randomness is drawn in a fixed order, so a vector can give it: each
// side first its 32-byte ephemeral private key, then one byte whose low 5
// bits are its padding length (the initiator: for message 1, then message
// 1's padding itself, then a byte for message 3).
const (
	maxPad   = 31
	msg1Size = keySize
	msg2Size = keySize + keySize + tagSize + helloSize + tagSize
	msg3Size = keySize + tagSize + helloSize + tagSize
)

// hello returns what this implementation sends in messages 2 and 3: the
// version, no flags and pad zero bytes.
func hello(pad int) []byte {
	h := make([]byte, helloSize+pad)
	h[0] = Version
	return h
}

// aLongTimeAgo is a deadline in the past, set to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// Client performs the handshake as the initiator over c and returns the
// established link. The handshake ends when it completes, when ctx is done, or
// after cfg.HandshakeTimeout, whichever comes first. On error c is closed.
func Client(ctx context.Context, c net.Conn, cfg Config) (*Conn, error) {
	return handshake(ctx, c, cfg, true)
}

// Server performs the handshake as the responder over c; otherwise as Client.
func Server(ctx context.Context, c net.Conn, cfg Config) (*Conn, error) {
	return handshake(ctx, c, cfg, false)
}

func handshake(ctx context.Context, nc net.Conn, cfg Config, initiator bool) (_ *Conn, err error) {
	defer func() {
		if err != nil {
			nc.Close()
		}
	}()
	if err := checkStatic(cfg.Static); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("link: handshake aborted: %w", context.Cause(ctx))
	}

	// One deadline for the whole handshake, so a peer that never speaks, or
	// speaks too slowly, is dropped. Cancelling ctx moves it to the past.
	timeout := cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	deadline, byCtx := time.Now().Add(timeout), false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, byCtx = d, true
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("link: failed to set handshake deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })

	c, err := runHandshake(nc, cfg, initiator)
	if !stop() {
		// ctx is done and the deadline is being moved to the past, perhaps
		// right now; whatever the handshake did, the link is not usable.
		return nil, fmt.Errorf("link: handshake aborted: %w", context.Cause(ctx))
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if byCtx {
				return nil, fmt.Errorf("link: handshake aborted: %w: %w", context.DeadlineExceeded, err)
			}
			return nil, fmt.Errorf("link: handshake timed out after %v: %w", timeout, err)
		}
		return nil, fmt.Errorf("link: %w", err)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("link: failed to clear handshake deadline: %w", err)
	}
	return c, nil
}

// runHandshake is the protocol, straight through. Errors are not prefixed.
func runHandshake(nc net.Conn, cfg Config, initiator bool) (*Conn, error) {
	rnd := &randSource{r: cfg.Rand}
	if rnd.r == nil {
		rnd.r = rand.Reader
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Random:        rnd,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      []byte(Prologue),
		StaticKeypair: cfg.Static,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to start handshake: %w", err)
	}
	c := &Conn{
		conn:       nc,
		br:         bufio.NewReaderSize(nc, readBuf),
		maxPayload: cfg.MaxPayload,
	}

	// Noise's Split yields cs1 for initiator → responder and cs2 for the way
	// back; writeHandshake and readHandshake return them after message 3.
	if initiator {
		// -> e, pad
		if err := rnd.prefetch(keySize); err != nil { // e is drawn before the padding
			return nil, fmt.Errorf("failed to draw an ephemeral key: %w", err)
		}
		pad, err := rnd.padding()
		if err != nil {
			return nil, err
		}
		padding := make([]byte, pad)
		if _, err := io.ReadFull(rnd.r, padding); err != nil { // not from rnd: e waits there
			return nil, fmt.Errorf("failed to draw padding: %w", err)
		}
		if _, _, err := c.writeHandshake(hs, rnd, 1, padding); err != nil {
			return nil, err
		}
		// <- e, ee, s, es, hello
		peerHello, _, _, err := c.readHandshake(hs, 2, msg2Size)
		if err != nil {
			return nil, err
		}
		if err := checkHello(2, peerHello); err != nil {
			return nil, err
		}
		// -> s, se, hello
		if pad, err = rnd.padding(); err != nil {
			return nil, err
		}
		cs1, cs2, err := c.writeHandshake(hs, rnd, 3, hello(pad))
		if err != nil {
			return nil, err
		}
		c.send, c.recv = cs1, cs2
	} else {
		// -> e, pad
		if _, _, _, err := c.readHandshake(hs, 1, msg1Size); err != nil {
			return nil, err
		}
		// <- e, ee, s, es, hello
		if err := rnd.prefetch(keySize); err != nil {
			return nil, fmt.Errorf("failed to draw an ephemeral key: %w", err)
		}
		pad, err := rnd.padding()
		if err != nil {
			return nil, err
		}
		if _, _, err := c.writeHandshake(hs, rnd, 2, hello(pad)); err != nil {
			return nil, err
		}
		// -> s, se, hello
		peerHello, cs1, cs2, err := c.readHandshake(hs, 3, msg3Size)
		if err != nil {
			return nil, err
		}
		if err := checkHello(3, peerHello); err != nil {
			return nil, err
		}
		c.send, c.recv = cs2, cs1
	}
	c.local = bytes.Clone(cfg.Static.Public)
	c.remote = bytes.Clone(hs.PeerStatic())
	c.binding = bytes.Clone(hs.ChannelBinding())
	c.established()
	return c, nil
}

// writeHandshake sends handshake message num: length (2, big-endian) || message.
func (c *Conn) writeHandshake(hs *noise.HandshakeState, rnd *randSource, num int, payload []byte) (cs1, cs2 *noise.CipherState, err error) {
	msg, cs1, cs2, err := hs.WriteMessage(make([]byte, lenSize, lenSize+msg2Size+maxPad), payload)
	if err != nil {
		err = fmt.Errorf("failed to make handshake message %d: %w", num, err)
		if rnd.err == nil {
			// Not our randomness: a DH with the peer's key failed, so it
			// sent a low-order point.
			err = violation(err)
		}
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-lenSize))
	n, err := c.conn.Write(msg)
	c.sent.Add(uint64(n))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to write handshake message %d: %w", num, err)
	}
	return cs1, cs2, nil
}

// readHandshake reads handshake message num, which must be size to
// size+maxPad bytes, and returns its payload.
func (c *Conn) readHandshake(hs *noise.HandshakeState, num, size int) (payload []byte, cs1, cs2 *noise.CipherState, err error) {
	var hdr [lenSize]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, nil, nil, fmt.Errorf("failed to read handshake message %d: %w", num, err)
	}
	c.received.Add(lenSize)
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n < size || n > size+maxPad {
		return nil, nil, nil, violation(fmt.Errorf("handshake message %d is %d bytes, want %d to %d (not a grapevine link?)", num, n, size, size+maxPad))
	}
	msg := make([]byte, n)
	got, err := io.ReadFull(c.br, msg)
	c.received.Add(uint64(got))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("failed to read handshake message %d: %w", num, unexpectedEOF(err))
	}
	payload, cs1, cs2, err = hs.ReadMessage(nil, msg)
	if err != nil {
		return nil, nil, nil, violation(fmt.Errorf("handshake message %d rejected: %w", num, err))
	}
	return payload, cs1, cs2, nil
}

// randSource remembers whether the random source failed, to tell that apart
// from the peer's fault when making a handshake message fails. It can draw
// bytes ahead (prefetch) and serve them first, so that the ephemeral key,
// which Noise draws while writing a message, comes before the padding of
// that message in the random stream.
type randSource struct {
	r     io.Reader
	err   error
	ahead []byte
}

func (s *randSource) prefetch(n int) error {
	buf := make([]byte, n)
	if _, err := io.ReadFull(s, buf); err != nil {
		return err
	}
	s.ahead = buf
	return nil
}

// padding draws a padding length, 0..maxPad.
func (s *randSource) padding() (int, error) {
	var b [1]byte
	if _, err := io.ReadFull(s.r, b[:]); err != nil {
		return 0, fmt.Errorf("failed to draw a padding length: %w", err)
	}
	return int(b[0] & maxPad), nil
}

func (s *randSource) Read(p []byte) (int, error) {
	if len(s.ahead) > 0 {
		n := copy(p, s.ahead)
		s.ahead = s.ahead[n:]
		return n, nil
	}
	n, err := s.r.Read(p)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// checkHello checks the peer's hello from handshake message num.
func checkHello(num int, h []byte) error {
	if len(h) < helloSize || len(h) > helloSize+maxPad {
		return violation(fmt.Errorf("hello in handshake message %d is %d bytes, want %d to %d", num, len(h), helloSize, helloSize+maxPad))
	}
	if h[0] != Version {
		return violation(fmt.Errorf("peer speaks link protocol version %d, want %d", h[0], Version))
	}
	return nil // h[1], flags: reserved, and the padding: ignored
}
