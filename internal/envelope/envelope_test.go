package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/envelope.json"

func testSealing() Sealing {
	var s Sealing
	for i := range s.Key {
		s.Key[i] = byte(i)
	}
	copy(s.Tag[:], bytes.Repeat([]byte{0xaa}, 16))
	var secret [SecretSize]byte
	copy(secret[:], bytes.Repeat([]byte{0x5e}, 16))
	s.Commit = Commitment(secret)
	s.Expiry, s.Hops = 1800000000, 12
	return s
}

func TestSealOpenAndTamper(t *testing.T) {
	s := testSealing()
	e, err := Seal(s, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Marshal()
	if len(raw) != HeaderSize+32+Overhead {
		t.Fatalf("5-byte content sealed to %d bytes", len(raw))
	}
	id := ComputeID(raw)
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x80
		p, err := Parse(bad)
		if err != nil {
			continue
		}
		_, err = Open(s.Key, p, 0)
		if i == 1 { // the hop budget: mutable, outside the ID and the AEAD
			if err != nil || ComputeID(bad) != id {
				t.Fatal("changing the hop budget broke the envelope or its ID")
			}
			continue
		}
		if err == nil {
			t.Fatalf("a flipped bit at byte %d went unnoticed", i)
		}
		if ComputeID(bad) == id {
			t.Fatalf("byte %d is not covered by the ID", i)
		}
	}
}

func TestBucketsHideLength(t *testing.T) {
	s := testSealing()
	sizes := map[int]bool{}
	for n := 0; n <= 100; n++ {
		e, err := Seal(s, bytes.Repeat([]byte("x"), n))
		if err != nil {
			t.Fatal(err)
		}
		sizes[e.Size()] = true
	}
	if len(sizes) != 4 { // buckets 32, 64, 96, 128
		t.Fatalf("0..100-byte contents give %d sizes, want 4: %v", len(sizes), sizes)
	}
	if _, err := Seal(s, make([]byte, MaxBucket)); err == nil {
		t.Fatal("sealed content larger than the largest bucket")
	}
}

func TestIntroIsTheSameSizeAsAMessage(t *testing.T) {
	s := testSealing()
	// A first-contact envelope carries an ML-KEM key (its content is about
	// 1,240 bytes), so it takes the 1,536-byte bucket, where it looks like
	// any message of 1 to 1.5 KB (SPEC.md says so).
	msg, _ := Seal(s, []byte(strings.Repeat("x", 1400)))
	intro, err := SealIntro(s, [32]byte{1}, [32]byte{2}, make([]byte, SenderSize), [32]byte{3}, []byte("short"+strings.Repeat("k", 1230)))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Size() != intro.Size() {
		t.Fatalf("a first-contact envelope (%d B) is distinguishable by size from a message (%d B)", intro.Size(), msg.Size())
	}
	sender, err := OpenIntroSender([32]byte{2}, intro)
	if err != nil || len(sender) != SenderSize {
		t.Fatal(err)
	}
	if c, err := Open([32]byte{3}, intro, IntroPrefixSize); err != nil || !strings.HasPrefix(string(c), "short") {
		t.Fatalf("intro content: %q, %v", c, err)
	}
}

func TestReceiptConfirms(t *testing.T) {
	s := testSealing()
	e, _ := Seal(s, []byte("x"))
	id := e.ID()
	var secret [SecretSize]byte
	copy(secret[:], bytes.Repeat([]byte{0x5e}, 16))
	if r := NewReceipt(id, e.Expiry, secret, 3); !r.Confirms(id, e) || !r.ConfirmsCommit(id, e.Commit) {
		t.Fatal("the genuine receipt does not confirm")
	}
	var forged [SecretSize]byte
	rand.Read(forged[:])
	if NewReceipt(id, e.Expiry, forged, 3).Confirms(id, e) {
		t.Fatal("a forged receipt confirms")
	}
	var other ID
	if NewReceipt(other, e.Expiry, secret, 3).Confirms(id, e) {
		t.Fatal("a receipt for another envelope confirms")
	}
}

type envVector struct {
	Comment                   string
	Key, Tag, Secret, Content string
	Expiry                    uint32
	Hops                      uint8
	// Outputs.
	Commit, Envelope, ID, Receipt string
}

func (v envVector) compute(t *testing.T) envVector {
	var s Sealing
	copy(s.Key[:], mustHex(t, v.Key))
	copy(s.Tag[:], mustHex(t, v.Tag))
	var secret [SecretSize]byte
	copy(secret[:], mustHex(t, v.Secret))
	s.Commit, s.Expiry, s.Hops = Commitment(secret), v.Expiry, v.Hops
	e, err := Seal(s, mustHex(t, v.Content))
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Marshal()
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := Open(s.Key, p, 0); err != nil || !bytes.Equal(c, mustHex(t, v.Content)) {
		t.Fatalf("%s: does not open: %v", v.Comment, err)
	}
	v.Commit = hex.EncodeToString(s.Commit[:])
	v.Envelope = hex.EncodeToString(raw)
	v.ID = ComputeID(raw).String()
	v.Receipt = hex.EncodeToString(NewReceipt(ComputeID(raw), v.Expiry, secret, v.Hops).Marshal())
	return v
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnvelopeVectors(t *testing.T) {
	vs := testkit.Vectors(t, vectorsPath, func() []envVector {
		k := hex.EncodeToString(bytes.Repeat([]byte{0x42}, 32))
		seeds := []envVector{
			{Comment: "empty content", Key: k, Tag: strings.Repeat("aa", 16), Secret: strings.Repeat("5e", 16), Content: "", Expiry: 1800000000, Hops: 12},
			{Comment: "text content of 100 characters (type 1, time, text)", Key: k, Tag: strings.Repeat("01", 16), Secret: strings.Repeat("02", 16),
				Content: "0169235c00" + hex.EncodeToString([]byte(strings.Repeat("x", 100))), Expiry: 1800000060, Hops: 3},
		}
		var out []envVector
		for _, v := range seeds {
			out = append(out, v.compute(t))
		}
		return out
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, want := range vs {
		if got := want.compute(t); got != want {
			t.Errorf("%s: computed %+v", want.Comment, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	s := testSealing()
	e, _ := Seal(s, []byte("seed"))
	f.Add(e.Marshal())
	f.Add(NewReceipt(e.ID(), 1, [16]byte{}, 1).Marshal())
	f.Add([]byte{0x10})
	pub := &Envelope{Kind: KindPublic, Hops: 2, Expiry: 7, Nonce: [8]byte{1}, Tag: [16]byte{2}, Body: make([]byte, 16)}
	f.Add(pub.Marshal())
	pub.Kind = KindAnnounce
	f.Add(pub.Marshal())
	chunk := &Envelope{Kind: KindChunk, Hops: 12, Expiry: 7, Tag: [16]byte{3}, Body: make([]byte, ChunkSize-HeaderSize)}
	f.Add(chunk.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, kindOK := KindOf(b)
		e, err := Parse(b)
		if err != nil {
			return
		}
		if !kindOK || kind != e.Kind {
			t.Fatalf("KindOf says %v, %v; Parse %v", kind, kindOK, e.Kind)
		}
		if !bytes.Equal(e.Marshal(), b) {
			t.Fatal("parse then marshal changed the bytes")
		}
		if e.Size() != len(b) || ComputeID(b) != e.ID() {
			t.Fatal("size or ID disagree")
		}
		Open(s.Key, e, 0) // must not panic
		OpenIntroSender(s.Key, e)
	})
}

func FuzzUnpad(f *testing.F) {
	p, _ := Pad([]byte("hello"), 0)
	f.Add(p)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Unpad(b)
		if err != nil {
			return
		}
		if len(b) == 0 {
			t.Fatal("empty input unpadded")
		}
		// Exactly one padded form per content and size: re-padding to the
		// same length gives the same bytes.
		again, err := Pad(c, 0)
		if err == nil && len(again) == len(b) && !bytes.Equal(again, b) {
			t.Fatal("two padded forms of one content")
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	s := testSealing()
	text := []byte(strings.Repeat("x", 100))
	for b.Loop() {
		if _, err := Seal(s, text); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

func BenchmarkOpen(b *testing.B) {
	s := testSealing()
	e, _ := Seal(s, []byte(strings.Repeat("x", 100)))
	raw := e.Marshal()
	for b.Loop() {
		p, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(s.Key, p, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

func TestChunkKind(t *testing.T) {
	c := &Envelope{Kind: KindChunk, Hops: 12, Expiry: 1800000000, Tag: [16]byte{1}, Body: make([]byte, ChunkSize-HeaderSize)}
	var secret [SecretSize]byte
	secret[0] = 9
	c.Commit = Commitment(secret)
	raw := c.Marshal()
	if raw[0] != 0x24 || len(raw) != ChunkSize {
		t.Fatalf("%#x, %d bytes", raw[0], len(raw))
	}
	e, err := Parse(raw)
	if err != nil || e.Kind != KindChunk || e.Kind.Stamped() || e.Kind.String() != "chunk" {
		t.Fatal(e, err)
	}
	for _, n := range []int{ChunkSize - 1, HeaderSize + Overhead} {
		if _, err := Parse(raw[:n]); err == nil || !strings.Contains(err.Error(), "chunk") {
			t.Fatalf("a chunk of %d bytes: %v", n, err)
		}
	}
	if _, err := Parse(append(bytes.Clone(raw), 0)); err == nil {
		t.Fatal("a longer chunk parsed")
	}
	other := bytes.Clone(raw)
	SetHops(other, 3)
	if ComputeID(other) != ComputeID(raw) {
		t.Fatal("the hop budget changes a chunk's ID")
	}
	if r := NewReceipt(e.ID(), e.Expiry, secret, 3); !r.Confirms(e.ID(), e) {
		t.Fatal("a receipt does not confirm a chunk")
	}
}
