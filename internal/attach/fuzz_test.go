package attach

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

func FuzzParseManifest(f *testing.F) {
	fl := prepare(f, content("fuzz", 70_000), Options{MediaType: "image/jpeg", Name: "a.jpg", Receipts: true})
	f.Add(fl.Manifest().Marshal())
	f.Add(prepare(f, nil, Options{}).Manifest().Marshal())
	f.Add(make([]byte, MaxManifestSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b, Limits{MaxFileSize: MaxFileSize})
		if err != nil {
			return
		}
		if !bytes.Equal(m.Marshal(), b) {
			t.Fatal("parse then marshal changed the bytes")
		}
		if m.Size > MaxFileSize || m.Chunks < 1 || len(b) > MaxManifestSize {
			t.Fatal("limits not enforced")
		}
	})
}

// FuzzManifestRoundTrip builds manifests from fuzzed fields: whatever
// ParseManifest accepts of their encoding decodes to the same manifest.
func FuzzManifestRoundTrip(f *testing.F) {
	f.Add(int64(5), uint32(1), "text/plain", "a.txt", true, []byte{1})
	f.Add(int64(1<<20), uint32(0), "audio/ogg", "", false, []byte{})
	f.Fuzz(func(t *testing.T, size int64, created uint32, mt, name string, receipts bool, key []byte) {
		c, n, _, err := Layout(size)
		if err != nil {
			return
		}
		m := Manifest{Size: size, ChunkSize: c, Chunks: n, Created: created, MediaType: mt, Name: SanitiseName(name),
			Receipts: receipts}
		copy(m.Key[:], key)
		copy(m.Root[:], key)
		if len(m.MediaType) > 255 {
			return
		}
		got, err := ParseManifest(m.Marshal(), Limits{MaxFileSize: MaxFileSize})
		if err != nil {
			if checkMediaType(mt) == nil && len(m.Name) <= MaxNameSize {
				t.Fatalf("a valid manifest was refused: %v", err)
			}
			return
		}
		if *got != m {
			t.Fatalf("round trip: %+v != %+v", *got, m)
		}
	})
}

func FuzzSanitiseName(f *testing.F) {
	for _, s := range []string{"a.jpg", "../x", "\u202e", strings.Repeat("é", 200), ". .", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := SanitiseName(s)
		if SanitiseName(n) != n {
			t.Fatalf("not idempotent: %q → %q → %q", s, n, SanitiseName(n))
		}
		if !utf8.ValidString(n) || len(n) > MaxNameSize || strings.ContainsAny(n, "/\\\x00") ||
			strings.HasPrefix(n, ".") || n == ".." {
			t.Fatalf("unsafe name %q from %q", n, s)
		}
	})
}

// FuzzOpenChunk edits a genuine chunk anywhere: only edits of the hop
// budget and the expiry leave a chunk that opens, and nothing panics.
func FuzzOpenChunk(f *testing.F) {
	data := content("fuzz chunk", 3*plainSize)
	fl := prepare(f, data, Options{Receipts: true})
	ks := NewKeys(fl.Manifest())
	genuine, err := fl.Seal(1, 1800000000, 12)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(0), []byte{1}, false)
	f.Add(uint16(40), []byte{0x80}, false)
	f.Add(uint16(envelope.ChunkSize-1), []byte{1}, true)
	f.Fuzz(func(t *testing.T, pos uint16, delta []byte, cut bool) {
		bad := bytes.Clone(genuine)
		for j, d := range delta {
			if int(pos)+j < len(bad) {
				bad[int(pos)+j] ^= d
			}
		}
		if cut {
			bad = bad[:int(pos)%len(bad)]
		}
		o, err := ks.Open(bad)
		if err != nil {
			return
		}
		if len(bad) != len(genuine) || !bytes.Equal(bad[6:], genuine[6:]) || bad[0] != genuine[0] {
			t.Fatalf("an edited chunk opened (%d bytes at %d)", len(delta), pos)
		}
		if o.Index != 1 || !bytes.Equal(o.Data, data[fl.m.ChunkSize:2*fl.m.ChunkSize]) {
			t.Fatal("opened as the wrong chunk")
		}
	})
}

// FuzzOpenRaw hands arbitrary bytes to Open.
func FuzzOpenRaw(f *testing.F) {
	fl := prepare(f, content("raw", 10), Options{})
	ks := NewKeys(fl.Manifest())
	raw, _ := fl.Seal(0, 1, 1)
	f.Add(raw)
	f.Add(raw[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ks.Open(b); err == nil && !bytes.Equal(b[6:], raw[6:]) {
			t.Fatal("arbitrary bytes opened")
		}
	})
}

func FuzzParseState(f *testing.F) {
	fl := prepare(f, content("state", 5*plainSize), Options{})
	m := fl.Manifest()
	s := newState(m)
	s.Have[1], s.Have[4] = true, true
	s.Leaves[1][0] = 7
	f.Add(s.Marshal())
	f.Add(newState(m).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseState(b, m)
		if err != nil {
			return
		}
		if !bytes.Equal(st.Marshal(), b) {
			t.Fatal("parse then marshal changed the bytes")
		}
	})
}
