//go:build linux

package netns

// The hostile neighbour: this test binary re-executed inside a namespace with
// GRAPEVINE_NETNS_HOSTILE set to a hostileConfig (see TestMain). It makes one
// connection to the target, misbehaves in the way asked, reports what the
// target did as one JSON line on its standard output, and exits.
//
// Also here: random sealed envelopes, for bundles and floods.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/session"
)

const hostileEnv = "GRAPEVINE_NETNS_HOSTILE"

// Hostile modes.
const (
	modePing     = "ping"     // a proper link: Ping, expect Pong, close (the client works)
	modeGarbage  = "garbage"  // random bytes instead of a handshake
	modeGarbage3 = "garbage3" // a proper first handshake message, then garbage for the third
	modeBadType  = "badtype"  // a proper link, then a frame of a type that does not exist
	modeOversize = "oversize" // a proper link, then a Want frame over its limit
	modeSilent   = "silent"   // connect and never speak
	modeRefused  = "refused"  // connect from a penalised address: expect to be dropped at once
	modeFlood    = "flood"    // a proper link, then many valid-looking envelopes
	modeProbe    = "probe"    // a handshake, to learn the target's link key, then close
	modeSpam     = "spam"     // a proper link, then many public posts without a valid stamp
)

type hostileConfig struct {
	Mode   string
	Target string // host:port
	Local  string // local IP address to dial from
	Flood  int    // envelopes to send in modeFlood
	Size   int    // their content size
}

// hostileResult is what the hostile client saw.
type hostileResult struct {
	Linked bool    // the handshake completed
	Closed bool    // the target closed the connection (EOF or reset)
	After  float64 // seconds from the misbehaviour to the close
	Pong   bool    // modePing, modeFlood: the target answered a Ping
	Sent   int     // modeFlood: envelopes sent
	Err    string  // what ended the connection, as seen by the client
	Key    string  // modeProbe: the target's link key, hex
}

// hostile runs the hostile client in ns and returns what it saw.
func hostile(t *testing.T, ns *netns, cfg hostileConfig) hostileResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Error(err)
		return hostileResult{Err: err.Error()}
	}
	raw, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, exe)
	cmd.Env = append(cleanEnv(), hostileEnv+"="+string(raw))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("hostile %s: %v\n%s%s", cfg.Mode, err, out, stderr.String())
		return hostileResult{Err: err.Error()}
	}
	var r hostileResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Errorf("hostile %s: %v\n%s%s", cfg.Mode, err, out, stderr.String())
	}
	t.Logf("hostile %s from %s: %+v", cfg.Mode, cfg.Local, r)
	return r
}

// runHostile is the hostile client's main.
func runHostile(raw string) int {
	var cfg hostileConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := hostileRun(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// waitClosed reads until the connection ends and returns r with Closed
// (the target closed it: EOF or reset), After (seconds since began) and Err
// filled in. The connection's read deadline bounds the wait.
func waitClosed(r hostileResult, began time.Time, read func() error) hostileResult {
	for {
		err := read()
		if err == nil {
			continue
		}
		r.Err = err.Error()
		r.After = time.Since(began).Seconds()
		r.Closed = errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "reset by peer")
		return r
	}
}

func hostileRun(cfg hostileConfig) (hostileResult, error) {
	var r hostileResult
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(cfg.Local)}}
	c, err := d.Dial("tcp", cfg.Target)
	if err != nil {
		return r, err
	}
	defer c.Close()
	const limit = 30 * time.Second // longer than anything the target should take
	c.SetDeadline(time.Now().Add(limit))
	buf := make([]byte, 4096)
	rawRead := func() error { _, err := c.Read(buf); return err }

	switch cfg.Mode {
	case modeGarbage:
		g := make([]byte, 70000) // more than any length prefix can ask for
		rand.Read(g)
		g[0], g[1] = 0xff, 0xff // not the 32-byte first message
		began := time.Now()
		go c.Write(g)
		return waitClosed(r, began, rawRead), nil

	case modeGarbage3:
		msg1 := make([]byte, 2+32)
		binary.BigEndian.PutUint16(msg1, 32)
		rand.Read(msg1[2:]) // any 32 bytes are an ephemeral key
		if _, err := c.Write(msg1); err != nil {
			return r, err
		}
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return r, fmt.Errorf("no second handshake message: %w", err)
		}
		if n := binary.BigEndian.Uint16(hdr[:]); n < 98 || n > 98+31 {
			return r, fmt.Errorf("second handshake message of %d bytes", n)
		} else if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return r, fmt.Errorf("no second handshake message: %w", err)
		}
		msg3 := make([]byte, 2+66)
		binary.BigEndian.PutUint16(msg3, 66)
		rand.Read(msg3[2:])
		began := time.Now()
		if _, err := c.Write(msg3); err != nil {
			return r, err
		}
		return waitClosed(r, began, rawRead), nil

	case modeSilent, modeRefused:
		return waitClosed(r, time.Now(), rawRead), nil
	}

	// A proper link first: a fresh link key, and no limits of our own, so
	// that we can send what the target must refuse.
	key, err := link.NewStatic(nil)
	if err != nil {
		return r, err
	}
	lc, err := link.Client(context.Background(), c, link.Config{Static: key})
	if err != nil {
		return r, fmt.Errorf("handshake: %w", err)
	}
	r.Linked = true
	if cfg.Mode == modeProbe {
		r.Key = hex.EncodeToString(lc.RemoteStatic())
		return r, nil
	}
	c.SetDeadline(time.Now().Add(limit)) // the handshake cleared it
	pong := make(chan struct{}, 1)
	readFrames := func() error {
		typ, _, err := lc.ReadFrame()
		if err == nil && session.FrameType(typ) == session.TypePong {
			select {
			case pong <- struct{}{}:
			default:
			}
		}
		return err
	}
	switch cfg.Mode {
	case modePing, modeFlood, modeSpam:
		// Read in the background (the target may push envelopes and Pings),
		// and wait for the Pong, which comes after everything sent before
		// the Ping was handled.
		closed := make(chan hostileResult, 1)
		go func() { closed <- waitClosed(hostileResult{}, time.Now(), readFrames) }()
		if cfg.Mode == modeFlood || cfg.Mode == modeSpam {
			raws := randomEnvelopes
			if cfg.Mode == modeSpam {
				raws = unstampedPosts
			}
			for _, raw := range raws(cfg.Flood, cfg.Size) {
				if err := lc.WriteFrame(byte(session.TypeEnvelope), raw); err != nil {
					r.Err = err.Error()
					return r, nil
				}
				r.Sent++
			}
		}
		// The target handles frames in order, so its Pong means it took
		// everything sent before the Ping (storing it may take a moment).
		if err := lc.WriteFrame(byte(session.TypePing), nil); err != nil {
			r.Err = err.Error()
			return r, nil
		}
		select {
		case <-pong:
			r.Pong = true
		case cr := <-closed:
			r.Closed, r.Err, r.After = cr.Closed, cr.Err, cr.After
		case <-time.After(limit):
		}
		return r, nil
	case modeBadType:
		began := time.Now()
		if err := lc.WriteFrame(0xee, []byte("what is this")); err != nil {
			return r, err
		}
		return waitClosed(r, began, readFrames), nil
	case modeOversize:
		p := make([]byte, session.MaxPayload(session.TypeWant)+envelope.IDSize) // one ID too many
		rand.Read(p)
		began := time.Now()
		if err := lc.WriteFrame(byte(session.TypeWant), p); err != nil {
			return r, err
		}
		return waitClosed(r, began, readFrames), nil
	}
	return r, fmt.Errorf("unknown mode %q", cfg.Mode)
}

// randomEnvelopes seals n envelopes of size random content bytes for
// nobody: random key, tag and commitment, a day to live, 5 hops.
func randomEnvelopes(n, size int) [][]byte {
	expiry := uint32(time.Now().Add(24 * time.Hour).Unix())
	out := make([][]byte, 0, n)
	content := make([]byte, size)
	for range n {
		s := envelope.Sealing{Expiry: expiry, Hops: 5}
		rand.Read(s.Key[:])
		rand.Read(s.Tag[:])
		rand.Read(s.Commit[:])
		rand.Read(content)
		e, err := envelope.Seal(s, content)
		if err != nil {
			panic(err)
		}
		out = append(out, e.Marshal())
	}
	return out
}

// unstampedPosts makes n public posts (SPEC §15.11) of size random body bytes
// whose stamps fall short of even the lowest difficulty a channel may set:
// what a spammer sends who will not pay for stamps.
func unstampedPosts(n, size int) [][]byte {
	expiry := uint32(time.Now().Add(time.Hour).Unix())
	out := make([][]byte, 0, n)
	for range n {
		e := envelope.Envelope{Kind: envelope.KindPublic, Hops: 3, Expiry: expiry, Body: make([]byte, max(size, envelope.Overhead))}
		rand.Read(e.Nonce[:])
		rand.Read(e.Tag[:])
		rand.Read(e.Body)
		raw := e.Marshal()
		for room.CheckStamp(raw, room.MinStampBits) == nil {
			raw[6]++ // the nonce's first byte: this one happened to be a valid stamp
		}
		out = append(out, raw)
	}
	return out
}

// writeBundle writes envelopes to a bundle file and returns their IDs.
func writeBundle(t *testing.T, path string, raws [][]byte) map[string]bool {
	t.Helper()
	ids := make(map[string]bool, len(raws))
	n, err := bundle.WriteFile(path, func(put func([]byte) error) error {
		for _, raw := range raws {
			if err := put(raw); err != nil {
				return err
			}
			ids[envelope.ComputeID(raw).String()] = true
		}
		return nil
	})
	if err != nil || n != len(raws) || len(ids) != len(raws) {
		t.Fatalf("bundle: %d written, %d IDs, %v", n, len(ids), err)
	}
	return ids
}
