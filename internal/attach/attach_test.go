package attach

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

func content(label string, n int) []byte { return testkit.Stream(label, n) }

func prepare(t testing.TB, data []byte, o Options) *File {
	t.Helper()
	if o.Limits.MaxFileSize == 0 {
		o.Limits.MaxFileSize = MaxFileSize
	}
	f, err := Prepare(bytes.NewReader(data), int64(len(data)), o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sealAll(t testing.TB, f *File) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range f.Manifest().Chunks {
		raw, err := f.Seal(i, 1800000000, 12)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// transmitted parses the manifest as the recipient would, from its bytes.
func transmitted(t testing.TB, f *File) *Manifest {
	t.Helper()
	m, err := ParseManifest(f.Manifest().Marshal(), Limits{MaxFileSize: MaxFileSize})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoundTripAnyOrderManySources(t *testing.T) {
	for _, size := range []int{0, 1, 5, plainSize - 1, plainSize, plainSize + 1, 2 * (plainSize - 32), 200_000, 1 << 20} {
		data := content("file", size)
		f := prepare(t, data, Options{MediaType: "image/jpeg", Name: "photo.jpg", Receipts: size%2 == 0})
		chunks := sealAll(t, f)
		m := transmitted(t, f)
		if len(chunks) != m.Chunks {
			t.Fatalf("%d bytes: %d chunks sealed, manifest says %d", size, len(chunks), m.Chunks)
		}
		st := NewMemStorage()
		a, err := NewAssembler(m, st)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(size), 1))
		for k, i := range r.Perm(len(chunks)) {
			if len(chunks[i]) != envelope.ChunkSize {
				t.Fatalf("chunk %d is %d bytes, want %d", i, len(chunks[i]), envelope.ChunkSize)
			}
			got, err := a.Add(chunks[i], []string{"B", "D", "E"}[k%3])
			if err != nil || got != i {
				t.Fatalf("%d bytes: chunk %d: %d, %v", size, i, got, err)
			}
		}
		p := a.Progress()
		if p.Have != m.Chunks || p.Total != m.Chunks || p.Sources != min(3, m.Chunks) {
			t.Fatalf("%d bytes: progress %v", size, p)
		}
		if err := a.Finish(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(st.Committed, data) {
			t.Fatalf("%d bytes: reassembled file differs", size)
		}
	}
}

func TestChunkSizeAndOverhead(t *testing.T) {
	// Every chunk envelope is ChunkSize bytes, and per-chunk wire overhead —
	// envelope header and AEAD tag, Merkle path, link frame (19 bytes) and
	// the chunk's receipt in its own frame — stays under 3 % up to the
	// protocol's ceiling.
	for _, size := range []int64{1, DefaultMaxFileSize, 100 << 20, MaxFileSize} {
		c, n, d, err := Layout(size)
		if err != nil {
			t.Fatal(err)
		}
		wire := float64(envelope.ChunkSize+19+envelope.ReceiptSize+19) / float64(c)
		t.Logf("%d bytes: %d chunks of %d, depth %d, overhead %.2f %%", size, n, c, d, 100*(wire-1))
		if wire > 1.03 {
			t.Fatalf("%d bytes: per-chunk overhead %.2f %%", size, 100*(wire-1))
		}
		if int64(n)*int64(c) < size || int64(n-1)*int64(c) >= max(size, 1) {
			t.Fatalf("%d bytes: %d chunks of %d do not cut it", size, n, c)
		}
	}
	if _, _, _, err := Layout(MaxFileSize + 1); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

func expectErr(t *testing.T, err error, target error, words ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want %v", err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not say %q", err, w)
		}
	}
}

func TestAdversarialChunks(t *testing.T) {
	data := content("adversarial", 5*plainSize)
	f := prepare(t, data, Options{Receipts: true})
	chunks := sealAll(t, f)
	m := transmitted(t, f)
	newAsm := func() *Assembler {
		a, err := NewAssembler(m, NewMemStorage())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("flipped byte", func(t *testing.T) {
		a := newAsm()
		for _, pos := range []int{0, 6, 21, 22, 37, 38, 100, envelope.ChunkSize / 2, envelope.ChunkSize - 1} {
			bad := bytes.Clone(chunks[2])
			bad[pos] ^= 0x01
			_, err := a.Add(bad, "relay")
			switch {
			case pos == 0:
				expectErr(t, err, ErrMalformed)
			case pos < 22: // the tag: no longer any chunk's
				expectErr(t, err, ErrForeign, "tag")
			default: // commitment, body: the AEAD
				expectErr(t, err, ErrForged, "chunk 2")
			}
		}
		// The hop budget and the expiry are outside the AEAD (so a sender can
		// re-send with a later expiry): a copy with another expiry is another
		// envelope that opens as the same chunk, stored once.
		later := bytes.Clone(chunks[2])
		later[5]++
		if _, err := a.Add(later, "relay"); err != nil {
			t.Fatal(err)
		}
		_, err := a.Add(chunks[2], "relay")
		expectErr(t, err, ErrDuplicate, "chunk 2")
		if a.Progress().Have != 1 {
			t.Fatal("a duplicate counted")
		}
	})

	t.Run("chunk from another file", func(t *testing.T) {
		other := prepare(t, data, Options{Receipts: true}) // same bytes, another key
		raw, err := other.Seal(1, 1800000000, 12)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newAsm().Add(raw, "relay")
		expectErr(t, err, ErrForeign, "none of this file's")
	})

	t.Run("truncated file", func(t *testing.T) {
		a := newAsm()
		for _, raw := range chunks[:len(chunks)-1] {
			if _, err := a.Add(raw, "relay"); err != nil {
				t.Fatal(err)
			}
		}
		err := a.Finish()
		expectErr(t, err, ErrIncomplete, "missing 1 of 6", "5 (the last)")
		if got := a.Missing(); len(got) != 1 || got[0] != 5 {
			t.Fatal(got)
		}
	})

	t.Run("reordered chunk index", func(t *testing.T) {
		// A relay moves chunk 1 to index 3 by giving it chunk 3's tag and
		// commitment: the AEAD (nonce and associated data) refuses it.
		bad := bytes.Clone(chunks[1])
		copy(bad[6:38], chunks[3][6:38])
		_, err := newAsm().Add(bad, "relay")
		expectErr(t, err, ErrForged, "chunk 3", "sealed as another chunk")
		// Someone holding the file key (a room member) seals chunk 1's data
		// and path as chunk 3: it opens, but is not under the root at 3.
		ks := f.Keys()
		path := make([]byte, HashSize*depthOf(m.Chunks))
		for l := range depthOf(m.Chunks) {
			sib := f.levels[l][(1>>l)^1]
			copy(path[l*HashSize:], sib[:])
		}
		forged := SealChunk(ks, 3, path, data[m.ChunkSize:2*m.ChunkSize], 1800000000, 12)
		_, err = newAsm().Add(forged, "member")
		expectErr(t, err, ErrNotInFile, "chunk 3", "root")
	})

	t.Run("key holder forges content or padding", func(t *testing.T) {
		ks := f.Keys()
		raw := SealChunk(ks, 2, make([]byte, HashSize*depthOf(m.Chunks)), []byte("not the file"), 1800000000, 12)
		_, err := newAsm().Add(raw, "member")
		expectErr(t, err, ErrNotInFile, "chunk 2")
		last := m.Chunks - 1
		path := []byte{}
		for l := range depthOf(m.Chunks) {
			sib := f.levels[l][(last>>l)^1]
			path = append(path, sib[:]...)
		}
		padded := append(bytes.Clone(data[last*m.ChunkSize:]), 1)
		_, err = newAsm().Add(SealChunk(ks, last, path, padded, 1800000000, 12), "member")
		expectErr(t, err, ErrNotInFile, "padding")
	})

	t.Run("not a chunk", func(t *testing.T) {
		_, err := newAsm().Add(chunks[0][:envelope.ChunkSize-1], "relay")
		expectErr(t, err, ErrMalformed, "32704")
		s := envelope.Sealing{Expiry: 1800000000}
		e, err := envelope.Seal(s, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = newAsm().Add(e.Marshal(), "relay")
		expectErr(t, err, ErrMalformed, "sealed")
	})

	t.Run("damaged in storage", func(t *testing.T) {
		st := NewMemStorage()
		a, _ := NewAssembler(m, st)
		for _, raw := range chunks {
			a.Add(raw, "relay")
		}
		st.WriteAt([]byte{0xff}, int64(4*m.ChunkSize+7))
		expectErr(t, a.Finish(), ErrDamaged, "[4]", "wanted again")
		if got := a.Missing(); len(got) != 1 || got[0] != 4 {
			t.Fatal(got)
		}
		if _, err := a.Add(chunks[4], "relay"); err != nil {
			t.Fatal(err)
		}
		if err := a.Finish(); err != nil || !bytes.Equal(st.Committed, data) {
			t.Fatal(err)
		}
	})
}

func TestResumeAcrossRestarts(t *testing.T) {
	data := content("resume", 10*plainSize+123)
	f := prepare(t, data, Options{Name: "report.pdf", MediaType: "application/pdf"})
	chunks := sealAll(t, f)
	m := transmitted(t, f)
	dest := filepath.Join(t.TempDir(), "report.pdf")

	st, err := NewFileStorage(dest)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAssembler(m, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{9, 0, 4, 10} {
		if _, err := a.Add(chunks[i], "B"); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	a.Add(chunks[5], "B") // not synced: lost at the "crash"
	st.Close()
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("destination exists before the file is complete")
	}

	st, err = NewFileStorage(dest)
	if err != nil {
		t.Fatal(err)
	}
	a, err = NewAssembler(m, st)
	if err != nil {
		t.Fatal(err)
	}
	if p := a.Progress(); p.Have != 4 || p.Resumed != 4 || p.Sources != 0 {
		t.Fatalf("resumed %v", p)
	}
	for i, raw := range chunks {
		_, err := a.Add(raw, []string{"C", "D"}[i%2])
		if errors.Is(err, ErrDuplicate) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := a.Progress(); p.String() != "11 of 11 chunks from 2 sources (4 resumed)" {
		t.Fatal(p)
	}
	if err := a.Finish(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("file differs", err)
	}
	for _, suffix := range []string{PartSuffix, StateSuffix, StateSuffix + ".tmp"} {
		if _, err := os.Stat(dest + suffix); err == nil {
			t.Fatalf("%s left behind", suffix)
		}
	}
	// A state for another manifest is not taken for this one's.
	other := transmitted(t, prepare(t, data, Options{}))
	ms := NewMemStorage()
	a2, _ := NewAssembler(m, ms)
	a2.Add(chunks[0], "B")
	a2.Sync()
	a3, _ := NewAssembler(other, ms)
	if a3.Progress().Have != 0 {
		t.Fatal("progress carried over to another file")
	}
}

func TestManifestStrict(t *testing.T) {
	f := prepare(t, content("m", 100_000), Options{MediaType: "audio/ogg", Name: "note.ogg", Receipts: true})
	good := f.Manifest().Marshal()
	lim := Limits{}
	if m, err := ParseManifest(good, lim); err != nil || m.Name != "note.ogg" || m.MediaType != "audio/ogg" || !m.Receipts {
		t.Fatal(m, err)
	}
	edit := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	cases := []struct {
		name  string
		b     []byte
		lim   Limits
		err   error
		words string
	}{
		{"oversized", append(bytes.Clone(good), make([]byte, MaxManifestSize)...), lim, ErrManifest, "longest 470"},
		{"trailing", append(bytes.Clone(good), 0), lim, ErrManifest, "after the file name"},
		{"short", good[:80], lim, ErrManifest, "shortest"},
		{"version", edit(func(b []byte) []byte { b[0] = 2; return b }), lim, ErrManifest, "version 2"},
		{"flags", edit(func(b []byte) []byte { b[1] |= 4; return b }), lim, ErrManifest, "flags"},
		{"size over limit", edit(func(b []byte) []byte { b[2] = 1; return b }), lim, ErrTooLarge, "limit"},
		{"size over a lower limit", good, Limits{MaxFileSize: 1000}, ErrTooLarge, "the limit is 1000"},
		{"chunk size", edit(func(b []byte) []byte { b[13]++; return b }), lim, ErrManifest, "chunk size"},
		{"chunk count", edit(func(b []byte) []byte { b[17]++; return b }), lim, ErrManifest, "chunk count"},
		{"media type", edit(func(b []byte) []byte { b[87] = 'A'; return b }), lim, ErrManifest, "media type"},
		{"media type length", edit(func(b []byte) []byte { b[86] = 0; return b }), lim, ErrManifest, "media type of 0"},
		{"name unsanitised", edit(func(b []byte) []byte { b[len(b)-8] = '/'; return b }), lim, ErrManifest, "sanitised"},
		{"name runs past", edit(func(b []byte) []byte { b[len(b)-9]++; return b }), lim, ErrManifest, "runs past"},
	}
	for _, c := range cases {
		_, err := ParseManifest(c.b, c.lim)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.words) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Limits: 100 MiB is settable, and bounds the chunk count.
	big := Limits{MaxFileSize: 100 << 20}
	if n := big.MaxChunks(); n != 3250 {
		t.Fatalf("100 MiB: %d chunks", n)
	}
	if n := (Limits{}).MaxChunks(); n != 519 {
		t.Fatalf("16 MiB: %d chunks", n)
	}
	if _, err := Prepare(bytes.NewReader(nil), DefaultMaxFileSize+1, Options{}); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

func TestSanitiseName(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg":                    "photo.jpg",
		"../../etc/passwd":             "passwd",
		`C:\Users\a\evil.exe`:          "evil.exe",
		"..":                           "",
		".hidden":                      "hidden",
		"name. ":                       "name",
		"a\x00b\nc":                    "a_b_c",
		"report\u202Egpj.exe":          "report_gpj.exe",
		"zero\u200Bwidth":              "zero_width",
		"bad\xffutf8":                  "bad_utf8",
		`what?<>:"|*`:                  "what_______",
		"Ünïcödé 写真.png":               "Ünïcödé 写真.png",
		strings.Repeat("é", 200):       strings.Repeat("é", 127),
		strings.Repeat("a", 254) + "é": strings.Repeat("a", 254),
	} {
		if got := SanitiseName(in); got != want {
			t.Errorf("SanitiseName(%q) = %q, want %q", in, got, want)
		}
	}
}
