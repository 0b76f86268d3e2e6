package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var testPass = []byte("correct horse battery staple")

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testOpts(clock *fakeClock) Options {
	o := Options{KDF: TestKDF(), LockTimeout: 200 * time.Millisecond}
	if clock != nil {
		o.Now = clock.Now
	}
	return o
}

func mustCreate(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Create(dir, testPass, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s
}

func mustOpen(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, testPass, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// homeHash hashes both files of the store in dir.
func homeHash(t *testing.T, dir string) [2][32]byte {
	t.Helper()
	return [2][32]byte{fileHash(t, filepath.Join(dir, FileName)), fileHash(t, filepath.Join(dir, KeyFileName))}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// rawUpdate edits the bbolt file directly, bypassing the store.
func rawUpdate(t *testing.T, dir string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func getString(t *testing.T, s *Store, coll, key string) (string, bool) {
	t.Helper()
	var v []byte
	var ok bool
	err := s.View(func(tx *Tx) error {
		var err error
		v, _, ok, err = tx.Get(coll, []byte(key))
		return err
	})
	if err != nil {
		t.Fatalf("Get(%s,%s): %v", coll, key, err)
	}
	return string(v), ok
}

func allValues(t *testing.T, s *Store, coll string) []string {
	t.Helper()
	var out []string
	err := s.View(func(tx *Tx) error {
		return tx.ForEach(coll, func(v []byte, _ time.Time) error {
			out = append(out, string(v))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("ForEach(%s): %v", coll, err)
	}
	slices.Sort(out)
	return out
}

func count(t *testing.T, s *Store, coll string) int {
	t.Helper()
	var n int
	if err := s.View(func(tx *Tx) error {
		var err error
		n, err = tx.Count(coll)
		return err
	}); err != nil {
		t.Fatalf("Count(%s): %v", coll, err)
	}
	return n
}

// indexLen counts the expiry index entries through the backend interface.
// A memory store has none: its sweep works from the directory, whose
// entries (one an item held, which it checks) it counts instead.
func indexLen(t *testing.T, s *Store) int {
	t.Helper()
	n, items := 0, 0
	if err := s.db.view(func(tx kvTx) error {
		if b := tx.Bucket(bucketExpiry); b != nil {
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				n++
			}
		}
		c := tx.Bucket(bucketItems).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			items++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s.memory {
		if n != 0 || items != s.dir.total {
			t.Fatalf("memory store: %d expiry index entries, %d items, %d in the directory", n, items, s.dir.total)
		}
		return s.dir.total
	}
	return n
}

func TestRoundTrip(t *testing.T) { forBackends(t, testRoundTrip) }

func testRoundTrip(t *testing.T, be backend) {
	s := be.create(t, testOpts(nil))
	exp := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	err := s.Update(func(tx *Tx) error {
		for _, kv := range [][2]string{{"alice", "A"}, {"bob", "B"}, {"carol", "C"}} {
			if err := tx.Put("contacts", []byte(kv[0]), []byte(kv[1]), Forever); err != nil {
				return err
			}
		}
		if err := tx.Put("envelopes", []byte("e1"), []byte("env one"), exp); err != nil {
			return err
		}
		return tx.Put("envelopes", []byte("empty"), nil, exp)
	})
	if err != nil {
		t.Fatal(err)
	}

	// Returned values are copies valid after the transaction.
	var got []byte
	var gotExp time.Time
	if err := s.View(func(tx *Tx) error {
		v, e, ok, err := tx.Get("envelopes", []byte("e1"))
		if !ok || err != nil {
			return fmt.Errorf("get e1: ok=%v err=%v", ok, err)
		}
		got, gotExp = v, e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "env one" || !gotExp.Equal(exp) {
		t.Fatalf("got %q %v, want %q %v", got, gotExp, "env one", exp)
	}
	if v, ok := getString(t, s, "envelopes", "empty"); !ok || v != "" {
		t.Fatalf("empty value: %q %v", v, ok)
	}

	// Overwrite and delete.
	if err := s.Update(func(tx *Tx) error {
		if err := tx.Put("contacts", []byte("bob"), []byte("B2"), Forever); err != nil {
			return err
		}
		if err := tx.Delete("contacts", []byte("carol")); err != nil {
			return err
		}
		// Deleting something absent is not an error.
		if err := tx.Delete("contacts", []byte("nobody")); err != nil {
			return err
		}
		return tx.Delete("nosuchcollection", []byte("x"))
	}); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		if got, want := allValues(t, s, "contacts"), []string{"A", "B2"}; !slices.Equal(got, want) {
			t.Fatalf("contacts = %q, want %q", got, want)
		}
		if n := count(t, s, "contacts"); n != 2 {
			t.Fatalf("count contacts = %d", n)
		}
		if n := count(t, s, "envelopes"); n != 2 {
			t.Fatalf("count envelopes = %d", n)
		}
		if n := count(t, s, "never-used"); n != 0 {
			t.Fatalf("count never-used = %d", n)
		}
		if _, ok := getString(t, s, "contacts", "carol"); ok {
			t.Fatal("carol still present")
		}
		if _, ok := getString(t, s, "never-used", "carol"); ok {
			t.Fatal("found item in never-used collection")
		}
		// Same key in another collection is a different item.
		if _, ok := getString(t, s, "envelopes", "bob"); ok {
			t.Fatal("bob leaked across collections")
		}
		if err := s.View(func(tx *Tx) error {
			for key, want := range map[string]bool{"alice": true, "bob": true, "carol": false} {
				has, err := tx.Has("contacts", []byte(key))
				if err != nil {
					return err
				}
				if has != want {
					return fmt.Errorf("Has(%s) = %v", key, has)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// 3 live items + 2 envelopes: the index has exactly one entry per item.
		if n := indexLen(t, s); n != 4 {
			t.Fatalf("expiry index has %d entries, want 4", n)
		}
	}
	check(s)
	s = be.reopen(t, s, testOpts(nil))
	defer s.Close()
	check(s)
	if v, ok := getString(t, s, "envelopes", "e1"); !ok || v != "env one" {
		t.Fatalf("after reopen: %q %v", v, ok)
	}
	if sz, err := s.FileSize(); err != nil || sz <= 0 {
		t.Fatalf("FileSize = %d, %v", sz, err)
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "home")
	s := mustCreate(t, dir, testOpts(nil))
	defer s.Close()
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := di.Mode().Perm(); p != 0o700 {
		t.Errorf("dir mode %o, want 700", p)
	}
	for _, name := range []string{FileName, KeyFileName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if p := fi.Mode().Perm(); p != 0o600 {
			t.Errorf("%s mode %o, want 600", name, p)
		}
	}
}

func TestUpdateRollback(t *testing.T) { forBackends(t, testUpdateRollback) }

func testUpdateRollback(t *testing.T, be backend) {
	s := be.create(t, testOpts(nil))
	defer s.Close()
	mustUpdate(t, s, func(tx *Tx) error {
		return errorsJoin(tx.Put("c", []byte("old"), []byte("v"), Forever), tx.Put("d", []byte("gone"), []byte("v"), Forever))
	})
	dir := dumpDir(s)
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := errorsJoin(
			tx.Put("c", []byte("k"), []byte("v"), Forever),
			tx.Put("c", []byte("old"), []byte("w"), time.Unix(1e9, 0)),
			tx.Delete("d", []byte("gone")),
			tx.Put("e", []byte("new collection"), []byte("v"), Forever),
		); err != nil {
			return err
		}
		// Inside the transaction, its own changes show.
		if n, _ := tx.Count("c"); n != 1 {
			return fmt.Errorf("count inside = %d", n)
		}
		if has, _ := tx.Has("d", []byte("gone")); has {
			return errors.New("deleted item inside")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v", err)
	}
	if _, ok := getString(t, s, "c", "k"); ok {
		t.Fatal("rolled-back put is visible")
	}
	// The directory is as it was.
	if got := dumpDir(s); !slices.Equal(got, dir) {
		t.Fatalf("directory after rollback:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(dir, "\n"))
	}
	if count(t, s, "c") != 1 || count(t, s, "d") != 1 || count(t, s, "e") != 0 {
		t.Fatal("counts changed by a rolled-back transaction")
	}
	// Writes are refused in View.
	if err := s.View(func(tx *Tx) error {
		return tx.Put("c", []byte("k"), []byte("v"), Forever)
	}); err == nil {
		t.Fatal("Put inside View succeeded")
	}
}

func TestPutValidation(t *testing.T) { forBackends(t, testPutValidation) }

func testPutValidation(t *testing.T, be backend) {
	s := be.create(t, testOpts(nil))
	defer s.Close()
	cases := []struct {
		coll string
		exp  time.Time
	}{
		{"", Forever},
		{"a\x00b", Forever},
		{strings.Repeat("x", 256), Forever},
		{"ok", time.Time{}},
		{"ok", time.Unix(-5, 0)},
	}
	for _, c := range cases {
		err := s.Update(func(tx *Tx) error { return tx.Put(c.coll, []byte("k"), []byte("v"), c.exp) })
		if err == nil {
			t.Errorf("Put(%q, exp %v) succeeded", c.coll, c.exp)
		}
	}
}

func TestWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, testOpts(nil))
	if err := s.Update(func(tx *Tx) error {
		return tx.Put("contacts", []byte("bob"), []byte("hello"), Forever)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := homeHash(t, dir)
	fiBefore, _ := os.Stat(filepath.Join(dir, KeyFileName))
	for _, pass := range [][]byte{[]byte("wrong"), nil, append(append([]byte(nil), testPass...), 0)} {
		_, err := Open(dir, pass, testOpts(nil))
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Open(%q) err = %v, want ErrWrongPassphrase", pass, err)
		}
	}
	if after := homeHash(t, dir); after != before {
		t.Fatal("a file changed after failed Open")
	}
	fiAfter, _ := os.Stat(filepath.Join(dir, KeyFileName))
	if !fiAfter.ModTime().Equal(fiBefore.ModTime()) {
		t.Fatal("key file mtime changed after failed Open")
	}
	// The lock was released: the right passphrase still works.
	s = mustOpen(t, dir, testOpts(nil))
	defer s.Close()
	if v, ok := getString(t, s, "contacts", "bob"); !ok || v != "hello" {
		t.Fatalf("got %q %v", v, ok)
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, testOpts(nil))
	err := s.Update(func(tx *Tx) error {
		for i := range 50 {
			v := fmt.Sprintf("SECRET-MARKER-alice #%d", i)
			if err := tx.Put("contacts", []byte(fmt.Sprintf("bob-%d@example.org", i)), []byte(v), Forever); err != nil {
				return err
			}
		}
		// A large value lives in a bucket of its own (LargeValue): sealed too.
		big := bytes.Repeat([]byte("LARGE-MARKER "), LargeValue/8)
		if err := tx.Put("envelopes", []byte("chunk"), big, Forever); err != nil {
			return err
		}
		return tx.Put("contacts", []byte("bob"), []byte("SECRET-MARKER-alice"), Forever)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Take a copy of the home, as an attacker would.
	cp := copyHome(t, dir)
	var raw []byte
	for _, name := range []string{FileName, KeyFileName} {
		b, err := os.ReadFile(filepath.Join(cp, name))
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	// Collection names travel inside the sealed values: not even they show.
	for _, secret := range []string{"SECRET-MARKER-alice", "SECRET", "bob", "@example.org", string(testPass), "contacts", "LARGE-MARKER", "chunk"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("store files contain plaintext %q", secret)
		}
	}
	// The copy is a working store for whoever has the passphrase.
	s = mustOpen(t, cp, testOpts(nil))
	defer s.Close()
	if v, ok := getString(t, s, "contacts", "bob"); !ok || v != "SECRET-MARKER-alice" {
		t.Fatalf("copy: got %q %v", v, ok)
	}
}

func TestExpiry(t *testing.T) { forBackends(t, testExpiry) }

// firstCoarse is the coarse expiry of the first expiry index entry, or 0.
func firstCoarse(t *testing.T, s *Store) uint64 {
	t.Helper()
	var c uint64
	if err := s.db.view(func(tx kvTx) error {
		if k, _ := tx.Bucket(bucketExpiry).Cursor().First(); k != nil {
			c = binary.BigEndian.Uint64(k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func testExpiry(t *testing.T, be backend) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	s := be.create(t, testOpts(clock))
	put := func(coll, key string, exp time.Time) {
		t.Helper()
		if err := s.Update(func(tx *Tx) error { return tx.Put(coll, []byte(key), []byte("v-"+key), exp) }); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func(want int) {
		t.Helper()
		n, err := s.Sweep()
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("Sweep removed %d, want %d", n, want)
		}
	}
	put("env", "a", t0.Add(10*time.Second))
	put("env", "b", t0.Add(20*time.Second))
	put("env", "c", Forever)
	put("other", "d", t0.Add(10*time.Second))
	// Overwrite moves the expiry later: x must survive a sweep two days on.
	put("env", "x", t0.Add(5*time.Second))
	put("env", "x", t0.Add(100*time.Hour))
	// Overwrite moves the expiry earlier: y must go.
	put("env", "y", t0.Add(100*time.Hour))
	put("env", "y", t0.Add(5*time.Second))
	// Deleted item leaves no index entry behind.
	put("env", "z", t0.Add(5*time.Second))
	if err := s.Update(func(tx *Tx) error { return tx.Delete("env", []byte("z")) }); err != nil {
		t.Fatal(err)
	}
	// Already expired when put: invisible at once.
	put("env", "past", t0.Add(-time.Second))
	if _, ok := getString(t, s, "env", "past"); ok {
		t.Fatal("item with past expiry is visible")
	}
	if n := indexLen(t, s); n != 7 {
		t.Fatalf("index has %d entries, want 7", n)
	}
	if n := count(t, s, "env"); n != 5 {
		t.Fatalf("count = %d, want 5", n)
	}
	// A file store's clear expiry is rounded up to the next day: nothing is
	// due yet, not even "past". A memory store's is exact: "past" is due.
	exact := be.name == "memory"
	sweep(b2i(exact))

	clock.Advance(9 * time.Second)
	if _, ok := getString(t, s, "env", "a"); !ok {
		t.Fatal("a invisible one second before expiry")
	}
	clock.Advance(time.Second) // t0+10s: a and d expire exactly now
	if _, ok := getString(t, s, "env", "a"); ok {
		t.Fatal("a visible at its expiry")
	}
	if err := s.View(func(tx *Tx) error {
		has, err := tx.Has("other", []byte("d"))
		if has || err != nil {
			return fmt.Errorf("Has(d) = %v, %v", has, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := allValues(t, s, "env"), []string{"v-b", "v-c", "v-x"}; !slices.Equal(got, want) {
		t.Fatalf("ForEach = %q, want %q", got, want)
	}
	if n := count(t, s, "env"); n != 3 {
		t.Fatalf("count = %d, want 3", n)
	}
	sweep(3 * b2i(exact)) // a, d, y: in a file store expired, but not yet due: invisible all the same

	// Two days on, every coarse expiry of the first day has passed.
	clock.Advance(2*24*time.Hour - 10*time.Second)
	sweep(5 - 4*b2i(exact)) // a, b, d, y, past (b alone in a memory store)
	sweep(0)
	if v, ok := getString(t, s, "env", "x"); !ok || v != "v-x" {
		t.Fatal("x lost: overwrite did not move its index entry")
	}
	if n := indexLen(t, s); n != 2 {
		t.Fatalf("index has %d entries, want 2 (c, x)", n)
	}
	// The store keeps working after sweeping, across reopen.
	put("env", "new", clock.Now().Add(time.Hour))
	s = be.reopen(t, s, testOpts(clock))
	defer s.Close()
	if got, want := allValues(t, s, "env"), []string{"v-c", "v-new", "v-x"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen ForEach = %q, want %q", got, want)
	}
	clock.Advance(8 * 24 * time.Hour)
	sweep(2) // x, new
	if got, want := allValues(t, s, "env"), []string{"v-c"}; !slices.Equal(got, want) {
		t.Fatalf("after final sweep = %q, want %q", got, want)
	}
	if exact {
		// A memory store's clear expiry is the exact one, with no horizon:
		// Forever is never due.
		clock.Advance(70 * 24 * time.Hour)
		sweep(0)
		if got, want := allValues(t, s, "env"), []string{"v-c"}; !slices.Equal(got, want) {
			t.Fatalf("70 days on = %q, want %q", got, want)
		}
		v, _ := rawItem(s, "env", []byte("c"))
		if p, err := openKept(v); err != nil || p.exact != uint64(Forever.Unix()) {
			t.Fatalf("forever item kept with expiry %d (%v), want %d", p.exact, err, Forever.Unix())
		}
		return
	}
	// Forever shows as at most the horizon ahead; when that comes, Sweep
	// renews it instead of removing it.
	now := uint64(clock.Now().Unix())
	if c := firstCoarse(t, s); c > now+horizon+2*day {
		t.Fatalf("forever item shows coarse expiry %d, more than the horizon after %d", c, now)
	}
	clock.Advance(70 * 24 * time.Hour)
	sweep(0)
	if got, want := allValues(t, s, "env"), []string{"v-c"}; !slices.Equal(got, want) {
		t.Fatalf("after renewal = %q, want %q", got, want)
	}
	if n, c := indexLen(t, s), firstCoarse(t, s); n != 1 || c <= uint64(clock.Now().Unix()) {
		t.Fatalf("after renewal: %d index entries, first due at %d (now %d)", n, c, clock.Now().Unix())
	}
}

func TestCreateExisting(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, testOpts(nil))
	s.Close()
	before := homeHash(t, dir)
	if _, err := Create(dir, testPass, testOpts(nil)); !errors.Is(err, ErrExists) {
		t.Fatalf("Create on existing: %v, want ErrExists", err)
	}
	if homeHash(t, dir) != before {
		t.Fatal("Create on existing modified the files")
	}
	// Either file alone is a store too: Create leaves it alone.
	for _, name := range []string{FileName, KeyFileName} {
		one := t.TempDir()
		if err := os.WriteFile(filepath.Join(one, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if !Exists(one) {
			t.Errorf("Exists = false with only %s", name)
		}
		if _, err := Create(one, testPass, testOpts(nil)); !errors.Is(err, ErrExists) {
			t.Errorf("Create with only %s: %v, want ErrExists", name, err)
		}
		if b, _ := os.ReadFile(filepath.Join(one, name)); string(b) != "x" {
			t.Errorf("Create changed %s", name)
		}
	}
}

func TestOpenNotInitialized(t *testing.T) {
	dir := t.TempDir()
	if Exists(dir) {
		t.Fatal("Exists on empty dir")
	}
	if _, err := Open(dir, testPass, testOpts(nil)); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Open on empty dir: %v, want ErrNotInitialized", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), testPass, testOpts(nil)); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Open on missing dir: %v, want ErrNotInitialized", err)
	}
	// Opening must not create a file.
	if Exists(dir) {
		t.Fatal("Open created a file")
	}
	// An empty database (interrupted Create) is refused, not initialised.
	if err := os.WriteFile(filepath.Join(dir, FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testPass, testOpts(nil)); err == nil {
		t.Fatal("Open on empty file succeeded")
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName)); fi.Size() != 0 {
		t.Fatal("Open wrote to an empty file")
	}
}

// A home is two files: with either missing, Open says which, and does not
// treat the home as uninitialised.
func TestOpenMissingFile(t *testing.T) {
	base := t.TempDir()
	s := mustCreate(t, base, testOpts(nil))
	s.Close()
	for _, missing := range []string{FileName, KeyFileName} {
		t.Run(missing, func(t *testing.T) {
			dir := copyHome(t, base)
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			if !Exists(dir) {
				t.Fatal("Exists = false with one file left")
			}
			_, err := Open(dir, testPass, testOpts(nil))
			if err == nil || errors.Is(err, ErrNotInitialized) || !strings.Contains(err.Error(), filepath.Join(dir, missing)) {
				t.Fatalf("Open without %s: %v; want an error naming it", missing, err)
			}
		})
	}
}

// copyHome copies the store files of dir to a new directory, as someone
// taking a copy of the home would.
func copyHome(t testing.TB, dir string) string {
	t.Helper()
	cp := t.TempDir()
	for _, name := range []string{FileName, KeyFileName} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cp, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cp
}

func TestInUse(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	opts.LockTimeout = 300 * time.Millisecond
	s := mustCreate(t, dir, opts)
	start := time.Now()
	_, err := Open(dir, testPass, opts)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	// bbolt gives up one 50ms retry interval before the timeout.
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("second Open gave up after %v, before the lock timeout", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, opts)
	s.Close()
}

// resum recomputes the checksum of the slot at off (after an edit).
func resum(b []byte, off, size int) {
	sum := sha256.Sum256(b[off : off+size-slotSumSize])
	copy(b[off+size-slotSumSize:off+size], sum[:])
}

func TestCorruptKeyFile(t *testing.T) {
	base := t.TempDir()
	s := mustCreate(t, base, testOpts(nil))
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("c", []byte("k"), []byte("v"), Forever) })
	s.Close()
	good, err := os.ReadFile(filepath.Join(base, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 2*slotMinSize {
		t.Fatalf("key file of %d bytes, want two %d-byte slots", len(good), slotMinSize)
	}
	// both applies an edit to both slots, and fixes their checksums unless
	// the edit is to the checksum itself.
	both := func(edit func(slot []byte), fix bool) func([]byte) []byte {
		return func(b []byte) []byte {
			for _, off := range []int{0, slotMinSize} {
				edit(b[off : off+slotMinSize])
				if fix {
					resum(b, off, slotMinSize)
				}
			}
			return b
		}
	}
	cases := map[string]struct {
		edit      func([]byte) []byte
		wrongPass bool // indistinguishable from a wrong passphrase
		opens     bool // the other slot is intact
	}{
		"empty":           {edit: func(b []byte) []byte { return nil }},
		"truncated":       {edit: func(b []byte) []byte { return b[:slotMinSize-1] }},
		"one slot left":   {edit: func(b []byte) []byte { return b[:slotMinSize] }, opens: true},
		"slot A torn":     {edit: func(b []byte) []byte { b[100] ^= 1; return b }, opens: true},
		"slot B torn":     {edit: func(b []byte) []byte { b[slotMinSize+5000] ^= 1; return b }, opens: true},
		"both torn":       {edit: both(func(sl []byte) { sl[200] ^= 1 }, false)},
		"bad magic":       {edit: both(func(sl []byte) { sl[0] ^= 1 }, true)},
		"bad size":        {edit: both(func(sl []byte) { sl[slotOffSize+3] = 1 }, true)},
		"zero seq":        {edit: both(func(sl []byte) { clear(sl[slotOffSeq : slotOffSeq+8]) }, true)},
		"zero time":       {edit: both(func(sl []byte) { clear(sl[slotOffTime : slotOffTime+4]) }, true)},
		"zero threads":    {edit: both(func(sl []byte) { sl[slotOffThreads] = 0 }, true)},
		"huge memory":     {edit: both(func(sl []byte) { copy(sl[slotOffMemory:], []byte{0xff, 0xff, 0xff, 0xff}) }, true)},
		"other salt":      {edit: both(func(sl []byte) { sl[slotOffSalt] ^= 1 }, true), wrongPass: true},
		"bad wrapped":     {edit: both(func(sl []byte) { sl[slotOffWrapped+3] ^= 1 }, true), wrongPass: true},
		"other store id":  {edit: both(func(sl []byte) { sl[slotOffID] ^= 1 }, true)},
		"bad table":       {edit: both(func(sl []byte) { sl[slotOffTable+9] ^= 1 }, true)},
		"garbage":         {edit: func(b []byte) []byte { return bytes.Repeat([]byte("garbage!"), 4096) }},
		"much too large":  {edit: func(b []byte) []byte { return make([]byte, maxKeyFileSize+1) }},
		"slot A from 2^n": {edit: func(b []byte) []byte { binary.BigEndian.PutUint32(b[slotOffSize:], 1<<14); return b }, opens: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := copyHome(t, base)
			path := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(path, c.edit(bytes.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, testPass, testOpts(nil))
			if c.opens {
				if err != nil {
					t.Fatalf("Open with one good slot: %v", err)
				}
				defer s.Close()
				if v, ok := getString(t, s, "c", "k"); !ok || v != "v" {
					t.Fatalf("got %q %v", v, ok)
				}
				// Open repaired the file: both slots verify again.
				b, _ := os.ReadFile(path)
				if _, other, lay, err := scanKeyFile(b); err != nil || other == nil || lay.fileLen != 2*slotMinSize {
					t.Fatalf("not repaired: %v, layout %+v", err, lay)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a corrupt key file")
			}
			if got := errors.Is(err, ErrWrongPassphrase); got != c.wrongPass {
				t.Fatalf("err = %v; ErrWrongPassphrase=%v, want %v", err, got, c.wrongPass)
			}
			if !c.wrongPass && !strings.Contains(err.Error(), KeyFileName) {
				t.Fatalf("error %q does not name the key file", err)
			}
		})
	}
	// A database that is not a v2 store, or lacks a bucket.
	for name, edit := range map[string]func(*bolt.Tx) error{
		"no meta": func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketMeta)) },
		"v1 meta": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaKey), []byte("grapevine-store-v1"))
		},
		"no items":   func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketItems)) },
		"no expiry":  func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketExpiry)) },
		"not a bolt": nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyHome(t, base)
			if edit == nil {
				os.WriteFile(filepath.Join(dir, FileName), bytes.Repeat([]byte("garbage!"), 1024), 0o600)
			} else {
				rawUpdate(t, dir, edit)
			}
			if s, err := Open(dir, testPass, testOpts(nil)); err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// editItem replaces the only item's stored value in a copy of the home.
func editItem(t *testing.T, dir string, edit func([]byte) []byte) {
	t.Helper()
	rawUpdate(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketItems))
		k, v := b.Cursor().First()
		return b.Put(k, edit(bytes.Clone(v)))
	})
}

func TestCorruptValue(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	base := t.TempDir()
	s := mustCreate(t, base, testOpts(&fakeClock{t: t0}))
	if err := s.Update(func(tx *Tx) error {
		return tx.Put("inbox", []byte("k"), []byte("some value"), Forever)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// header: whether the header still decodes, so that the item stays in
	// its collection's directory; otherwise only Get sees it.
	edits := map[string]struct {
		edit   func([]byte) []byte
		header bool
	}{
		"flip tag":      {func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, true},
		"flip padding":  {func(b []byte) []byte { b[len(b)-tagSize-1] ^= 1; return b }, true},
		"change expiry": {func(b []byte) []byte { b[7]--; return b }, true},
		"flip nonce":    {func(b []byte) []byte { b[10] ^= 1; return b }, false},
		"flip header":   {func(b []byte) []byte { b[valuePrefix] ^= 1; return b }, false},
		"truncated":     {func(b []byte) []byte { return b[:5] }, false},
		"just overhead": {func(b []byte) []byte { return b[:minStored-1] }, false},
		"empty":         {func(b []byte) []byte { return []byte{} }, false},
	}
	for name, e := range edits {
		t.Run(name, func(t *testing.T) {
			dir := copyHome(t, base)
			editItem(t, dir, e.edit)
			clock := &fakeClock{t: t0}
			s := mustOpen(t, dir, testOpts(clock))
			defer s.Close()
			err := s.View(func(tx *Tx) error {
				_, _, ok, err := tx.Get("inbox", []byte("k"))
				if ok {
					return errors.New("Get ok on corrupt value")
				}
				return err
			})
			if err == nil || !strings.Contains(err.Error(), `"inbox"`) {
				t.Fatalf("Get err = %v, want an error naming the collection", err)
			}
			err = s.View(func(tx *Tx) error {
				return tx.ForEach("inbox", func([]byte, time.Time) error { return errors.New("called") })
			})
			switch {
			case e.header && (err == nil || !strings.Contains(err.Error(), `"inbox"`)):
				t.Fatalf("ForEach err = %v, want an error naming the collection", err)
			case !e.header && err != nil:
				t.Fatalf("ForEach over an undecodable item: %v; want it skipped", err)
			}
			if n := count(t, s, "inbox"); n != b2i(e.header) {
				t.Fatalf("Count = %d", n)
			}
			// The item can still be deleted and the store keeps working.
			if err := s.Update(func(tx *Tx) error { return tx.Delete("inbox", []byte("k")) }); err != nil {
				t.Fatal(err)
			}
			// Its index entry goes with it, or (if its clear expiry was
			// damaged) with the first sweep after the horizon.
			clock.Advance((horizon + 2*day) * time.Second)
			if _, err := s.Sweep(); err != nil {
				t.Fatal(err)
			}
			if n := indexLen(t, s); n != 0 {
				t.Fatalf("index has %d entries after delete", n)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestDefaultKDFOpens(t *testing.T) {
	if testing.Short() {
		t.Skip("DefaultKDF() uses 64 MiB of memory")
	}
	dir := t.TempDir()
	s, err := Create(dir, testPass, Options{}) // zero KDF means DefaultKDF()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("c", []byte("k"), []byte("v"), Forever) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	sl, _, _, err := scanKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if sl.kdf != DefaultKDF() {
		t.Fatalf("stored KDF %+v, want %+v", sl.kdf, DefaultKDF())
	}
	s, err = Open(dir, testPass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok := getString(t, s, "c", "k"); !ok || v != "v" {
		t.Fatalf("got %q %v", v, ok)
	}
}

func TestCreateRejectsBadKDF(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, testPass, Options{KDF: KDFParams{Time: 1, MemoryKiB: 64}}); err == nil {
		t.Fatal("Create accepted zero threads")
	}
	if Exists(dir) {
		t.Fatal("failed Create left a file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed Create left %v", entries)
	}
}
