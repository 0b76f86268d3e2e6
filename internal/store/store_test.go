package store

import (
	"bytes"
	"crypto/sha256"
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
	o := Options{KDF: TestKDF, LockTimeout: 200 * time.Millisecond}
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

// indexLen counts the expiry index entries through the backend interface,
// so it works on both backends.
func indexLen(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.db.view(func(tx kvTx) error {
		if b := tx.Bucket(bucketExpiry); b != nil {
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				n++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
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
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if p := fi.Mode().Perm(); p != 0o600 {
		t.Errorf("file mode %o, want 600", p)
	}
}

func TestUpdateRollback(t *testing.T) { forBackends(t, testUpdateRollback) }

func testUpdateRollback(t *testing.T, be backend) {
	s := be.create(t, testOpts(nil))
	defer s.Close()
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := tx.Put("c", []byte("k"), []byte("v"), Forever); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v", err)
	}
	if _, ok := getString(t, s, "c", "k"); ok {
		t.Fatal("rolled-back put is visible")
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
		{"meta", Forever},
		{"expiry", Forever},
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
	path := filepath.Join(dir, FileName)
	before := fileHash(t, path)
	fiBefore, _ := os.Stat(path)
	for _, pass := range [][]byte{[]byte("wrong"), nil, append(append([]byte(nil), testPass...), 0)} {
		_, err := Open(dir, pass, testOpts(nil))
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Open(%q) err = %v, want ErrWrongPassphrase", pass, err)
		}
	}
	if after := fileHash(t, path); after != before {
		t.Fatal("file changed after failed Open")
	}
	fiAfter, _ := os.Stat(path)
	if !fiAfter.ModTime().Equal(fiBefore.ModTime()) {
		t.Fatal("file mtime changed after failed Open")
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
		return tx.Put("contacts", []byte("bob"), []byte("SECRET-MARKER-alice"), Forever)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	// Take a copy of the home, as an attacker would.
	cp := t.TempDir()
	if err := os.WriteFile(filepath.Join(cp, FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"SECRET-MARKER-alice", "SECRET", "bob", "@example.org", string(testPass)} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("store file contains plaintext %q", secret)
		}
	}
	// Documented leak: collection names are bucket names, in plaintext.
	if !bytes.Contains(raw, []byte("contacts")) {
		t.Error("expected the collection name to be visible (documented); update SPEC-store.md if this changed")
	}
	// The copy is a working store for whoever has the passphrase.
	s = mustOpen(t, cp, testOpts(nil))
	defer s.Close()
	if v, ok := getString(t, s, "contacts", "bob"); !ok || v != "SECRET-MARKER-alice" {
		t.Fatalf("copy: got %q %v", v, ok)
	}
}

func TestExpiry(t *testing.T) { forBackends(t, testExpiry) }

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
	// Overwrite moves the expiry later: x must survive a sweep at t0+50s.
	put("env", "x", t0.Add(5*time.Second))
	put("env", "x", t0.Add(100*time.Second))
	// Overwrite moves the expiry earlier: y must go at t0+50s.
	put("env", "y", t0.Add(100*time.Second))
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
	sweep(1) // "past"

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
	sweep(3) // a, d, y
	sweep(0)
	clock.Advance(40 * time.Second) // t0+50s
	sweep(1)                        // b
	if v, ok := getString(t, s, "env", "x"); !ok || v != "v-x" {
		t.Fatal("x lost: overwrite did not move its index entry")
	}
	if n := indexLen(t, s); n != 2 {
		t.Fatalf("index has %d entries, want 2 (c, x)", n)
	}
	// The store keeps working after sweeping, across reopen.
	put("env", "new", t0.Add(time.Hour))
	s = be.reopen(t, s, testOpts(clock))
	defer s.Close()
	if got, want := allValues(t, s, "env"), []string{"v-c", "v-new", "v-x"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen ForEach = %q, want %q", got, want)
	}
	clock.Advance(2 * time.Hour)
	sweep(2) // x, new
	if got, want := allValues(t, s, "env"), []string{"v-c"}; !slices.Equal(got, want) {
		t.Fatalf("after final sweep = %q, want %q", got, want)
	}
}

func TestCreateExisting(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, testOpts(nil))
	s.Close()
	before := fileHash(t, filepath.Join(dir, FileName))
	if _, err := Create(dir, testPass, testOpts(nil)); !errors.Is(err, ErrExists) {
		t.Fatalf("Create on existing: %v, want ErrExists", err)
	}
	if fileHash(t, filepath.Join(dir, FileName)) != before {
		t.Fatal("Create on existing modified the file")
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
	// Opening must not create the file.
	if Exists(dir) {
		t.Fatal("Open created a file")
	}
	// An empty file (interrupted Create) is refused, not initialised.
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

func TestCorruptMeta(t *testing.T) {
	base := t.TempDir()
	s := mustCreate(t, base, testOpts(nil))
	s.Close()
	raw, err := os.ReadFile(filepath.Join(base, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var good []byte
	rawUpdate(t, base, func(tx *bolt.Tx) error {
		good = append([]byte(nil), tx.Bucket([]byte(bucketMeta)).Get([]byte(metaKey))...)
		return nil
	})
	mod := func(f func(b []byte) []byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaKey), f(append([]byte(nil), good...)))
		}
	}
	cases := map[string]struct {
		edit      func(*bolt.Tx) error
		wrongPass bool // indistinguishable from a wrong passphrase
	}{
		"missing bucket": {edit: func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketMeta)) }},
		"missing record": {edit: func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Delete([]byte(metaKey)) }},
		"empty record":   {edit: mod(func(b []byte) []byte { return []byte{} })},
		"truncated":      {edit: mod(func(b []byte) []byte { return b[:60] })},
		"too long":       {edit: mod(func(b []byte) []byte { return append(b, 0) })},
		"bad magic":      {edit: mod(func(b []byte) []byte { b[0] ^= 1; return b })},
		"zero time":      {edit: mod(func(b []byte) []byte { clear(b[18:22]); return b })},
		"zero threads":   {edit: mod(func(b []byte) []byte { b[26] = 0; return b })},
		"huge memory":    {edit: mod(func(b []byte) []byte { copy(b[22:26], []byte{0xff, 0xff, 0xff, 0xff}); return b })},
		"swapped salt":   {edit: mod(func(b []byte) []byte { b[30] ^= 1; return b }), wrongPass: true},
		"bad wrapped":    {edit: mod(func(b []byte) []byte { b[100] ^= 1; return b }), wrongPass: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, dir, c.edit)
			s, err := Open(dir, testPass, testOpts(nil))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a corrupt meta record")
			}
			if got := errors.Is(err, ErrWrongPassphrase); got != c.wrongPass {
				t.Fatalf("err = %v; ErrWrongPassphrase=%v, want %v", err, got, c.wrongPass)
			}
			if !c.wrongPass && !strings.Contains(err.Error(), "meta record") {
				t.Fatalf("error %q does not mention the meta record", err)
			}
		})
	}
	// Garbage that is not a bbolt file at all.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testPass, testOpts(nil)); err == nil {
		t.Fatal("Open succeeded on garbage")
	}
}

func TestCorruptValue(t *testing.T) {
	base := t.TempDir()
	s := mustCreate(t, base, testOpts(nil))
	if err := s.Update(func(tx *Tx) error {
		return tx.Put("inbox", []byte("k"), []byte("some value"), Forever)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := os.ReadFile(filepath.Join(base, FileName))
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func([]byte) []byte{
		"flip tag":      func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"flip nonce":    func(b []byte) []byte { b[10] ^= 1; return b },
		"change expiry": func(b []byte) []byte { b[7]--; return b },
		"truncated":     func(b []byte) []byte { return b[:5] },
		"just header":   func(b []byte) []byte { return b[:valueOverhead-1] },
		"empty":         func(b []byte) []byte { return []byte{} },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, dir, func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("inbox"))
				k, v := b.Cursor().First()
				return b.Put(k, edit(append([]byte(nil), v...)))
			})
			s := mustOpen(t, dir, testOpts(nil))
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
			if err == nil || !strings.Contains(err.Error(), `"inbox"`) {
				t.Fatalf("ForEach err = %v, want an error naming the collection", err)
			}
			// The item can still be deleted and the store keeps working.
			if err := s.Update(func(tx *Tx) error { return tx.Delete("inbox", []byte("k")) }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Sweep(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaultKDFOpens(t *testing.T) {
	if testing.Short() {
		t.Skip("DefaultKDF uses 64 MiB of memory")
	}
	dir := t.TempDir()
	s, err := Create(dir, testPass, Options{}) // zero KDF means DefaultKDF
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("c", []byte("k"), []byte("v"), Forever) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var m *meta
	rawUpdate(t, dir, func(tx *bolt.Tx) error {
		var err error
		m, err = parseMeta(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaKey)))
		return err
	})
	if m.KDF != DefaultKDF {
		t.Fatalf("stored KDF %+v, want %+v", m.KDF, DefaultKDF)
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
}
