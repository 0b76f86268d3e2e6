package bundle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// encode writes envs as a complete bundle and returns the bytes and the
// offset just past each record (offsets[i] = end of record i).
func encode(t testing.TB, envs [][]byte) ([]byte, []int) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	offs := make([]int, len(envs))
	pos := headerLen
	for i, e := range envs {
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
		pos += recordPrefix + len(e) + recordTrail
		offs[i] = pos
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Count() != len(envs) {
		t.Fatalf("Count = %d, want %d", w.Count(), len(envs))
	}
	if want := pos + endRecordLen; buf.Len() != want {
		t.Fatalf("bundle is %d bytes, want %d", buf.Len(), want)
	}
	return buf.Bytes(), offs
}

// decode reads data, copying out every yielded envelope.
func decode(t testing.TB, data []byte) ([][]byte, Report, error) {
	t.Helper()
	var got [][]byte
	rep, err := Read(bytes.NewReader(data), func(e []byte) error {
		if len(e) == 0 || len(e) > MaxEnvelope {
			t.Fatalf("yielded envelope of %d bytes", len(e))
		}
		got = append(got, bytes.Clone(e))
		return nil
	})
	if rep.Envelopes != len(got) {
		t.Fatalf("Report.Envelopes = %d but %d yielded", rep.Envelopes, len(got))
	}
	return got, rep, err
}

// randomEnvelopes makes n deterministic envelopes none of which contains the
// sync marker (so damage tests have exactly one resynchronisation point).
func randomEnvelopes(seed uint64, n int, size func(r *rand.Rand) int) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	envs := make([][]byte, n)
	for i := range envs {
		for {
			e := make([]byte, size(r))
			for j := range e {
				e[j] = byte(r.Uint32())
			}
			if !bytes.Contains(e, syncMarker[:]) {
				envs[i] = e
				break
			}
		}
	}
	return envs
}

func equalEnvs(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d envelopes, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("envelope %d differs (got %d bytes, want %d)", i, len(got[i]), len(want[i]))
		}
	}
}

// accounted checks that every input byte is the header, an intact record,
// the end record or a skipped byte.
func accounted(t *testing.T, data []byte, envs [][]byte, rep Report, endFound bool) {
	t.Helper()
	n := int64(headerLen) + rep.SkippedBytes
	for _, e := range envs {
		n += int64(recordPrefix + len(e) + recordTrail)
	}
	if endFound {
		n += endRecordLen
	}
	if n != int64(len(data)) {
		t.Fatalf("accounted for %d bytes of %d (report %+v)", n, len(data), rep)
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := func(r *rand.Rand) int {
		if r.IntN(10) == 0 {
			return 1 + r.IntN(MaxEnvelope)
		}
		return 1 + r.IntN(1024)
	}
	big := randomEnvelopes(1, 1000, sizes)
	big[0] = []byte{0x42}                            // minimum size
	big[1] = bytes.Repeat([]byte{0xA5}, MaxEnvelope) // maximum size
	big[2] = append([]byte(nil), syncMarker[:]...)   // payload that is a sync marker
	for _, envs := range [][][]byte{nil, {[]byte("one envelope")}, big} {
		t.Run(fmt.Sprint(len(envs)), func(t *testing.T) {
			data, _ := encode(t, envs)
			got, rep, err := decode(t, data)
			if err != nil {
				t.Fatal(err)
			}
			equalEnvs(t, got, envs)
			want := Report{Envelopes: len(envs), Complete: true}
			if rep != want {
				t.Fatalf("report %+v, want %+v", rep, want)
			}
		})
	}
}

// TestOneByteReads checks that Read does not depend on how the underlying
// reader splits its data.
func TestOneByteReads(t *testing.T) {
	envs := randomEnvelopes(2, 20, func(r *rand.Rand) int { return 1 + r.IntN(3000) })
	data, offs := encode(t, envs)
	data[offs[3]+recordPrefix+5] ^= 1 // damage record 4
	var got [][]byte
	rep, err := Read(iotestOneByte{bytes.NewReader(data)}, func(e []byte) error {
		got = append(got, bytes.Clone(e))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([][]byte{}, envs[:4]...), envs[5:]...)
	equalEnvs(t, got, want)
	if rep.Damaged != 1 || rep.Complete {
		t.Fatalf("report %+v", rep)
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func smallBundle(t *testing.T) ([][]byte, []byte, []int) {
	sizes := []int{1, 17, 300, 4, 50}
	r := rand.New(rand.NewPCG(3, 4))
	envs := randomEnvelopes(3, len(sizes), func(*rand.Rand) int { return 0 })
	for i, n := range sizes {
		_ = r
		envs[i] = randomEnvelopes(uint64(10+i), 1, func(*rand.Rand) int { return n })[0]
	}
	data, offs := encode(t, envs)
	return envs, data, offs
}

func TestTruncation(t *testing.T) {
	envs, data, offs := smallBundle(t)
	for cut := 0; cut <= len(data); cut++ {
		got, rep, err := decode(t, data[:cut])
		if cut < len(magic) {
			if !errors.Is(err, ErrNotBundle) {
				t.Fatalf("cut %d: err = %v, want ErrNotBundle", cut, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		n := 0
		for n < len(offs) && offs[n] <= cut {
			n++
		}
		equalEnvs(t, got, envs[:n])
		if cut == len(data) {
			if rep != (Report{Envelopes: len(envs), Complete: true}) {
				t.Fatalf("uncut: report %+v", rep)
			}
			continue
		}
		if rep.Complete {
			t.Fatalf("cut %d: Complete is true", cut)
		}
		atBoundary := cut <= headerLen || (n > 0 && offs[n-1] == cut)
		if atBoundary != (rep.Damaged == 0) || (rep.Damaged == 0) != (rep.SkippedBytes == 0) || rep.Damaged > 1 {
			t.Fatalf("cut %d: report %+v", cut, rep)
		}
		if cut >= headerLen {
			accounted(t, data[:cut], got, rep, false)
		}
	}
}

func TestDamage(t *testing.T) {
	envs, data, offs := smallBundle(t)
	start := func(k int) int {
		if k == 0 {
			return headerLen
		}
		return offs[k-1]
	}
	type damage struct {
		name string
		f    func(b []byte, k int)
	}
	setLen := func(n uint32) func([]byte, int) {
		return func(b []byte, k int) { binary.BigEndian.PutUint32(b[start(k)+4:], n) }
	}
	cases := []damage{
		{"payload first byte", func(b []byte, k int) { b[start(k)+recordPrefix] ^= 0x01 }},
		{"payload last byte", func(b []byte, k int) { b[offs[k]-recordTrail-1] ^= 0x80 }},
		{"crc", func(b []byte, k int) { b[offs[k]-1] ^= 0x10 }},
		{"length bit flip", func(b []byte, k int) { b[start(k)+7] ^= 0x02 }},
		{"length zero", setLen(0)},
		{"length too big", setLen(MaxEnvelope + 1)},
		{"length huge", setLen(0xFFFFFFFF)},
		{"length max in range", setLen(MaxEnvelope)},
		{"length past end of file", setLen(uint32(len(data)))},
		{"sync marker first byte", func(b []byte, k int) { b[start(k)] ^= 0xFF }},
		{"sync marker last byte", func(b []byte, k int) { b[start(k)+3] ^= 0x01 }},
	}
	for _, c := range cases {
		for k := range envs {
			t.Run(fmt.Sprintf("%s/record%d", c.name, k), func(t *testing.T) {
				b := bytes.Clone(data)
				c.f(b, k)
				got, rep, err := decode(t, b)
				if err != nil {
					t.Fatal(err)
				}
				want := append(append([][]byte{}, envs[:k]...), envs[k+1:]...)
				equalEnvs(t, got, want)
				if rep.Damaged < 1 || rep.Complete || rep.SkippedBytes == 0 {
					t.Fatalf("report %+v", rep)
				}
				accounted(t, b, got, rep, true)
			})
		}
	}
}

func TestDamageEverywhere(t *testing.T) {
	// Flip every single byte after the header in turn: Read never fails,
	// never yields a payload that was not written, and loses at most the
	// one record containing the byte.
	envs, data, offs := smallBundle(t)
	written := map[string]bool{}
	for _, e := range envs {
		written[string(e)] = true
	}
	for i := headerLen; i < len(data); i++ {
		b := bytes.Clone(data)
		b[i] ^= 0x5A
		got, rep, err := decode(t, b)
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		for _, e := range got {
			if !written[string(e)] {
				t.Fatalf("byte %d: yielded an envelope that was never written", i)
			}
		}
		wantN := len(envs)
		if i < offs[len(offs)-1] {
			wantN--
		}
		if len(got) != wantN {
			t.Fatalf("byte %d: got %d envelopes, want %d", i, len(got), wantN)
		}
		if rep.Complete || rep.Damaged < 1 {
			t.Fatalf("byte %d: report %+v", i, rep)
		}
	}
}

func TestInsertedGarbageAndTrailingData(t *testing.T) {
	envs, data, offs := smallBundle(t)
	garbage := []byte("some junk that is not a record")
	b := append(append(append([]byte{}, data[:offs[1]]...), garbage...), data[offs[1]:]...)
	got, rep, err := decode(t, b)
	if err != nil {
		t.Fatal(err)
	}
	equalEnvs(t, got, envs)
	want := Report{Envelopes: len(envs), Damaged: 1, SkippedBytes: int64(len(garbage)), Complete: true}
	if rep != want {
		t.Fatalf("inserted: report %+v, want %+v", rep, want)
	}

	b = append(bytes.Clone(data), garbage...)
	got, rep, err = decode(t, b)
	if err != nil {
		t.Fatal(err)
	}
	equalEnvs(t, got, envs)
	if rep != want {
		t.Fatalf("trailing: report %+v, want %+v", rep, want)
	}
}

func TestEndRecordCountMismatch(t *testing.T) {
	envs, data, _ := smallBundle(t)
	// Drop the last record but keep the end record (count 5).
	last := len(data) - endRecordLen - (recordPrefix + len(envs[4]) + recordTrail)
	b := append(bytes.Clone(data[:last]), data[len(data)-endRecordLen:]...)
	got, rep, err := decode(t, b)
	if err != nil {
		t.Fatal(err)
	}
	equalEnvs(t, got, envs[:4])
	if rep != (Report{Envelopes: 4}) {
		t.Fatalf("report %+v", rep)
	}
}

func TestNotBundle(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	valid, _ := encode(t, [][]byte{[]byte("x")})
	crlf := bytes.ReplaceAll(valid, []byte("\n"), []byte("\r\n"))
	lf := bytes.ReplaceAll(valid, []byte("\r\n"), []byte("\n"))
	cases := map[string][]byte{
		"empty":         {},
		"garbage":       garbage,
		"text":          []byte("This is a text file.\nIt is not a bundle.\n"),
		"short":         magic[:5],
		"lf to crlf":    crlf,
		"crlf to lf":    lf,
		"high bit lost": append([]byte{0x09}, valid[1:]...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			called := false
			_, err := Read(bytes.NewReader(data), func([]byte) error { called = true; return nil })
			if !errors.Is(err, ErrNotBundle) {
				t.Fatalf("err = %v, want ErrNotBundle", err)
			}
			if called {
				t.Fatal("fn called for a non-bundle")
			}
		})
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(path, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path, func([]byte) error { return nil })
	if !errors.Is(err, ErrNotBundle) || !strings.Contains(err.Error(), path) {
		t.Fatalf("ReadFile err = %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), func([]byte) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestWrongVersion(t *testing.T) {
	data, _ := encode(t, [][]byte{[]byte("x")})
	data[len(magic)] = 2
	_, err := Read(bytes.NewReader(data), func([]byte) error { t.Fatal("fn called"); return nil })
	if !errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrNotBundle) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("error does not name the version: %v", err)
	}
}

func TestFnError(t *testing.T) {
	envs, data, _ := smallBundle(t)
	stop := errors.New("stop")
	n := 0
	rep, err := Read(bytes.NewReader(data), func([]byte) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 || rep.Envelopes != 3 || rep.Complete {
		t.Fatalf("err=%v n=%d rep=%+v", err, n, rep)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "b.gvb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(path, func([]byte) error { return stop })
	if err != stop {
		t.Fatalf("ReadFile should return fn's error unwrapped, got %v", err)
	}
	var got [][]byte
	rep, err = ReadFile(path, func(e []byte) error { got = append(got, bytes.Clone(e)); return nil })
	if err != nil || !rep.Complete {
		t.Fatalf("ReadFile: %v %+v", err, rep)
	}
	equalEnvs(t, got, envs)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReaderError(t *testing.T) {
	data, _ := encode(t, [][]byte{[]byte("x")})
	r := io.MultiReader(bytes.NewReader(data[:20]), errReader{})
	_, err := Read(r, func([]byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(nil); err == nil {
		t.Fatal("empty envelope accepted")
	}
	if err := w.Add(make([]byte, MaxEnvelope+1)); err == nil {
		t.Fatal("oversized envelope accepted")
	}
	if err := w.Add([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if w.Count() != 1 {
		t.Fatalf("Count = %d", w.Count())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("late")); err == nil {
		t.Fatal("Add after Close accepted")
	}
	if err := w.Close(); err == nil {
		t.Fatal("second Close accepted")
	}
	if _, err := NewWriter(failWriter{}); err == nil {
		t.Fatal("NewWriter ignored write error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("full") }

// TestBoundedMemory streams 64 MiB of hostile input (a header, a record
// claiming the maximum length, then zeros) and checks Read's allocations
// stay near its fixed buffer.
func TestBoundedMemory(t *testing.T) {
	const size = 64 << 20
	hdr := append(append([]byte{}, magic[:]...), Version)
	rec := append(append([]byte{}, syncMarker[:]...), 0xFF, 0xFF, 0xFF, 0xFF)
	mk := func() io.Reader {
		return io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(rec), io.LimitReader(zeros{}, size))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep, err := Read(mk(), func([]byte) error { t.Fatal("fn called"); return nil })
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Report{Damaged: 1, SkippedBytes: int64(len(rec)) + size}); rep != want {
		t.Fatalf("report %+v, want %+v", rep, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("Read allocated %d bytes", alloc)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestWriteFile(t *testing.T) {
	envs, want, _ := smallBundle(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gvb")
	n, err := WriteFile(path, func(put func([]byte) error) error {
		for _, e := range envs {
			if err := put(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || n != len(envs) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file content differs from Writer output")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	onlyFiles(t, dir, "out.gvb")

	// Overwriting an existing file works and keeps 0600 even if the old
	// file was more permissive.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(path, func(put func([]byte) error) error { return put([]byte("new")) }); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(path)
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("overwrite: mode %v, want 0600", fi.Mode().Perm())
	}
	onlyFiles(t, dir, "out.gvb")
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	boom := errors.New("boom")
	failures := map[string]func(put func([]byte) error) error{
		"add error": func(put func([]byte) error) error {
			put([]byte("a"))
			return boom
		},
		"add error before any put": func(func([]byte) error) error { return boom },
		"invalid envelope": func(put func([]byte) error) error {
			put([]byte("a"))
			return put(nil)
		},
		"invalid envelope ignored by add": func(put func([]byte) error) error {
			put(make([]byte, MaxEnvelope+1))
			return nil
		},
	}
	for name, add := range failures {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.gvb")
			if n, err := WriteFile(path, add); err == nil || n != 0 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			onlyFiles(t, dir)

			// An existing file is untouched.
			old := []byte("precious old content")
			if err := os.WriteFile(path, old, 0o640); err != nil {
				t.Fatal(err)
			}
			if _, err := WriteFile(path, add); err == nil {
				t.Fatal("no error")
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, old) {
				t.Fatalf("existing file changed: %q %v", got, err)
			}
			onlyFiles(t, dir, "out.gvb")
		})
	}

	t.Run("put after add returned", func(t *testing.T) {
		dir := t.TempDir()
		var saved func([]byte) error
		if _, err := WriteFile(filepath.Join(dir, "x"), func(put func([]byte) error) error { saved = put; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := saved([]byte("late")); err == nil {
			t.Fatal("late put accepted")
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := WriteFile(filepath.Join(dir, "nope", "x"), func(func([]byte) error) error { return nil }); err == nil {
			t.Fatal("no error")
		}
	})
}

func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) && !(len(got) == 0 && len(names) == 0) {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}

func FuzzRead(f *testing.F) {
	envs := [][]byte{[]byte("a"), []byte("hello"), bytes.Repeat([]byte{7}, 300)}
	data, offs := encode(f, envs)
	f.Add(data)
	f.Add(data[:offs[1]+3])
	bad := bytes.Clone(data)
	bad[offs[0]+6] ^= 1
	f.Add(bad)
	f.Add([]byte{})
	f.Add([]byte("not a bundle"))
	f.Add(append(append([]byte{}, magic[:]...), Version))
	f.Add(append(append(append([]byte{}, magic[:]...), Version), syncMarker[:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got [][]byte
		rep, err := Read(bytes.NewReader(data), func(e []byte) error {
			if len(e) == 0 || len(e) > MaxEnvelope {
				t.Fatalf("yielded envelope of %d bytes", len(e))
			}
			got = append(got, bytes.Clone(e))
			return nil
		})
		if rep.Envelopes != len(got) || rep.Damaged < 0 || rep.SkippedBytes < 0 || (rep.Damaged == 0) != (rep.SkippedBytes == 0) {
			t.Fatalf("report %+v with %d yielded", rep, len(got))
		}
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("error %v after yielding", err)
			}
			return
		}
		if len(data) < headerLen {
			return
		}
		// Every byte is header, record, end record or skipped.
		n := int64(headerLen) + rep.SkippedBytes
		for _, e := range got {
			n += int64(recordPrefix + len(e) + recordTrail)
		}
		if n != int64(len(data)) && n+endRecordLen != int64(len(data)) {
			t.Fatalf("accounted for %d of %d bytes: %+v", n, len(data), rep)
		}
		// Re-encoding what was yielded reads back identically.
		if len(got) > 0 {
			re, _ := encode(t, got)
			again, rep2, err := decode(t, re)
			if err != nil || !rep2.Complete || len(again) != len(got) {
				t.Fatalf("re-encode: %v %+v", err, rep2)
			}
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello world"), []byte{2, 3})
	f.Add([]byte{0}, []byte{})
	f.Add(bytes.Repeat([]byte{0xFB, 0x1D, 0xC5, 0x7E}, 100), []byte{1, 0, 255})
	f.Fuzz(func(t *testing.T, data []byte, sizes []byte) {
		// Split data into envelopes: chunk i is 1 + sizes[i]^2 bytes
		// (cycling through sizes), or at most MaxEnvelope.
		var envs [][]byte
		for i := 0; len(data) > 0; i++ {
			n := MaxEnvelope
			if len(sizes) > 0 {
				s := int(sizes[i%len(sizes)])
				n = 1 + s*s
			}
			n = min(n, len(data))
			envs = append(envs, data[:n])
			data = data[n:]
		}
		enc, _ := encode(t, envs)
		got, rep, err := decode(t, enc)
		if err != nil {
			t.Fatal(err)
		}
		equalEnvs(t, got, envs)
		if rep != (Report{Envelopes: len(envs), Complete: true}) {
			t.Fatalf("report %+v", rep)
		}
	})
}

const benchN = 10000

func benchEnvelopes() [][]byte {
	return randomEnvelopes(7, benchN, func(*rand.Rand) int { return 200 })
}

func BenchmarkWrite(b *testing.B) {
	envs := benchEnvelopes()
	var buf bytes.Buffer
	iters := 0
	for b.Loop() {
		buf.Reset()
		w, err := NewWriter(&buf)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range envs {
			if err := w.Add(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		iters++
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportMetric(float64(iters*benchN)/b.Elapsed().Seconds(), "envelopes/s")
}

func BenchmarkRead(b *testing.B) {
	data, _ := encode(b, benchEnvelopes())
	b.SetBytes(int64(len(data)))
	iters := 0
	for b.Loop() {
		rep, err := Read(bytes.NewReader(data), func([]byte) error { return nil })
		if err != nil || rep.Envelopes != benchN || !rep.Complete {
			b.Fatal(err, rep)
		}
		iters++
	}
	b.ReportMetric(float64(iters*benchN)/b.Elapsed().Seconds(), "envelopes/s")
}

func TestCreate(t *testing.T) {
	envs, want, _ := smallBundle(t)
	add := func(put func([]byte) error) error {
		for _, e := range envs {
			if err := put(e); err != nil {
				return err
			}
		}
		return nil
	}
	dir := t.TempDir()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	o := CreateOptions{Now: func() time.Time { return at }}

	// A new file.
	path := filepath.Join(dir, "out.gvb")
	if got, n, err := Create(path, o, add); err != nil || got != path || n != len(envs) {
		t.Fatalf("Create = %s, %d, %v", got, n, err)
	}
	// Not over an existing one, without Replace: it stays as it was.
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Create(path, o, add); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "exists and is not replaced") {
		t.Errorf("Create over a file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("the existing file became %q", b)
	}
	// With Replace, yes.
	if _, _, err := Create(path, CreateOptions{Replace: true}, add); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, want) {
		t.Error("the replaced file is not the bundle")
	}

	// Into a directory, under a new name each time.
	usb := filepath.Join(dir, "usb")
	os.Mkdir(usb, 0o755)
	for i, name := range []string{"grapevine-20260304-050607.gvb", "grapevine-20260304-050607-2.gvb", "grapevine-20260304-050607-3.gvb"} {
		got, _, err := Create(usb+string(filepath.Separator), o, add)
		if err != nil || got != filepath.Join(usb, name) {
			t.Errorf("export %d into a directory: %s, %v; want %s", i, got, err, name)
		}
	}
	onlyFiles(t, usb, "grapevine-20260304-050607-2.gvb", "grapevine-20260304-050607-3.gvb", "grapevine-20260304-050607.gvb")

	// Never over anything but a regular file, even with Replace.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err == nil {
		if _, _, err := Create(link, CreateOptions{Replace: true}, add); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "a symbolic link") {
			t.Errorf("Create over a symlink: %v", err)
		}
	}
	if runtime.GOOS != "windows" {
		fifo := filepath.Join(dir, "fifo")
		if err := mkfifo(fifo); err == nil {
			if _, _, err := Create(fifo, CreateOptions{Replace: true}, add); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "a named pipe") {
				t.Errorf("Create over a named pipe: %v", err)
			}
		}
		if _, _, err := Create("/dev/null", CreateOptions{Replace: true}, add); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "a device") {
			t.Errorf("Create over /dev/null: %v", err)
		}
	}
	if _, _, err := Create(filepath.Join(dir, "nope", "x.gvb"), o, add); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Create in a missing directory: %v", err)
	}
	if _, _, err := Create(filepath.Join(path, "x.gvb"), o, add); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Create under a file: %v", err)
	}

	// A killed writer's temporary file is removed by the next Create once
	// stale; a fresh one (a writer at work) stays.
	tmpDir := filepath.Join(dir, "tmp")
	os.Mkdir(tmpDir, 0o755)
	stale := filepath.Join(tmpDir, ".grapevine-export-123.tmp")
	fresh := filepath.Join(tmpDir, ".grapevine-export-456.tmp")
	other := filepath.Join(tmpDir, ".other.tmp")
	for _, p := range []string{stale, fresh, other} {
		os.WriteFile(p, []byte("partial"), 0o600)
	}
	old := at.Add(-StaleTemp - time.Minute)
	os.Chtimes(stale, old, old)
	os.Chtimes(other, old, old)
	os.Chtimes(fresh, at, at)
	if _, _, err := Create(filepath.Join(tmpDir, "b.gvb"), o, add); err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, tmpDir, ".grapevine-export-456.tmp", ".other.tmp", "b.gvb")
}
