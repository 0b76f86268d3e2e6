package attach

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestWhatARelaySees: chunk envelopes of files of any size are all one
// size; their tags and commitments are distinct and balanced across files
// and within one (nothing but timing and expiry links the chunks of a file);
// files for rooms (no receipts) look like pairwise ones; a chunk sealed
// again with a later expiry is the same chunk; and a receipt purges a
// pairwise chunk while nobody can write one for a room's.
func TestWhatARelaySees(t *testing.T) {
	var all [][]byte
	files := []*File{
		prepare(t, content("relay a", 3*plainSize), Options{Receipts: true}),
		prepare(t, content("relay b", 40*plainSize), Options{Receipts: false}),
		prepare(t, content("relay c", 17), Options{Receipts: true}),
	}
	for _, f := range files {
		all = append(all, sealAll(t, f)...)
	}
	seen := map[[16]byte]bool{}
	var ones [2][128]int
	for _, raw := range all {
		if len(raw) != envelope.ChunkSize {
			t.Fatalf("a chunk of %d bytes", len(raw))
		}
		if k, _ := envelope.KindOf(raw); k != envelope.KindChunk {
			t.Fatal(k)
		}
		for field, off := range []int{6, 22} { // tag, commitment
			var v [16]byte
			copy(v[:], raw[off:])
			if seen[v] {
				t.Fatal("a tag or commitment repeats")
			}
			seen[v] = true
			for bit := range 128 {
				ones[field][bit] += int(v[bit/8] >> (7 - bit%8) & 1)
			}
		}
	}
	n := len(all) // 3 + 41 + 1 = 45 values per bit position: expect 22.5 ± 3.4
	for field := range 2 {
		for bit, c := range ones[field] {
			if c < 5 || c > n-5 {
				t.Fatalf("field %d bit %d set in %d of %d chunks", field, bit, c, n)
			}
		}
	}
	// The same chunk sealed again, later: only the expiry and hops differ.
	a, _ := files[0].Seal(1, 1800000000, 12)
	b, _ := files[0].Seal(1, 1900000000, 3)
	if !bytes.Equal(a[6:], b[6:]) || bytes.Equal(a[2:6], b[2:6]) {
		t.Fatal("resealing changed the chunk")
	}
	// Receipts: the recipient of a pairwise file proves delivery of chunk 1;
	// for a room's file there is no secret.
	ks := files[0].Keys()
	secret, ok := ks.ReceiptSecret(1)
	if !ok {
		t.Fatal("no receipt secret")
	}
	chunk, _ := envelope.Parse(a)
	r := envelope.NewReceipt(envelope.ComputeID(a), chunk.Expiry, secret, 12)
	if !r.Confirms(envelope.ComputeID(a), chunk) {
		t.Fatal("the receipt does not purge the chunk")
	}
	if _, ok := files[1].Keys().ReceiptSecret(0); ok {
		t.Fatal("a room file has receipt secrets")
	}
}

func TestDamagedTemporaryFile(t *testing.T) {
	data := content("cut", 4*plainSize)
	f := prepare(t, data, Options{})
	chunks := sealAll(t, f)
	m := transmitted(t, f)
	dest := t.TempDir() + "/x"
	st, _ := NewFileStorage(dest)
	a, _ := NewAssembler(m, st)
	for _, raw := range chunks {
		a.Add(raw, "B")
	}
	a.Sync()
	// Someone cuts the temporary file: the lost chunks are wanted again.
	if err := os.Truncate(dest+PartSuffix, int64(2*m.ChunkSize)); err != nil {
		t.Fatal(err)
	}
	expectErr(t, a.Finish(), ErrDamaged, "[2 3 4]")
	for _, i := range []int{2, 3, 4} {
		if _, err := a.Add(chunks[i], "C"); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Finish(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("file differs")
	}
}

func TestChunkExpiry(t *testing.T) {
	now := time.Unix(1800000001, 0)
	if got := ChunkExpiry(now, 7*24*time.Hour); got != 1800608400 || got%3600 != 0 || int64(got) < now.Unix()+7*86400 {
		t.Fatal(got)
	}
}

// A reader that says io.EOF with the last bytes (io.ReaderAt allows it).
type eofAtEnd struct{ b []byte }

func (r eofAtEnd) ReadAt(p []byte, off int64) (int, error) {
	n := copy(p, r.b[off:])
	if off+int64(n) == int64(len(r.b)) {
		return n, io.EOF
	}
	return n, nil
}

func TestReaderAtEOF(t *testing.T) {
	data := content("eof", plainSize+10)
	f, err := Prepare(eofAtEnd{data}, int64(len(data)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seal(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(eofAtEnd{data[:10]}, int64(len(data)), Options{}); err == nil {
		t.Fatal("a short file was prepared")
	}
}
