package link

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net"
	"sync"
	"testing"

	"github.com/flynn/noise"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/link.json"

// linkVector is one link: both ends' keys, the three handshake messages and
// the first frames each way, as they appear on the wire. Byte strings are hex.
type linkVector struct {
	Comment  string `json:"comment"`
	Protocol string
	Prologue string
	// Inputs: private keys. The ephemeral private key is the first 32 bytes
	// the handshake draws from its random source; the padding randomness
	// what it draws next (SPEC §10.2): the responder one length byte, the
	// initiator a length byte, message 1's padding, a length byte.
	InitiatorStaticPriv, InitiatorEphemeralPriv, InitiatorPadRand string
	ResponderStaticPriv, ResponderEphemeralPriv, ResponderPadRand string
	// Outputs.
	InitiatorStaticPub, ResponderStaticPub string
	// Each message with its 2-byte big-endian length prefix.
	Message1, Message2, Message3 string
	// The handshake hash, ChannelBinding at both ends.
	HandshakeHash string
	// Frames in the order they are written; each direction counts its own
	// nonces from 0.
	Frames []frameVector
}

type frameVector struct {
	From    string // "initiator" or "responder"
	Type    byte
	Payload string // input
	Wire    string // output: length (2) || ciphertext
}

func seedVectors() []linkVector {
	h := func(b byte) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	hs := func(s string) string { return hex.EncodeToString([]byte(s)) }
	return []linkVector{
		{
			Comment:             "short frames each way, an empty one, and a second frame to show the nonce advancing",
			InitiatorStaticPriv: h(0x01), InitiatorEphemeralPriv: h(0x02), InitiatorPadRand: "00" + "00",
			ResponderStaticPriv: h(0x03), ResponderEphemeralPriv: h(0x04), ResponderPadRand: "00",
			Frames: []frameVector{
				{From: "initiator", Type: 1, Payload: hs("hello, neighbour")},
				{From: "responder", Type: 2, Payload: ""},
				{From: "initiator", Type: 1, Payload: hs("second")},
				{From: "responder", Type: 255, Payload: hex.EncodeToString(payloadOf(256, 0))},
			},
		},
		{
			Comment:             "other keys; one frame each way, the responder's of 1000 bytes",
			InitiatorStaticPriv: h(0x11), InitiatorEphemeralPriv: h(0x12),
			InitiatorPadRand:    "e3" + "0102030405" + "3f",                                       // 0xe3 & 31 = 3 bytes of padding, then 31
			ResponderStaticPriv: h(0x13), ResponderEphemeralPriv: h(0x14), ResponderPadRand: "11", // 17
			Frames: []frameVector{
				{From: "initiator", Type: 0, Payload: hs("x")},
				{From: "responder", Type: 3, Payload: hex.EncodeToString(payloadOf(1000, 0x5a))},
			},
		},
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tapConn records every Write, one entry per call.
type tapConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// compute fills v's outputs by running Client and Server over net.Pipe.
func (v linkVector) compute(t testing.TB) linkVector {
	t.Helper()
	v.Protocol, v.Prologue = Protocol, Prologue
	ik := testKeyFrom(t, unhex(t, v.InitiatorStaticPriv))
	rk := testKeyFrom(t, unhex(t, v.ResponderStaticPriv))
	v.InitiatorStaticPub = hex.EncodeToString(ik.Public)
	v.ResponderStaticPub = hex.EncodeToString(rk.Public)

	a, b := net.Pipe()
	ta, tb := &tapConn{Conn: a}, &tapConn{Conn: b}
	initiator, responder := link(t, ta, tb,
		Config{Static: ik, Rand: bytes.NewReader(unhex(t, v.InitiatorEphemeralPriv+v.InitiatorPadRand))},
		Config{Static: rk, Rand: bytes.NewReader(unhex(t, v.ResponderEphemeralPriv+v.ResponderPadRand))})
	if len(ta.writes) != 2 || len(tb.writes) != 1 {
		t.Fatalf("handshake took %d and %d writes, want 2 and 1", len(ta.writes), len(tb.writes))
	}
	v.Message1 = hex.EncodeToString(ta.writes[0])
	v.Message2 = hex.EncodeToString(tb.writes[0])
	v.Message3 = hex.EncodeToString(ta.writes[1])
	v.HandshakeHash = hex.EncodeToString(initiator.ChannelBinding())

	v.Frames = append([]frameVector(nil), v.Frames...)
	for i, f := range v.Frames {
		w, r, tap := initiator, responder, ta
		if f.From == "responder" {
			w, r, tap = responder, initiator, tb
		}
		payload := unhex(t, f.Payload)
		go w.WriteFrame(f.Type, payload)
		typ, got, err := r.ReadFrame()
		if err != nil || typ != f.Type || !bytes.Equal(got, payload) {
			t.Fatalf("frame %d: type %d, %d bytes, %v", i, typ, len(got), err)
		}
		tap.mu.Lock()
		v.Frames[i].Wire = hex.EncodeToString(tap.writes[len(tap.writes)-1])
		tap.mu.Unlock()
	}
	return v
}

func testKeyFrom(t testing.TB, priv []byte) noise.DHKey {
	t.Helper()
	k, err := NewStatic(bytes.NewReader(priv))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// checkRaw recomputes v with flynn/noise directly, following SPEC.md rather
// than this package's code: each message is its length then the Noise
// message, message 1's payload is the padding drawn, the hellos are 02 00
// and zeros, and a frame is its length then
// Encrypt(type || payload) with empty associated data.
func checkRaw(t *testing.T, v linkVector) {
	t.Helper()
	newHS := func(initiator bool, static, eph string) *noise.HandshakeState {
		hs, err := noise.NewHandshakeState(noise.Config{
			CipherSuite:   noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s),
			Random:        bytes.NewReader(unhex(t, eph)),
			Pattern:       noise.HandshakeXX,
			Initiator:     initiator,
			Prologue:      []byte("grapevine link v2"),
			StaticKeypair: testKeyFrom(t, unhex(t, static)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	ini := newHS(true, v.InitiatorStaticPriv, v.InitiatorEphemeralPriv)
	res := newHS(false, v.ResponderStaticPriv, v.ResponderEphemeralPriv)
	lp := func(m []byte) string {
		return hex.EncodeToString(append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...))
	}
	iPad, rPad := unhex(t, v.InitiatorPadRand), unhex(t, v.ResponderPadRand)
	n1 := int(iPad[0] & 31)
	pad1, n3 := iPad[1:1+n1], int(iPad[1+n1]&31)
	hello2 := append([]byte{0x02, 0x00}, make([]byte, rPad[0]&31)...)
	hello3 := append([]byte{0x02, 0x00}, make([]byte, n3)...)

	m1, _, _, err := ini.WriteMessage(nil, pad1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := res.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, _, _, err := res.WriteMessage(nil, hello2)
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _, err := ini.ReadMessage(nil, m2); err != nil || !bytes.Equal(p, hello2) {
		t.Fatal(p, err)
	}
	m3, iSend, iRecv, err := ini.WriteMessage(nil, hello3)
	if err != nil {
		t.Fatal(err)
	}
	p, rRecv, rSend, err := res.ReadMessage(nil, m3)
	if err != nil || !bytes.Equal(p, hello3) {
		t.Fatal(p, err)
	}
	if lp(m1) != v.Message1 || lp(m2) != v.Message2 || lp(m3) != v.Message3 {
		t.Errorf("%s: handshake messages differ from a direct flynn/noise run", v.Comment)
	}
	if len(m1) != 32+n1 || len(m2) != 98+int(rPad[0]&31) || len(m3) != 66+n3 {
		t.Errorf("message sizes %d, %d, %d; SPEC says 32, 98, 66 plus the padding", len(m1), len(m2), len(m3))
	}
	if hex.EncodeToString(ini.ChannelBinding()) != v.HandshakeHash || hex.EncodeToString(res.ChannelBinding()) != v.HandshakeHash {
		t.Errorf("%s: handshake hash differs", v.Comment)
	}
	for i, f := range v.Frames {
		send, recv := iSend, rRecv
		if f.From == "responder" {
			send, recv = rSend, iRecv
		}
		plain := append([]byte{f.Type}, unhex(t, f.Payload)...)
		rec, err := send.Encrypt(nil, nil, plain)
		if err != nil {
			t.Fatal(err)
		}
		if lp(rec) != f.Wire {
			t.Errorf("%s: frame %d differs from a direct flynn/noise run", v.Comment, i)
		}
		if got, err := recv.Decrypt(nil, nil, rec); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("frame %d does not decrypt: %v", i, err)
		}
	}
}

func TestVectors(t *testing.T) {
	vs := testkit.Vectors(t, vectorsPath, func() []linkVector {
		var vs []linkVector
		for _, v := range seedVectors() {
			vs = append(vs, v.compute(t))
		}
		return vs
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		if v.Protocol != Protocol || v.Prologue != Prologue {
			t.Errorf("%s: vector is for %s / %q", v.Comment, v.Protocol, v.Prologue)
		}
		got := v.compute(t)
		if gb, _ := json.Marshal(got); !bytes.Equal(gb, mustJSON(t, v)) {
			t.Errorf("%s: implementation disagrees with %s (rerun with -update only if the change is intended)", v.Comment, vectorsPath)
			diffVectors(t, v, got)
		}
		checkRaw(t, v)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diffVectors(t *testing.T, want, got linkVector) {
	t.Helper()
	for _, f := range []struct{ name, w, g string }{
		{"InitiatorStaticPub", want.InitiatorStaticPub, got.InitiatorStaticPub},
		{"ResponderStaticPub", want.ResponderStaticPub, got.ResponderStaticPub},
		{"Message1", want.Message1, got.Message1},
		{"Message2", want.Message2, got.Message2},
		{"Message3", want.Message3, got.Message3},
		{"HandshakeHash", want.HandshakeHash, got.HandshakeHash},
	} {
		if f.w != f.g {
			t.Errorf("  %s:\n    file %s\n    got  %s", f.name, f.w, f.g)
		}
	}
	for i := range min(len(want.Frames), len(got.Frames)) {
		if want.Frames[i].Wire != got.Frames[i].Wire {
			t.Errorf("  Frames[%d].Wire differs", i)
		}
	}
}
