package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flynn/noise"
)

// testKey returns a deterministic link key whose private key is 32 bytes of b.
func testKey(t testing.TB, b byte) noise.DHKey {
	t.Helper()
	k, err := NewStatic(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func freshKey(t testing.TB) noise.DHKey {
	t.Helper()
	k, err := NewStatic(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// link runs Client on a and Server on b concurrently and returns both ends,
// closed when the test ends.
func link(t testing.TB, a, b net.Conn, cc, sc Config) (client, server *Conn) {
	t.Helper()
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Server(context.Background(), b, sc)
		done <- result{c, err}
	}()
	client, err := Client(context.Background(), a, cc)
	r := <-done
	if err != nil || r.err != nil {
		t.Fatalf("handshake: client: %v; server: %v", err, r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// pipeLink is link over net.Pipe with fresh keys and no limits.
func pipeLink(t testing.TB) (client, server *Conn) {
	t.Helper()
	a, b := net.Pipe()
	return link(t, a, b, Config{Static: freshKey(t)}, Config{Static: freshKey(t)})
}

// checkGoroutines fails the test if it leaves goroutines behind. Tests that
// run in a synctest bubble get this check from synctest itself.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// payloadOf returns n bytes that depend on n and seed.
func payloadOf(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed + byte(n)
	}
	return p
}

// sizes are the payload sizes the round trips send: every size up to 300,
// a stride through the middle, and the edges at MaxPayload.
func sizes() []int {
	var s []int
	for n := 0; n <= 300; n++ {
		s = append(s, n)
	}
	for n := 301; n < MaxPayload-2; n += 1021 {
		s = append(s, n)
	}
	return append(s, MaxPayload-2, MaxPayload-1, MaxPayload)
}

// exchange sends every size from w to r and checks what arrives.
func exchange(t *testing.T, w, r *Conn) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for i, n := range sizes() {
			if err := w.WriteFrame(byte(i), payloadOf(n, byte(i))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, n := range sizes() {
		typ, p, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d (%d bytes): %v", i, n, err)
		}
		if typ != byte(i) || !bytes.Equal(p, payloadOf(n, byte(i))) {
			t.Fatalf("frame %d: got type %d, %d bytes; want type %d, %d bytes", i, typ, len(p), byte(i), n)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func checkStats(t *testing.T, a, b *Conn) {
	t.Helper()
	aSent, aRecv := a.Stats()
	bSent, bRecv := b.Stats()
	if aSent != bRecv || bSent != aRecv {
		t.Errorf("stats disagree: a sent %d, b received %d; b sent %d, a received %d", aSent, bRecv, bSent, aRecv)
	}
	if aSent < msg1Size+msg3Size+2*lenSize {
		t.Errorf("a sent only %d bytes", aSent)
	}
}

func TestRoundTripPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := pipeLink(t)
		exchange(t, client, server)
		exchange(t, server, client)
		checkStats(t, client, server)
		// Handshake plus one frame per size: 2 + 1 + 16 bytes of overhead each.
		sent, _ := client.Stats()
		want := uint64(lenSize + msg1Size + lenSize + msg3Size)
		for _, n := range sizes() {
			want += uint64(lenSize + 1 + n + tagSize)
		}
		if sent < want || sent > want+2*maxPad {
			t.Errorf("client sent %d bytes, want %d plus at most %d of padding", sent, want, 2*maxPad)
		}
	})
}

func TestRoundTripTCP(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.FailNow()
	}
	client, server := link(t, a, b, Config{Static: freshKey(t)}, Config{Static: freshKey(t)})
	exchange(t, client, server)
	exchange(t, server, client)
	checkStats(t, client, server)
	if client.RemoteAddr().String() != server.LocalAddr().String() {
		t.Errorf("client's remote address %v, server's local %v", client.RemoteAddr(), server.LocalAddr())
	}
	client.Close()
	if _, _, err := server.ReadFrame(); err != io.EOF {
		t.Errorf("after the peer closed: %v, want io.EOF", err)
	}
}

func TestHandshakeResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ck, sk := testKey(t, 1), testKey(t, 2)
		a, b := net.Pipe()
		client, server := link(t, a, b, Config{Static: ck}, Config{Static: sk})
		if !bytes.Equal(client.LocalStatic(), ck.Public) || !bytes.Equal(server.RemoteStatic(), ck.Public) {
			t.Error("the server does not see the client's link key")
		}
		if !bytes.Equal(server.LocalStatic(), sk.Public) || !bytes.Equal(client.RemoteStatic(), sk.Public) {
			t.Error("the client does not see the server's link key")
		}
		cb := client.ChannelBinding()
		if len(cb) != 32 || !bytes.Equal(cb, server.ChannelBinding()) {
			t.Errorf("channel bindings differ or wrong size: %x, %x", cb, server.ChannelBinding())
		}
		cb[0] ^= 1 // callers get copies
		if bytes.Equal(cb, client.ChannelBinding()) {
			t.Error("ChannelBinding returns the internal slice")
		}
	})
}

// A node linking twice under two link keys presents two unrelated keys, and
// nothing in this package can see an identity.
func TestUnlinkable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		serverKey := freshKey(t)
		var remotes, bindings [][]byte
		for range 2 {
			a, b := net.Pipe()
			client, server := link(t, a, b, Config{Static: freshKey(t)}, Config{Static: serverKey})
			if !bytes.Equal(server.RemoteStatic(), client.LocalStatic()) {
				t.Fatal("server sees a key the client does not use")
			}
			remotes = append(remotes, server.RemoteStatic())
			bindings = append(bindings, server.ChannelBinding())
		}
		if bytes.Equal(remotes[0], remotes[1]) {
			t.Error("two links under different link keys show the same RemoteStatic")
		}
		if bytes.Equal(bindings[0], bindings[1]) {
			t.Error("two links share a channel binding")
		}
	})

	// The package imports nothing of Grapevine's (keys, identities, store):
	// only the standard library and flynn/noise.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, ".") && path != "github.com/flynn/noise" {
				t.Errorf("%s imports %s; package link may use only the standard library and flynn/noise", name, path)
			}
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const writers, frames = 8, 200
		client, server := pipeLink(t)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range frames {
					p := payloadOf((w*frames+i)%3000, byte(w))
					p = binary.BigEndian.AppendUint32(p, uint32(i))
					if err := client.WriteFrame(byte(w), p); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		next := make([]int, writers)
		for range writers * frames {
			typ, p, err := server.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			w := int(typ)
			if w >= writers || len(p) < 4 {
				t.Fatalf("unexpected frame: type %d, %d bytes", typ, len(p))
			}
			i := int(binary.BigEndian.Uint32(p[len(p)-4:]))
			if i != next[w] || !bytes.Equal(p[:len(p)-4], payloadOf((w*frames+i)%3000, byte(w))) {
				t.Fatalf("writer %d: got frame %d (%d bytes), want frame %d intact", w, i, len(p), next[w])
			}
			next[w]++
		}
		wg.Wait()
	})
}

// rawPeer speaks the handshake with flynn/noise directly, so tests can make
// it deviate: another prologue, another hello, odd sizes.
type rawPeer struct {
	conn net.Conn
	hs   *noise.HandshakeState
}

func newRawPeer(t testing.TB, conn net.Conn, initiator bool, prologue string) *rawPeer {
	t.Helper()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      []byte(prologue),
		StaticKeypair: freshKey(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{conn, hs}
}

func (p *rawPeer) write(payload []byte) (send, recv *noise.CipherState, err error) {
	msg, cs1, cs2, err := p.hs.WriteMessage(nil, payload)
	if err != nil {
		return nil, nil, err
	}
	_, err = p.conn.Write(prefixed(msg))
	return cs1, cs2, err
}

func (p *rawPeer) read() ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(p.conn, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(p.conn, msg); err != nil {
		return nil, err
	}
	payload, _, _, err := p.hs.ReadMessage(nil, msg)
	return payload, err
}

// drain reads from c until it fails, as a peer waiting for the other side to
// hang up does.
func drain(c net.Conn) { io.Copy(io.Discard, c) }

func prefixed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// Each bad peer makes the handshake fail with an error that names the
// problem, promptly, without leaving goroutines behind (synctest checks).
func TestHandshakeBadPeer(t *testing.T) {
	tests := []struct {
		name   string
		server bool // whether the side under test is the responder
		peer   func(t *testing.T, c net.Conn)
		want   string
		prefix bool // want is a prefix of the error
	}{
		{
			name:   "garbage to server",
			server: true,
			peer:   func(t *testing.T, c net.Conn) { c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); drain(c) },
			want:   "link: handshake message 1 is 18245 bytes, want 32 to 63 (not a grapevine link?)",
		},
		{
			name: "garbage to client",
			peer: func(t *testing.T, c net.Conn) {
				var hdr [lenSize]byte
				io.ReadFull(c, hdr[:])
				io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(hdr[:])))
				c.Write(prefixed(payloadOf(msg2Size, 9)))
				drain(c)
			},
			want: "link: handshake message 2 rejected: chacha20poly1305: message authentication failed",
		},
		{
			name:   "too long message 1",
			server: true,
			peer:   func(t *testing.T, c net.Conn) { c.Write([]byte{0xff, 0xff}); drain(c) },
			want:   "link: handshake message 1 is 65535 bytes, want 32 to 63 (not a grapevine link?)",
		},
		{
			name:   "message 1 with too much padding",
			server: true,
			peer:   func(t *testing.T, c net.Conn) { c.Write(prefixed(payloadOf(msg1Size+maxPad+1, 1))); drain(c) },
			want:   "link: handshake message 1 is 64 bytes, want 32 to 63 (not a grapevine link?)",
		},
		{
			name: "too long message 2",
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, false, Prologue)
				p.read()
				p.write(make([]byte, helloSize+maxPad+1))
				drain(c)
			},
			want: "link: handshake message 2 is 130 bytes, want 98 to 129 (not a grapevine link?)",
		},
		{
			name:   "too long message 3",
			server: true,
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, true, Prologue)
				p.write(nil)
				p.read()
				p.write(bytes.Repeat([]byte{Version}, 100))
				drain(c)
			},
			want: "link: handshake message 3 is 164 bytes, want 66 to 97 (not a grapevine link?)",
		},
		{
			name:   "low-order ephemeral key",
			server: true,
			peer:   func(t *testing.T, c net.Conn) { c.Write(prefixed(make([]byte, 32))); drain(c) },
			want:   "link: failed to make handshake message 2: ", // then x/crypto's words for a low-order point
			prefix: true,
		},
		{
			name: "wrong prologue, responder",
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, false, "grapevine link v1")
				p.read()
				p.write(hello(0))
				drain(c)
			},
			want: "link: handshake message 2 rejected: chacha20poly1305: message authentication failed",
		},
		{
			name:   "wrong prologue, initiator",
			server: true,
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, true, "grapevine link v1")
				p.write(nil)
				if _, err := p.read(); err == nil {
					t.Error("a peer with another prologue read message 2")
				}
				c.Write(prefixed(payloadOf(msg3Size, 3))) // its best guess
				drain(c)
			},
			want: "link: handshake message 3 rejected: chacha20poly1305: message authentication failed",
		},
		{
			name: "version 3, responder",
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, false, Prologue)
				p.read()
				p.write([]byte{3, 0})
				drain(c)
			},
			want: "link: peer speaks link protocol version 3, want 2",
		},
		{
			name:   "version 0, initiator",
			server: true,
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, true, Prologue)
				p.write(nil)
				p.read()
				p.write([]byte{0, 0})
				drain(c)
			},
			want: "link: peer speaks link protocol version 0, want 2",
		},
		{
			name:   "hang up in message 1",
			server: true,
			peer:   func(t *testing.T, c net.Conn) { c.Write([]byte{0, 32, 1, 2, 3}); c.Close() },
			want:   "link: failed to read handshake message 1: unexpected EOF",
		},
		{
			name:   "hang up before message 3",
			server: true,
			peer: func(t *testing.T, c net.Conn) {
				p := newRawPeer(t, c, true, Prologue)
				p.write(nil)
				p.read()
				c.Close()
			},
			want: "link: failed to read handshake message 3: EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ours, theirs := net.Pipe()
				defer theirs.Close()
				go tt.peer(t, theirs)
				start := time.Now()
				var err error
				if tt.server {
					_, err = Server(context.Background(), ours, Config{Static: freshKey(t)})
				} else {
					_, err = Client(context.Background(), ours, Config{Static: freshKey(t)})
				}
				if err == nil || err.Error() != tt.want && !(tt.prefix && strings.HasPrefix(err.Error(), tt.want)) {
					t.Fatalf("got error %v\nwant %s", err, tt.want)
				}
				if violation := !strings.Contains(tt.want, "EOF"); errors.Is(err, ErrProtocol) != violation {
					t.Errorf("errors.Is(err, ErrProtocol) = %v, want %v", !violation, violation)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("took %v of the handshake timeout; want an immediate failure", d)
				}
				if _, err := ours.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("conn not closed after a failed handshake: %v", err)
				}
			})
		})
	}
}

// Reserved flags in the hello are ignored.
func TestHelloFlagsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		go func() {
			p := newRawPeer(t, theirs, false, Prologue)
			p.read()
			p.write([]byte{Version, 0xff})
			payload, err := p.read()
			if err != nil || len(payload) < helloSize || !bytes.Equal(payload, hello(len(payload)-helloSize)) {
				t.Errorf("message 3: hello %x, error %v", payload, err)
			}
			drain(theirs)
		}()
		c, err := Client(context.Background(), ours, Config{Static: freshKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

func TestHandshakeTimeout(t *testing.T) {
	for _, tt := range []struct {
		name    string
		server  bool
		timeout time.Duration
		want    time.Duration
		msg     string
	}{
		// A silent client: the server waits for message 1.
		{"server, default", true, 0, DefaultHandshakeTimeout, "link: handshake timed out after 10s: failed to read handshake message 1: read pipe: i/o timeout"},
		{"server, short", true, 50 * time.Millisecond, 50 * time.Millisecond, "link: handshake timed out after 50ms: failed to read handshake message 1: read pipe: i/o timeout"},
		// A server that never reads: net.Pipe blocks the client's first write.
		{"client, short", false, 50 * time.Millisecond, 50 * time.Millisecond, "link: handshake timed out after 50ms: failed to write handshake message 1: write pipe: i/o timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ours, theirs := net.Pipe()
				defer theirs.Close()
				start := time.Now()
				cfg := Config{Static: freshKey(t), HandshakeTimeout: tt.timeout}
				var err error
				if tt.server {
					_, err = Server(context.Background(), ours, cfg)
				} else {
					_, err = Client(context.Background(), ours, cfg)
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrProtocol) || err.Error() != tt.msg {
					t.Errorf("got %v\nwant %s", err, tt.msg)
				}
				if d := time.Since(start); d != tt.want {
					t.Errorf("gave up after %v, want %v", d, tt.want)
				}
			})
		})
	}
}

// A half-open peer that speaks message 1 and then nothing is dropped at the
// deadline too: the deadline covers the whole handshake, not each read.
func TestHandshakeTimeoutWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		go func() {
			time.Sleep(40 * time.Millisecond)
			p := newRawPeer(t, theirs, true, Prologue)
			p.write(nil)
			p.read()
			drain(theirs) // never sends message 3
		}()
		start := time.Now()
		_, err := Server(context.Background(), ours, Config{Static: freshKey(t), HandshakeTimeout: 50 * time.Millisecond})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("got %v, want a timeout", err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("gave up after %v", d)
		}
	})
}

func TestHandshakeContext(t *testing.T) {
	t.Run("cancelled during", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer theirs.Close()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			start := time.Now()
			_, err := Server(ctx, ours, Config{Static: freshKey(t)})
			if !errors.Is(err, context.Canceled) || err.Error() != "link: handshake aborted: context canceled" {
				t.Errorf("got %v", err)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("aborted after %v, want 1s", d)
			}
		})
	})
	t.Run("context deadline before timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer theirs.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			_, err := Client(ctx, ours, Config{Static: freshKey(t)})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d != 2*time.Second {
				t.Errorf("aborted after %v, want 2s", d)
			}
		})
	})
	t.Run("cancelled before", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer theirs.Close()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := Client(ctx, ours, Config{Static: freshKey(t)})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v", err)
			}
			if _, err := ours.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("conn not closed: %v", err)
			}
		})
	})
	t.Run("cancelled after", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			a, b := net.Pipe()
			done := make(chan *Conn, 1)
			go func() {
				c, err := Server(ctx, b, Config{Static: freshKey(t)})
				if err != nil {
					t.Error(err)
				}
				done <- c
			}()
			client, err := Client(ctx, a, Config{Static: freshKey(t)})
			if err != nil {
				t.Fatal(err)
			}
			server := <-done
			if server == nil {
				t.FailNow()
			}
			defer client.Close()
			defer server.Close()
			cancel()
			time.Sleep(time.Hour) // no deadline is left on the conn
			go client.WriteFrame(1, []byte("still here"))
			if _, p, err := server.ReadFrame(); err != nil || string(p) != "still here" {
				t.Errorf("link after the handshake: %q, %v", p, err)
			}
		})
	})
}

// A broken random source is this node's fault, not the peer's.
func TestRandFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		go func() {
			p := newRawPeer(t, theirs, true, Prologue)
			p.write(nil)
			drain(theirs)
		}()
		_, err := Server(context.Background(), ours, Config{Static: freshKey(t), Rand: bytes.NewReader(make([]byte, 31))})
		if err == nil || err.Error() != "link: failed to draw an ephemeral key: unexpected EOF" {
			t.Fatalf("got %v", err)
		}
		if errors.Is(err, ErrProtocol) {
			t.Error("a local failure blamed on the peer")
		}
	})
}

func TestBadConfig(t *testing.T) {
	good := freshKey(t)
	other := freshKey(t)
	for _, tt := range []struct {
		name string
		key  noise.DHKey
		want string
	}{
		{"zero", noise.DHKey{}, "link: Config.Static is not an X25519 key pair (use NewStatic)"},
		{"short", noise.DHKey{Private: good.Private[:31], Public: good.Public}, "link: Config.Static is not an X25519 key pair (use NewStatic)"},
		{"mismatched", noise.DHKey{Private: good.Private, Public: other.Public}, "link: Config.Static: public key does not match private key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer b.Close()
			_, err := Client(context.Background(), a, Config{Static: tt.key})
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
			if _, err := a.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("conn not closed: %v", err)
			}
		})
	}
}

// sealed returns a frame as the client's send state would write it,
// advancing that state.
func sealed(t *testing.T, c *Conn, typ byte, payload []byte) []byte {
	t.Helper()
	rec, err := c.send.Encrypt(nil, nil, append([]byte{typ}, payload...))
	if err != nil {
		t.Fatal(err)
	}
	return prefixed(rec)
}

// After the handshake, each violation gives a clear, final error.
func TestFrameViolations(t *testing.T) {
	limits := func(typ byte) int {
		switch typ {
		case 3:
			return 100
		case 9:
			return -1
		}
		return 1 << 20 // above MaxPayload: MaxPayload
	}
	tests := []struct {
		name string
		send func(t *testing.T, c *Conn) // c is the client; c.conn its raw stream
		want string
	}{
		{
			name: "garbage record",
			send: func(t *testing.T, c *Conn) { c.conn.Write(prefixed(payloadOf(40, 1))) },
			want: "link: failed to decrypt frame: chacha20poly1305: message authentication failed",
		},
		{
			name: "flipped bit",
			send: func(t *testing.T, c *Conn) {
				f := sealed(t, c, 1, []byte("hello"))
				f[len(f)-1] ^= 0x80
				c.conn.Write(f)
			},
			want: "link: failed to decrypt frame: chacha20poly1305: message authentication failed",
		},
		{
			name: "replayed frame",
			send: func(t *testing.T, c *Conn) {
				f := sealed(t, c, 1, []byte("hello"))
				c.conn.Write(f)
				c.conn.Write(f)
			},
			want: "link: failed to decrypt frame: chacha20poly1305: message authentication failed",
		},
		{
			name: "zero-length record",
			send: func(t *testing.T, c *Conn) { c.conn.Write([]byte{0, 0}) },
			want: "link: record of 0 bytes is too short, minimum 17",
		},
		{
			name: "record without a type byte",
			send: func(t *testing.T, c *Conn) {
				rec, _ := c.send.Encrypt(nil, nil, nil)
				c.conn.Write(prefixed(rec))
			},
			want: "link: record of 16 bytes is too short, minimum 17",
		},
		{
			name: "over the limit for its type",
			send: func(t *testing.T, c *Conn) { c.conn.Write(sealed(t, c, 3, make([]byte, 101))) },
			want: "link: frame of type 3 is 101 bytes, limit 100",
		},
		{
			name: "refused type",
			send: func(t *testing.T, c *Conn) { c.conn.Write(sealed(t, c, 9, nil)) },
			want: "link: frame of type 9 is not accepted",
		},
		{
			name: "hang up mid-frame",
			send: func(t *testing.T, c *Conn) {
				f := sealed(t, c, 1, []byte("hello"))
				c.conn.Write(f[:10])
				c.conn.Close()
			},
			want: "link: failed to read frame: unexpected EOF",
		},
		{
			name: "hang up in the length",
			send: func(t *testing.T, c *Conn) { c.conn.Write([]byte{0}); c.conn.Close() },
			want: "link: failed to read frame: unexpected EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := net.Pipe()
				client, server := link(t, a, b, Config{Static: freshKey(t)}, Config{Static: freshKey(t), MaxPayload: limits})
				// One good frame first, of the largest size the limits allow.
				go func() {
					client.WriteFrame(3, make([]byte, 100))
					tt.send(t, client)
				}()
				if typ, p, err := server.ReadFrame(); err != nil || typ != 3 || len(p) != 100 {
					t.Fatalf("good frame: type %d, %d bytes, %v", typ, len(p), err)
				}
				var err error
				for range 3 { // a replay is refused after the original
					if _, _, err = server.ReadFrame(); err != nil {
						break
					}
				}
				if err == nil || err.Error() != tt.want {
					t.Fatalf("got %v\nwant %s", err, tt.want)
				}
				if violation := !strings.Contains(tt.want, "EOF"); errors.Is(err, ErrProtocol) != violation {
					t.Errorf("errors.Is(err, ErrProtocol) = %v, want %v", !violation, violation)
				}
				if _, _, again := server.ReadFrame(); again != err {
					t.Errorf("second read: %v; want the same error again", again)
				}
				server.Close() // the caller cuts the link; the peer's writes end
			})
		})
	}
}

func TestWriteLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limits := func(typ byte) int {
			switch typ {
			case 3:
				return 100
			case 9:
				return -1
			}
			return MaxPayload
		}
		a, b := net.Pipe()
		client, server := link(t, a, b, Config{Static: freshKey(t), MaxPayload: limits}, Config{Static: freshKey(t)})
		for _, tt := range []struct {
			typ  byte
			n    int
			want string
		}{
			{1, MaxPayload + 1, "link: frame of type 1 is 65519 bytes, limit 65518"},
			{3, 101, "link: frame of type 3 is 101 bytes, limit 100"},
			{9, 0, "link: frame of type 9 is not accepted"},
		} {
			if err := client.WriteFrame(tt.typ, make([]byte, tt.n)); err == nil || err.Error() != tt.want {
				t.Errorf("WriteFrame(%d, %d bytes) = %v, want %s", tt.typ, tt.n, err, tt.want)
			}
		}
		// A refused write does not break the link.
		go client.WriteFrame(3, make([]byte, 100))
		if typ, p, err := server.ReadFrame(); err != nil || typ != 3 || len(p) != 100 {
			t.Errorf("after refused writes: type %d, %d bytes, %v", typ, len(p), err)
		}
	})
}

// A read deadline that expires between frames leaves the link usable, so a
// caller can poll; after a write error the link stays broken.
func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := pipeLink(t)
		server.SetReadDeadline(time.Now().Add(IdleTimeout))
		start := time.Now()
		_, _, err := server.ReadFrame()
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != IdleTimeout {
			t.Fatalf("idle read: %v after %v", err, time.Since(start))
		}
		server.SetReadDeadline(time.Time{})
		go client.WriteFrame(7, []byte("ping"))
		if typ, p, err := server.ReadFrame(); err != nil || typ != 7 || string(p) != "ping" {
			t.Fatalf("after a timeout: type %d %q, %v", typ, p, err)
		}

		server.Close()
		err = client.WriteFrame(1, nil)
		if err == nil || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("write to a closed peer: %v", err)
		}
		if again := client.WriteFrame(1, nil); again != err {
			t.Errorf("second write: %v; want the same error again", again)
		}
	})
}

func TestNonceExhaustion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := pipeLink(t)
		client.send.SetNonce(noise.MaxNonce)
		server.recv.SetNonce(noise.MaxNonce)
		go client.WriteFrame(1, []byte("last"))
		if _, p, err := server.ReadFrame(); err != nil || string(p) != "last" {
			t.Fatalf("frame with the last nonce: %q, %v", p, err)
		}
		err := client.WriteFrame(1, []byte("one too many"))
		if !errors.Is(err, noise.ErrMaxNonce) {
			t.Fatalf("write past the last nonce: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "link: failed to encrypt frame: ") {
			t.Errorf("unclear error: %v", err)
		}
	})
}

func TestEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := pipeLink(t)
		go func() {
			client.WriteFrame(1, []byte("bye"))
			client.Close()
		}()
		if _, p, err := server.ReadFrame(); err != nil || string(p) != "bye" {
			t.Fatalf("%q, %v", p, err)
		}
		for range 2 {
			if _, _, err := server.ReadFrame(); err != io.EOF {
				t.Fatalf("got %v, want io.EOF", err)
			}
		}
	})
}

func ExampleClient() {
	a, b := net.Pipe()
	ctx := context.Background()
	go func() {
		key, _ := NewStatic(nil) // a fresh link key, never the identity
		c, err := Server(ctx, b, Config{Static: key})
		if err != nil {
			return
		}
		defer c.Close()
		typ, payload, _ := c.ReadFrame()
		c.WriteFrame(typ, bytes.ToUpper(payload))
	}()

	key, _ := NewStatic(nil)
	c, err := Client(ctx, a, Config{Static: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.WriteFrame(1, []byte("hello"))
	c.SetReadDeadline(time.Now().Add(IdleTimeout))
	typ, payload, err := c.ReadFrame()
	fmt.Println(typ, string(payload), err)
	// Output: 1 HELLO <nil>
}

// TestHandshakeSizesVary is the passive listener's view of a handshake
// (SPEC §13.2): the three messages' sizes are drawn per link, so they are no
// fixed fingerprint, and each stays within its range.
func TestHandshakeSizesVary(t *testing.T) {
	rnd := mrand.NewChaCha8([32]byte{7})
	seen := [3]map[int]bool{{}, {}, {}}
	for range 64 {
		a, b := net.Pipe()
		ta, tb := &tapConn{Conn: a}, &tapConn{Conn: b}
		var ik, rk [96]byte
		rnd.Read(ik[:])
		rnd.Read(rk[:])
		c, s := link(t, ta, tb, Config{Static: freshKey(t), Rand: bytes.NewReader(ik[:])}, Config{Static: freshKey(t), Rand: bytes.NewReader(rk[:])})
		c.Close()
		s.Close()
		for i, m := range [][]byte{ta.writes[0], tb.writes[0], ta.writes[1]} {
			n := len(m) - lenSize
			lo := [3]int{msg1Size, msg2Size, msg3Size}[i]
			if n < lo || n > lo+maxPad {
				t.Fatalf("message %d is %d bytes, outside %d..%d", i+1, n, lo, lo+maxPad)
			}
			seen[i][n] = true
		}
	}
	for i, s := range seen {
		if len(s) < 16 {
			t.Errorf("message %d took only %d sizes in 64 handshakes", i+1, len(s))
		}
	}
}
