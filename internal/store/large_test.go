package store

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestLargeValues: an item of LargeValue bytes or more is kept in a bucket
// of its own in the file, and reads, replaces, deletes, iterates, reopens,
// compacts and checks exactly as one stored in place; an item that grows or
// shrinks across the size moves between the two forms.
func TestLargeValues(t *testing.T) { forBackends(t, testLargeValues) }

func testLargeValues(t *testing.T, be backend) {
	s := be.create(t, testOpts(nil))
	exp := time.Now().Add(time.Hour)
	big := func(b byte) string { return string(bytes.Repeat([]byte{b}, 40<<10)) }
	want := map[string]string{"big": big(1), "small": "a text", "grow": big(2), "shrink": "shrunk"}
	put := func(key, v string) {
		t.Helper()
		if err := s.Update(func(tx *Tx) error { return tx.Put("files", []byte(key), []byte(v), exp) }); err != nil {
			t.Fatal(err)
		}
	}
	put("big", want["big"])
	put("small", want["small"])
	put("grow", "small first")
	put("grow", want["grow"])
	put("shrink", big(3))
	put("shrink", want["shrink"])
	put("gone", big(4))
	if err := s.Update(func(tx *Tx) error { return tx.Delete("files", []byte("gone")) }); err != nil {
		t.Fatal(err)
	}
	same := func(s *Store, when string) {
		t.Helper()
		for k, v := range want {
			if got, ok := getString(t, s, "files", k); !ok || got != v {
				t.Errorf("%s: %s holds %d bytes (present %v), want %d", when, k, len(got), ok, len(v))
			}
		}
		if _, ok := getString(t, s, "files", "gone"); ok {
			t.Errorf("%s: a deleted large item is still there", when)
		}
		if n := len(allValues(t, s, "files")); n != len(want) || count(t, s, "files") != len(want) {
			t.Errorf("%s: ForEach gives %d items, Count %d, want %d", when, n, count(t, s, "files"), len(want))
		}
	}
	same(s, "written")
	file, ok := s.db.(*boltDB)
	if !ok {
		return // the memory backend: no file
	}
	dir := filepath.Dir(file.path)
	if got := nestedItems(t, s); got != 2 {
		t.Errorf("%d items in buckets of their own, want 2 (big, grow)", got)
	}
	s = be.reopen(t, s, testOpts(nil))
	same(s, "reopened")
	if _, _, err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	same(s, "compacted")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(dir, testPass)
	if err != nil || !rep.OK() || rep.Colls["files"] != len(want) {
		t.Fatalf("Check: %v %+v", err, rep)
	}
}

// nestedItems counts the items of s's file kept in buckets of their own.
func nestedItems(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.(*boltDB).db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketItems)).ForEach(func(k, v []byte) error {
			if v == nil {
				n++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLargeValueDamage: Check finds a large item that does not
// authenticate, and a bucket of a large item that holds anything but its
// value alone; Repair keeps every large item that authenticates.
func TestLargeValueDamage(t *testing.T) {
	for _, c := range []struct {
		name string
		harm func(b *bolt.Bucket, key []byte) error
		want func(*CheckReport) bool
		kept int
	}{
		{"flipped byte", func(b *bolt.Bucket, key []byte) error {
			v := bytes.Clone(b.Get(key))
			v[len(v)/2] ^= 1
			return b.Put(key, v)
		}, func(r *CheckReport) bool { return len(r.Damaged) == 1 && len(r.Pages) == 0 }, 2},
		{"second entry", func(b *bolt.Bucket, key []byte) error {
			return b.Put([]byte("another key of 16"), []byte("x"))
		}, func(r *CheckReport) bool { return len(r.Pages) == 1 }, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "home")
			s := mustCreate(t, dir, testOpts(nil))
			err := s.Update(func(tx *Tx) error {
				for i := range 3 {
					if err := tx.Put("files", fmt.Appendf(nil, "f%d", i), bytes.Repeat([]byte{byte(i)}, 20<<10), time.Now().Add(time.Hour)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			rawUpdate(t, dir, func(tx *bolt.Tx) error {
				items := tx.Bucket([]byte(bucketItems))
				k, _ := items.Cursor().First()
				return c.harm(items.Bucket(k), k)
			})
			rep, err := Check(dir, testPass)
			if err != nil || rep.OK() || !c.want(rep) {
				t.Fatalf("Check: %v %+v", err, rep)
			}
			if _, err := Repair(dir, testPass, time.Now()); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, dir, testOpts(nil))
			defer s.Close()
			if n := count(t, s, "files"); n != c.kept || nestedItems(t, s) != c.kept {
				t.Errorf("after Repair, %d large items (%d in buckets of their own), want %d", n, nestedItems(t, s), c.kept)
			}
		})
	}
}

// BenchmarkLargeValues writes 5,000 values of a chunk envelope's size
// (32,705 bytes: a flag byte and the envelope), a hundred a transaction,
// under random keys, into a file store, in buckets of their own (own-bucket,
// LargeValue) and, side by side, in place as before (in-place). It reports
// the bytes written to the file per byte of stored value (on Linux) and the
// MB of values stored per second.
func BenchmarkLargeValues(b *testing.B) {
	for _, c := range []struct {
		name string
		from int
	}{{"own-bucket", LargeValue}, {"in-place", math.MaxInt}} {
		b.Run(c.name, func(b *testing.B) {
			defer func(was int) { largeFrom = was }(largeFrom)
			largeFrom = c.from
			value := make([]byte, 32705)
			var stored, written int64
			for b.Loop() {
				b.StopTimer()
				s := mustCreate(b, filepath.Join(b.TempDir(), "home"), Options{KDF: TestKDF()})
				before := bytesWritten()
				b.StartTimer()
				for range 50 {
					err := s.Update(func(tx *Tx) error {
						for range 100 {
							key := make([]byte, 32)
							rand.Read(key)
							if err := tx.Put("envelopes", key, value, time.Now().Add(time.Hour)); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				written += bytesWritten() - before
				stored += 5000 * int64(len(value))
				s.Close()
				b.StartTimer()
			}
			if written > 0 {
				b.ReportMetric(float64(written)/float64(stored), "written/stored")
			}
			b.ReportMetric(float64(stored)/1e6/b.Elapsed().Seconds(), "MB/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
