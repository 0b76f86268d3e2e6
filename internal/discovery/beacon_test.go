package discovery

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/beacon.json"

// beaconVector is one datagram and what Decode makes of it: Error is "" for
// a valid beacon (then Port and Value are set) or names the rejection.
type beaconVector struct {
	Comment  string
	Datagram string // hex
	Error    string `json:",omitempty"` // "size", "magic", "version", "port"
	Port     uint16 `json:",omitempty"`
	Value    string `json:",omitempty"` // hex, 16 bytes
}

var errNames = map[error]string{ErrSize: "size", ErrMagic: "magic", ErrVersion: "version", ErrPort: "port"}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorInputs are the datagrams of testdata/vectors/beacon.json; -update
// recomputes the expected results from Decode.
func vectorInputs() []beaconVector {
	v := Beacon{Port: 7342, Value: [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}
	good := v.Marshal()
	hi := Beacon{Port: 65535, Value: [16]byte{0: 0xff, 15: 0x01}}.Marshal()
	lo := Beacon{Port: 1}.Marshal()
	mod := func(f func(p []byte) []byte) string {
		return hex.EncodeToString(f(append([]byte(nil), good...)))
	}
	return []beaconVector{
		{Comment: "default port 7342", Datagram: hex.EncodeToString(good)},
		{Comment: "port 65535", Datagram: hex.EncodeToString(hi)},
		{Comment: "port 1, all-zero value", Datagram: hex.EncodeToString(lo)},
		{Comment: "empty datagram", Datagram: ""},
		{Comment: "one byte short", Datagram: mod(func(p []byte) []byte { return p[:20] })},
		{Comment: "one byte too long", Datagram: mod(func(p []byte) []byte { return append(p, 0) })},
		{Comment: "magic only", Datagram: "4756"},
		{Comment: "wrong magic", Datagram: mod(func(p []byte) []byte { p[0] = 'g'; return p })},
		{Comment: "version 0", Datagram: mod(func(p []byte) []byte { p[2] = 0; return p })},
		{Comment: "version 2", Datagram: mod(func(p []byte) []byte { p[2] = 2; return p })},
		{Comment: "port 0", Datagram: mod(func(p []byte) []byte { p[3], p[4] = 0, 0; return p })},
	}
}

func decodeVector(t *testing.T, in beaconVector) beaconVector {
	out := beaconVector{Comment: in.Comment, Datagram: in.Datagram}
	b, err := Decode(mustHex(t, in.Datagram))
	if err != nil {
		name, ok := errNames[err]
		if !ok {
			t.Fatalf("%s: unexpected error %v", in.Comment, err)
		}
		out.Error = name
		return out
	}
	out.Port = b.Port
	out.Value = hex.EncodeToString(b.Value[:])
	return out
}

func TestVectors(t *testing.T) {
	vs := testkit.Vectors(t, vectorsPath, func() []beaconVector {
		var vs []beaconVector
		for _, in := range vectorInputs() {
			vs = append(vs, decodeVector(t, in))
		}
		return vs
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	valid := 0
	for _, v := range vs {
		if got := decodeVector(t, v); got != v {
			t.Errorf("%s:\n got %+v\nwant %+v", v.Comment, got, v)
		}
		if v.Error == "" {
			valid++
			var b Beacon
			b.Port = v.Port
			copy(b.Value[:], mustHex(t, v.Value))
			if got := hex.EncodeToString(b.Marshal()); got != v.Datagram {
				t.Errorf("%s: Marshal = %s, want %s", v.Comment, got, v.Datagram)
			}
		}
	}
	if valid == 0 {
		t.Error("no valid beacon among the vectors")
	}
}

func TestMarshalLayout(t *testing.T) {
	b := Beacon{Port: 0x1cae, Value: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	p := b.Marshal()
	want := []byte{'G', 'V', 1, 0x1c, 0xae, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if !bytes.Equal(p, want) || len(p) != BeaconSize {
		t.Fatalf("Marshal = %x, want %x", p, want)
	}
	got, err := Decode(p)
	if err != nil || got != b {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Beacon{Port: 7342, Value: [16]byte{9}}.Marshal()
	cases := []struct {
		name string
		p    []byte
		err  error
	}{
		{"nil", nil, ErrSize},
		{"short", good[:BeaconSize-1], ErrSize},
		{"long", append(append([]byte(nil), good...), 0), ErrSize},
		{"jumbo", make([]byte, 1500), ErrSize},
		{"magic", append([]byte("SY"), good[2:]...), ErrMagic},
		{"version", append([]byte{'G', 'V', 2}, good[3:]...), ErrVersion},
		{"port", append([]byte{'G', 'V', 1, 0, 0}, good[5:]...), ErrPort},
	}
	for _, c := range cases {
		if _, err := Decode(c.p); !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
		}
	}
}

func TestDials(t *testing.T) {
	a := [16]byte{0: 1}
	b := [16]byte{0: 1, 15: 1}
	c := [16]byte{0: 2}
	if !Dials(a, b) || Dials(b, a) {
		t.Error("the smaller value must dial, the larger wait")
	}
	if !Dials(b, c) || Dials(c, b) {
		t.Error("compare from the first byte (big-endian)")
	}
	if Dials(a, a) {
		t.Error("equal values dial nobody")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Beacon{Port: 7342, Value: [16]byte{1, 2, 3}}.Marshal())
	f.Add([]byte("GV"))
	f.Add([]byte{})
	f.Add(append([]byte{'G', 'V', 2, 0, 1}, make([]byte, 16)...))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := Decode(p)
		if err != nil {
			if b != (Beacon{}) {
				t.Fatalf("error %v with a non-zero beacon", err)
			}
			return
		}
		if q := b.Marshal(); !bytes.Equal(q, p) {
			t.Fatalf("round trip: %x -> %+v -> %x", p, b, q)
		}
		if b.Port == 0 {
			t.Fatal("port 0 accepted")
		}
	})
}
