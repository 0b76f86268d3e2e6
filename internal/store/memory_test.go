package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// backend makes stores of one kind, so that the semantic tests of Tx and
// Store run against the bbolt file and the in-memory backend alike.
type backend struct {
	name   string
	create func(t testing.TB, opts Options) *Store
	// reopen closes s and opens it again. A memory store does not survive
	// Close, so for it reopen returns s as is: the rest of a test still
	// checks that the store keeps working.
	reopen func(t testing.TB, s *Store, opts Options) *Store
}

func backends() []backend {
	return []backend{
		{name: "file", create: createFile, reopen: reopenFile},
		{name: "memory", create: mustCreateMemory, reopen: func(_ testing.TB, s *Store, _ Options) *Store { return s }},
	}
}

func forBackends(t *testing.T, fn func(*testing.T, backend)) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) { fn(t, be) })
	}
}

func createFile(t testing.TB, opts Options) *Store {
	t.Helper()
	s := mustCreate(t, filepath.Join(t.TempDir(), "home"), opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func reopenFile(t testing.TB, s *Store, opts Options) *Store {
	t.Helper()
	dir := filepath.Dir(s.db.(*boltDB).path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !Exists(dir) {
		t.Fatal("Exists = false after Create")
	}
	s = mustOpen(t, dir, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCreateMemory(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := CreateMemory(opts)
	if err != nil {
		t.Fatalf("CreateMemory: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUpdate(t testing.TB, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, s *Store) int64 {
	t.Helper()
	n, err := s.FileSize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dumpMemory lists every record of a memory store, raw (sealed values,
// hashed keys), bucket by bucket in name order.
func dumpMemory(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	err := s.db.view(func(tx kvTx) error {
		names := make([]string, 0)
		for name := range tx.(*memTx).db.buckets {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			out = append(out, "bucket "+name)
			c := tx.Bucket(name).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				out = append(out, fmt.Sprintf("  %x = %x", k, v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpDir lists the directory: collection, hkey, exact expiry, sorted.
func dumpDir(s *Store) []string {
	var out []string
	for name, cd := range s.dir.colls {
		for hk, exp := range cd {
			out = append(out, fmt.Sprintf("dir %q %x %d", name, hk, exp))
		}
	}
	slices.Sort(out)
	return append(out, fmt.Sprintf("dir total %d", s.dir.total))
}

func TestMemoryRollback(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	s := mustCreateMemory(t, testOpts(clock))
	put := func(tx *Tx, coll, key, val string, exp time.Time) error {
		return tx.Put(coll, []byte(key), []byte(val), exp)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		return errors.Join(
			put(tx, "a", "k1", "v1", Forever),
			put(tx, "a", "k2", "v2", t0.Add(10*time.Second)),
			put(tx, "b", "k3", "v3", t0.Add(4*24*time.Hour)),
			put(tx, "b", "k4", "v4", t0.Add(5*time.Second)),
		)
	})
	before, size := append(dumpMemory(t, s), dumpDir(s)...), fileSize(t, s)
	same := func(when string) {
		t.Helper()
		if got := append(dumpMemory(t, s), dumpDir(s)...); !slices.Equal(got, before) {
			t.Fatalf("%s: store changed:\n%s\nwant\n%s", when, strings.Join(got, "\n"), strings.Join(before, "\n"))
		}
		if got := fileSize(t, s); got != size {
			t.Fatalf("%s: FileSize %d, want %d", when, got, size)
		}
	}

	clock.Advance(2 * 24 * time.Hour) // k2 and k4 are due
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		err := errors.Join(
			put(tx, "a", "k1", "overwritten", Forever),
			put(tx, "a", "k3", "moved", clock.Now().Add(time.Hour)),
			put(tx, "c", "x", "new collection", Forever),
			tx.Delete("b", []byte("k3")),
			tx.Delete("a", []byte("absent")),
		)
		if err != nil {
			return err
		}
		if n, err := tx.sweep(); err != nil || n != 2 {
			return fmt.Errorf("sweep = %d, %v; want 2", n, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v, want boom", err)
	}
	same("after failed Update")

	// A panic inside fn rolls back too, and releases the lock.
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate")
			}
		}()
		_ = s.Update(func(tx *Tx) error {
			if err := put(tx, "a", "k9", "v9", Forever); err != nil {
				return err
			}
			panic("fn panics")
		})
	}()
	same("after panicking Update")

	// The store still works and a committed Update sticks.
	n, err := s.Sweep()
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2", n, err)
	}
	if got := allValues(t, s, "a"); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("a = %q", got)
	}
	if got := allValues(t, s, "b"); !slices.Equal(got, []string{"v3"}) {
		t.Fatalf("b = %q", got)
	}
}

// Sweep removes items only once they have expired, and all of them within
// two days of that (the day rounding and the jitter).
func TestMemorySweep(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	s := mustCreateMemory(t, testOpts(clock))
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("keep", []byte("k"), []byte("forever"), Forever) })
	baseline := fileSize(t, s)
	const n = 500
	exp := func(i int) time.Time {
		return t0.Add(time.Duration(1+i%10)*24*time.Hour + time.Duration(i)*time.Minute)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for i := range n {
			if err := tx.Put("env", binary.BigEndian.AppendUint32(nil, uint32(i)), []byte("envelope"), exp(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if got := indexLen(t, s); got != n+1 {
		t.Fatalf("index has %d entries, want %d", got, n+1)
	}
	for hours := 6; hours <= 14*24; hours += 6 {
		clock.Advance(6 * time.Hour)
		now := clock.Now()
		if _, err := s.Sweep(); err != nil {
			t.Fatal(err)
		}
		held, live := indexLen(t, s)-1, 0
		for i := range n {
			if exp(i).After(now) {
				live++
			} else if exp(i).Add(2*24*time.Hour).Before(now) && held > live {
				// Something expired more than two days ago may still be
				// held: check it is not this one.
				if v, err := rawItem(s, "env", binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil || v != nil {
					t.Fatalf("t0+%dh: item %d expired at %v is still stored", hours, i, exp(i))
				}
			}
		}
		if c := count(t, s, "env"); c != live || held < live {
			t.Fatalf("t0+%dh: %d live, Count %d, %d held", hours, live, c, held)
		}
		for i := range n {
			if exp(i).After(now) {
				if _, ok := getString(t, s, "env", string(binary.BigEndian.AppendUint32(nil, uint32(i)))); !ok {
					t.Fatalf("t0+%dh: live item %d lost", hours, i)
				}
			}
		}
	}
	if got := indexLen(t, s); got != 1 {
		t.Fatalf("index has %d entries, want 1", got)
	}
	if got := fileSize(t, s); got != baseline {
		t.Fatalf("FileSize after sweeping everything = %d, want %d", got, baseline)
	}
}

// rawItem returns the stored (sealed) value of an item, nil if absent.
func rawItem(s *Store, coll string, key []byte) ([]byte, error) {
	var v []byte
	hk := s.hasher.hash(coll, key)
	err := s.db.view(func(tx kvTx) error {
		v = bytes.Clone(tx.Bucket(bucketItems).Get(hk[:]))
		return nil
	})
	return v, err
}

func TestMemoryFileSize(t *testing.T) {
	s := mustCreateMemory(t, testOpts(nil))
	if got := fileSize(t, s); got != 0 {
		t.Fatalf("empty store: FileSize %d", got)
	}
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("env", []byte("k"), make([]byte, 300), Forever) })
	// Hashed key + sealed value (the plaintext's header and the value,
	// 316 bytes, padded to 384), plus an index key (coarse expiry, hashed
	// key) with an empty value.
	want := int64(hkeySize + valueOverhead + 384 + 8 + hkeySize)
	if got := fileSize(t, s); got != want {
		t.Fatalf("FileSize %d, want %d", got, want)
	}
	mustUpdate(t, s, func(tx *Tx) error { return tx.Delete("env", []byte("k")) })
	if got := fileSize(t, s); got != 0 {
		t.Fatalf("after delete: FileSize %d", got)
	}
	s.ReleaseMemory() // no-op, must not panic
}

// heldBytes is the length of the keys and values a file store holds: every
// record of its items and expiry buckets.
func heldBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	var n int64
	if err := s.db.view(func(tx kvTx) error {
		for _, name := range []string{bucketItems, bucketExpiry} {
			c := tx.Bucket(name).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n += int64(len(k) + len(v))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A memory store keeps values unpadded, without nonce or tag, but reports
// the size a file store's keys and values take for the same items, through
// random puts (value lengths at the padding's bucket boundaries, collection
// names of every length class), overwrites, deletes and rolled-back
// transactions; and both return the same items.
func TestMemorySizeMatchesFile(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	stores := []*Store{createFile(t, testOpts(clock)), mustCreateMemory(t, testOpts(clock))}
	colls := []string{"c", "envelopes", strings.Repeat("x", 255)}
	lengths := []int{0, 1, 50, 51, 52, 115, 116, 182, 499, 500, 3000}
	errAbort := errors.New("abort")
	for round := range 150 {
		for _, s := range stores {
			rng := rand.New(rand.NewPCG(uint64(round), 7)) // the same choices for both
			err := s.Update(func(tx *Tx) error {
				for range 1 + rng.IntN(8) {
					coll, key := colls[rng.IntN(len(colls))], []byte{byte(rng.IntN(20))}
					if rng.IntN(4) == 0 {
						if err := tx.Delete(coll, key); err != nil {
							return err
						}
						continue
					}
					val := detBytes(fmt.Sprint(round), lengths[rng.IntN(len(lengths))])
					exp := Forever
					if rng.IntN(2) == 0 {
						exp = t0.Add(time.Duration(1+rng.IntN(300)) * time.Hour)
					}
					if err := tx.Put(coll, key, val, exp); err != nil {
						return err
					}
				}
				if rng.IntN(4) == 0 {
					return errAbort
				}
				return nil
			})
			if err != nil && !errors.Is(err, errAbort) {
				t.Fatal(err)
			}
		}
		if file, mem := heldBytes(t, stores[0]), fileSize(t, stores[1]); file != mem {
			t.Fatalf("round %d: the memory store reports %d bytes, the file store holds %d", round, mem, file)
		}
		clock.Advance(time.Hour)
		var got [2][]string
		for i, s := range stores {
			if err := s.View(func(tx *Tx) error {
				for _, coll := range colls {
					got[i] = append(got[i], allValues(t, s, coll)...)
					for k := range 20 {
						v, exp, ok, err := tx.Get(coll, []byte{byte(k)})
						sv, sexp, sok, serr := tx.GetShared(coll, []byte{byte(k)})
						if err != nil || serr != nil || !bytes.Equal(v, sv) || exp != sexp || ok != sok {
							return fmt.Errorf("%q %d: Get %x %v %v %v, GetShared %x %v %v %v", coll, k, v, exp, ok, err, sv, sexp, sok, serr)
						}
						got[i] = append(got[i], fmt.Sprintf("%q %d: %x %v %v", coll, k, v, exp, ok))
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got[0], got[1]) {
			t.Fatalf("round %d: the stores hold different items:\nfile %q\nmemory %q", round, got[0], got[1])
		}
	}
}

// An item overwritten in a memory store lets its old value go: the key the
// tree keeps lies in the value's allocation (putKept), so the tree takes
// the new key along with the new value (memTree.put).
func TestMemoryOverwriteFreesOldValue(t *testing.T) {
	s := mustCreateMemory(t, testOpts(nil))
	put := func(val string) {
		mustUpdate(t, s, func(tx *Tx) error { return tx.Put("c", []byte("k"), []byte(val), Forever) })
	}
	put("first")
	var old weak.Pointer[byte]
	hk := s.hasher.hash("c", []byte("k"))
	if err := s.db.view(func(tx kvTx) error {
		old = weak.Make(&tx.Bucket(bucketItems).Get(hk[:])[0])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	put("second")
	runtime.GC()
	if old.Value() != nil {
		t.Fatal("the overwritten value is still reachable")
	}
	if v, ok := getString(t, s, "c", "k"); !ok || v != "second" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
}

func TestMemoryClose(t *testing.T) {
	s := mustCreateMemory(t, testOpts(nil))
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("c", []byte("k"), []byte("v"), Forever) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.View(func(*Tx) error { return nil }); err == nil {
		t.Fatal("View after Close succeeded")
	}
	if err := s.Update(func(*Tx) error { return nil }); err == nil {
		t.Fatal("Update after Close succeeded")
	}
	if got := fileSize(t, s); got != 0 {
		t.Fatalf("FileSize after Close = %d", got)
	}
	// Two memory stores are independent.
	a, b := mustCreateMemory(t, testOpts(nil)), mustCreateMemory(t, testOpts(nil))
	mustUpdate(t, a, func(tx *Tx) error { return tx.Put("c", []byte("k"), []byte("v"), Forever) })
	if _, ok := getString(t, b, "c", "k"); ok {
		t.Fatal("memory stores share data")
	}
}

// A Tx kept past its callback must not reach the data: writes fail as in
// bbolt, and reads see nothing instead of racing with the next writer.
func TestMemoryTxAfterCallback(t *testing.T) {
	s := mustCreateMemory(t, testOpts(nil))
	var kept kvTx
	var keptBucket kvBucket
	if err := s.db.update(func(tx kvTx) error {
		kept = tx
		var err error
		keptBucket, err = tx.CreateBucketIfNotExists("c")
		if err != nil {
			return err
		}
		return keptBucket.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.CreateBucketIfNotExists("c"); !errors.Is(err, bolterrors.ErrTxClosed) {
		t.Fatalf("CreateBucketIfNotExists after commit: %v", err)
	}
	if err := keptBucket.Put([]byte("k"), []byte("w")); !errors.Is(err, bolterrors.ErrTxClosed) {
		t.Fatalf("Put after commit: %v", err)
	}
	if kept.Bucket("c") != nil || keptBucket.Get([]byte("k")) != nil {
		t.Fatal("closed tx still reads")
	}
	if k, _ := keptBucket.Cursor().First(); k != nil {
		t.Fatal("closed tx still iterates")
	}
}

// randKey draws from few short keys over a small alphabet, so that puts hit
// existing keys, deletes find something, and keys are often prefixes of one
// another (the case where bytewise order differs from naive orders).
func randKey(rng *rand.Rand) []byte {
	k := make([]byte, 1+rng.IntN(4))
	for i := range k {
		k[i] = []byte{0x00, 0x01, 0x7f, 0x80, 0xff}[rng.IntN(5)]
	}
	return k
}

type refKV struct{ k, v []byte }

func refFind(ref []refKV, k []byte) (int, bool) {
	return slices.BinarySearchFunc(ref, k, func(e refKV, k []byte) int { return bytes.Compare(e.k, k) })
}

// checkTree checks the B-tree invariants: keys in order within and across
// nodes, prefixes matching keys, every node but the root at least half
// full, leaves all at one depth, unused slots zeroed (so that removed
// values can be collected), and the counters. It returns the height.
func checkTree(t *testing.T, tr *memTree) int {
	t.Helper()
	n, size := 0, int64(0)
	leafDepth := -1
	var walk func(nd *btNode, depth int, lo, hi []byte)
	walk = func(nd *btNode, depth int, lo, hi []byte) {
		if nd.n > btMaxItems || (nd != tr.root && nd.n < btMinItems) || nd.n == 0 {
			t.Fatalf("node with %d items at depth %d", nd.n, depth)
		}
		for i := range btMaxItems {
			if i >= nd.n {
				if nd.keys[i] != nil || nd.vals[i] != nil || nd.hi[i] != 0 || nd.lo[i] != 0 || nd.kid(i+1) != nil {
					t.Fatalf("unused slot %d of %d not cleared", i, nd.n)
				}
				continue
			}
			k := nd.keys[i]
			if i > 0 && bytes.Compare(k, nd.keys[i-1]) <= 0 || lo != nil && bytes.Compare(k, lo) <= 0 || hi != nil && bytes.Compare(k, hi) >= 0 {
				t.Fatalf("key %x out of order in (%x, %x)", k, lo, hi)
			}
			if p := prefixOf(k); p.hi != nd.hi[i] || p.lo != nd.lo[i] {
				t.Fatalf("key %x has a stale prefix", k)
			}
			n++
			size += tr.itemBytes(k, nd.vals[i])
		}
		if nd.leaf() {
			if leafDepth < 0 {
				leafDepth = depth
			} else if depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			return
		}
		for i := 0; i <= nd.n; i++ {
			if nd.kids[i] == nil {
				t.Fatalf("inner node missing child %d of %d", i, nd.n+1)
			}
			clo, chi := lo, hi
			if i > 0 {
				clo = nd.keys[i-1]
			}
			if i < nd.n {
				chi = nd.keys[i]
			}
			walk(nd.kids[i], depth+1, clo, chi)
		}
	}
	if tr.root != nil {
		walk(tr.root, 1, nil, nil)
	}
	if n != tr.n || size != tr.bytes {
		t.Fatalf("tree holds %d keys, %d bytes; counters say %d, %d", n, size, tr.n, tr.bytes)
	}
	return max(leafDepth, 0)
}

func dumpTree(tr *memTree) []refKV {
	var out []refKV
	c := &memCursor{tree: tr}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		out = append(out, refKV{k, v})
	}
	return out
}

func sameKVs(a, b []refKV) bool {
	return slices.EqualFunc(a, b, func(x, y refKV) bool { return bytes.Equal(x.k, y.k) && bytes.Equal(x.v, y.v) })
}

// sameSlice reports whether a and b are the same non-empty slice, not
// merely equal.
func sameSlice(a, b []byte) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

// modelTree is a memTree and a sorted slice that its operations are
// checked against.
type modelTree struct {
	tr  memTree
	ref []refKV
}

func (m *modelTree) put(t testing.TB, k, v []byte) {
	t.Helper()
	j, found := refFind(m.ref, k)
	oldKey, old, existed := m.tr.put(k, v)
	if existed != found || (found && (!bytes.Equal(old, m.ref[j].v) || !sameSlice(oldKey, m.ref[j].k))) {
		t.Fatalf("put %x: old %x=%x, %v; want found=%v", k, oldKey, old, existed, found)
	}
	if found {
		m.ref[j] = refKV{k, v} // the tree keeps the new key (memTree.put)
	} else {
		m.ref = slices.Insert(m.ref, j, refKV{k, v})
	}
}

func (m *modelTree) delete(t testing.TB, k []byte) {
	t.Helper()
	j, found := refFind(m.ref, k)
	dk, dv, ok := m.tr.delete(k)
	if ok != found || (found && (!bytes.Equal(dk, k) || !bytes.Equal(dv, m.ref[j].v))) {
		t.Fatalf("delete %x: got %x=%x %v, want found=%v", k, dk, dv, ok, found)
	}
	if found {
		m.ref = slices.Delete(m.ref, j, j+1)
	}
}

func (m *modelTree) find(t testing.TB, k []byte) {
	t.Helper()
	v, ok := m.tr.find(k)
	if j, want := refFind(m.ref, k); ok != want || (ok && !bytes.Equal(v, m.ref[j].v)) {
		t.Fatalf("find %x = %x, %v; want found=%v", k, v, ok, want)
	}
}

// check compares the iteration with the slice.
func (m *modelTree) check(t testing.TB) {
	t.Helper()
	got := dumpTree(&m.tr)
	if !sameKVs(got, m.ref) {
		t.Fatal("iteration differs from the sorted reference")
	}
	for i := range got {
		if !sameSlice(got[i].k, m.ref[i].k) {
			t.Fatalf("the tree holds key %x, but not the slice put last", got[i].k)
		}
	}
}

// TestMemoryTreeOrder compares the tree with a sorted slice over random
// puts and deletes.
func TestMemoryTreeOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var m modelTree
	// Values count for a size that is not their length, as a store's do
	// (keptSize), so that replacing one changes the count.
	m.tr.valueSize = func(n int) int { return n*n + 3 }
	for i := range 50000 {
		k := randKey(rng)
		if i > 2000 && i%5000 < 1000 {
			k = binary.BigEndian.AppendUint32(nil, uint32(i)) // some runs of ascending keys
		}
		if rng.IntN(3) > 0 {
			m.put(t, k, binary.BigEndian.AppendUint32(nil, rng.Uint32())[:rng.IntN(5)])
		} else {
			m.delete(t, k)
		}
		m.find(t, randKey(rng))
		if i%997 == 0 {
			m.check(t)
			checkTree(t, &m.tr)
		}
	}
	m.check(t)
	tr, ref := &m.tr, m.ref
	// At least half-full nodes keep the height logarithmic.
	if h, limit := checkTree(t, tr), 1+math.Log(float64(tr.n+1))/math.Log(btMinItems+1); float64(h) > limit {
		t.Fatalf("height %d for %d keys, want <= %.1f", h, tr.n, limit)
	}
	// Emptying the tree in random order goes through every kind of repair.
	for _, j := range rng.Perm(len(ref)) {
		if _, _, ok := tr.delete(ref[j].k); !ok {
			t.Fatalf("delete %x: not found", ref[j].k)
		}
		if tr.n%101 == 0 {
			checkTree(t, tr)
		}
	}
	if tr.root != nil || tr.n != 0 || tr.bytes != 0 {
		t.Fatalf("emptied tree: root %v, %d keys, %d bytes", tr.root != nil, tr.n, tr.bytes)
	}
}

// A cursor keeps going, in order, when the tree changes under it: each Next
// returns the smallest key above the one returned before, as it is then.
func TestMemoryCursorSurvivesWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tr memTree
	var ref []refKV
	for range 2000 {
		k := randKey(rng)
		if _, _, existed := tr.put(k, nil); !existed {
			i, _ := refFind(ref, k)
			ref = slices.Insert(ref, i, refKV{k: k})
		}
	}
	c := &memCursor{tree: &tr}
	steps := 0
	for k, _ := c.First(); k != nil; steps++ {
		// Change the tree around the cursor, the current key included.
		for _, d := range []int{0, 1, 2, -1} {
			if i, ok := refFind(ref, k); d != 0 || ok {
				if j := i + d; j >= 0 && j < len(ref) && rng.IntN(2) == 0 {
					tr.delete(ref[j].k)
					ref = slices.Delete(ref, j, j+1)
				}
			}
		}
		nk := randKey(rng)
		if _, _, existed := tr.put(nk, nil); !existed {
			i, _ := refFind(ref, nk)
			ref = slices.Insert(ref, i, refKV{k: nk})
		}
		var want []byte
		if i, ok := refFind(ref, k); ok && i+1 < len(ref) {
			want = ref[i+1].k
		} else if !ok && i < len(ref) {
			want = ref[i].k
		}
		prev := k
		k, _ = c.Next()
		if !bytes.Equal(k, want) {
			t.Fatalf("step %d: Next after %x = %x, want %x", steps, prev, k, want)
		}
	}
	if steps < 10 {
		t.Fatalf("only %d steps", steps)
	}
	if k, _ := c.Next(); k != nil {
		t.Fatal("Next after the end returned a key")
	}
}

// TestMemoryMatchesBolt runs the same random transactions, some of which
// fail, on a bbolt file through the adapter and on a memDB, and compares
// every result and the full contents after each transaction.
func TestMemoryMatchesBolt(t *testing.T) {
	bdb, err := bolt.Open(filepath.Join(t.TempDir(), "raw.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	dbs := []kvDB{&boltDB{db: bdb}, newMemDB()}
	names := []string{"a", "b", "c\x00"}
	errAbort := errors.New("abort")

	dump := func(db kvDB) []string {
		var out []string
		if err := db.view(func(tx kvTx) error {
			for _, name := range names {
				b := tx.Bucket(name)
				if b == nil {
					out = append(out, fmt.Sprintf("%q absent", name))
					continue
				}
				c := b.Cursor()
				for k, v := c.First(); k != nil; k, v = c.Next() {
					out = append(out, fmt.Sprintf("%q %x=%x nil=%v", name, k, v, v == nil))
				}
				// Writes are refused in a read-only transaction.
				if err := b.Put([]byte("k"), nil); !errors.Is(err, bolterrors.ErrTxNotWritable) {
					out = append(out, fmt.Sprintf("Put in view: %v", err))
				}
			}
			_, err := tx.CreateBucketIfNotExists(names[0])
			out = append(out, fmt.Sprintf("create in view: %v", err))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}

	for round := range 300 {
		// Each backend replays the same stream of choices.
		seed := uint64(round)
		logs := make([][]string, len(dbs))
		for i, db := range dbs {
			rng := rand.New(rand.NewPCG(seed, 99))
			var log []string
			err := db.update(func(tx kvTx) error {
				for range 1 + rng.IntN(30) {
					name := names[rng.IntN(len(names))]
					k := randKey(rng)
					switch op := rng.IntN(10); {
					case op == 0:
						_, err := tx.CreateBucket(name)
						log = append(log, fmt.Sprintf("create %q: %v", name, err))
					case op == 1:
						log = append(log, fmt.Sprintf("bucket %q nil=%v", name, tx.Bucket(name) == nil))
					case op < 7:
						b, err := tx.CreateBucketIfNotExists(name)
						if err != nil {
							return err
						}
						v := randKey(rng)
						v = v[:rng.IntN(len(v)+1)] // empty values too
						log = append(log, fmt.Sprintf("put %q %x: %v", name, k, b.Put(k, v)))
					default:
						b := tx.Bucket(name)
						if b == nil {
							continue
						}
						v := b.Get(k)
						log = append(log, fmt.Sprintf("get %q %x = %x nil=%v; delete: %v", name, k, v, v == nil, b.Delete(k)))
					}
				}
				if rng.IntN(3) == 0 {
					return errAbort
				}
				return nil
			})
			if err != nil && !errors.Is(err, errAbort) {
				t.Fatal(err)
			}
			logs[i] = append(log, fmt.Sprintf("update: %v", err))
			logs[i] = append(logs[i], dump(db)...)
		}
		if !slices.Equal(logs[0], logs[1]) {
			t.Fatalf("round %d: bbolt and memory differ:\nbbolt:\n%s\nmemory:\n%s", round,
				strings.Join(logs[0], "\n"), strings.Join(logs[1], "\n"))
		}
	}
}

// TestMemoryConcurrentViewDuringUpdate runs readers against writers that
// keep an invariant in every committed transaction (items come in pairs),
// including writers that fail halfway. Run with -race.
func TestMemoryConcurrentViewDuringUpdate(t *testing.T) {
	s := mustCreateMemory(t, testOpts(nil))
	pair := func(i int) (a, b []byte) {
		return []byte(fmt.Sprintf("%d-a", i)), []byte(fmt.Sprintf("%d-b", i))
	}
	errHalfway := errors.New("halfway")
	var writers, readers sync.WaitGroup
	done := make(chan struct{})
	for w := range 2 {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 300 {
				i := rng.IntN(50)
				a, b := pair(i)
				err := s.Update(func(tx *Tx) error {
					if rng.IntN(2) == 0 {
						return errors.Join(tx.Delete("pairs", a), tx.Delete("pairs", b))
					}
					if err := tx.Put("pairs", a, []byte("x"), Forever); err != nil {
						return err
					}
					if rng.IntN(4) == 0 {
						return errHalfway // must leave no lone a
					}
					return tx.Put("pairs", b, []byte("x"), Forever)
				})
				if err != nil && !errors.Is(err, errHalfway) {
					t.Error(err)
					return
				}
				if _, err := s.Sweep(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for r := range 4 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 8))
			for {
				select {
				case <-done:
					return
				default:
				}
				err := s.View(func(tx *Tx) error {
					n, err := tx.Count("pairs")
					if err != nil {
						return err
					}
					seen := 0
					if err := tx.ForEach("pairs", func([]byte, time.Time) error { seen++; return nil }); err != nil {
						return err
					}
					a, b := pair(rng.IntN(50))
					hasA, errA := tx.Has("pairs", a)
					hasB, errB := tx.Has("pairs", b)
					if err := errors.Join(errA, errB); err != nil {
						return err
					}
					if n%2 != 0 || seen != n || hasA != hasB {
						return fmt.Errorf("torn read: count %d, ForEach %d, has a/b %v/%v", n, seen, hasA, hasB)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.FileSize(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	readers.Wait()
}

// GetShared reads what Get reads on both backends; a value it returned
// stays as it was while the item is overwritten, deleted or expires (a
// memory store shares the stored value, and never changes one in place).
func TestGetShared(t *testing.T) { forBackends(t, testGetShared) }

func testGetShared(t *testing.T, be backend) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	s := be.create(t, testOpts(clock))
	get := func(key string, shared bool) (string, bool) {
		t.Helper()
		var v []byte
		var ok bool
		if err := s.View(func(tx *Tx) error {
			var err error
			if shared {
				v, _, ok, err = tx.GetShared("env", []byte(key))
			} else {
				v, _, ok, err = tx.Get("env", []byte(key))
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return string(v), ok
	}
	mustUpdate(t, s, func(tx *Tx) error {
		return errors.Join(tx.Put("env", []byte("a"), []byte("first"), t0.Add(time.Hour)),
			tx.Put("env", []byte("b"), []byte("soon"), t0.Add(time.Minute)))
	})
	var held []byte
	if err := s.View(func(tx *Tx) error {
		var err error
		held, _, _, err = tx.GetShared("env", []byte("a"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("env", []byte("a"), []byte("second"), t0.Add(time.Hour)) })
	if v, ok := get("a", true); !ok || v != "second" {
		t.Fatalf("GetShared after overwrite = %q, %v", v, ok)
	}
	mustUpdate(t, s, func(tx *Tx) error { return tx.Delete("env", []byte("a")) })
	if string(held) != "first" {
		t.Fatalf("a shared value changed under its reader: %q", held)
	}
	for _, shared := range []bool{false, true} {
		if v, ok := get("a", shared); ok {
			t.Fatalf("deleted item read (shared %v): %q", shared, v)
		}
		if v, ok := get("b", shared); !ok || v != "soon" {
			t.Fatalf("live item (shared %v) = %q, %v", shared, v, ok)
		}
	}
	clock.Advance(time.Minute)
	if v, ok := get("b", true); ok {
		t.Fatalf("expired item read: %q", v)
	}
}

// compareAt orders keys bytewise, as bbolt does, whatever their lengths:
// keys that share their zero-padded 16-byte prefix (shorter keys, keys with
// zero bytes where another ends, 24-byte expiry index keys) included.
func TestCompareAtIsBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	key := func(base []byte) []byte {
		k := bytes.Clone(base[:rng.IntN(len(base)+1)])
		for range rng.IntN(3) {
			k = append(k, []byte{0x00, 0x01, 0xff}[rng.IntN(3)])
		}
		return k
	}
	for range 20000 {
		base := make([]byte, rng.IntN(30))
		for i := range base {
			if rng.IntN(3) > 0 {
				base[i] = byte(rng.IntN(256))
			}
		}
		a, b := key(base), key(base)
		var n btNode
		n.setItem(0, b, nil)
		n.n = 1
		if got, want := n.compareAt(0, prefixOf(a), a), bytes.Compare(a, b); got != want {
			t.Fatalf("compareAt(%x, %x) = %d, want %d", a, b, got, want)
		}
	}
}

// TestMemorySweepMatchesModel runs random puts, overwrites, deletes, sweeps
// and rolled-back transactions (some sweeping) on a memory store, which
// sweeps from its directory, and checks each Sweep against a model: it
// removes exactly the items whose expiry has passed, no sooner, and
// nothing is left due after it, rollbacks included.
func TestMemorySweepMatchesModel(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	s := mustCreateMemory(t, testOpts(clock))
	rng := rand.New(rand.NewPCG(3, 4))
	colls := []string{"a", "b", "c"}
	model := map[string]map[string]time.Time{}
	for _, c := range colls {
		model[c] = map[string]time.Time{}
	}
	randExp := func() time.Time {
		if rng.IntN(10) == 0 {
			return Forever
		}
		return clock.Now().Add(time.Duration(rng.IntN(600)-10) * time.Second)
	}
	boom := errors.New("boom")
	for round := range 2000 {
		clock.Advance(time.Duration(rng.IntN(40)) * time.Second)
		switch op := rng.IntN(10); {
		case op < 5:
			c, k, exp := colls[rng.IntN(3)], fmt.Sprint(rng.IntN(40)), randExp()
			mustUpdate(t, s, func(tx *Tx) error { return tx.Put(c, []byte(k), []byte("v"), exp) })
			model[c][k] = exp.Truncate(time.Second)
		case op < 6:
			c, k := colls[rng.IntN(3)], fmt.Sprint(rng.IntN(40))
			mustUpdate(t, s, func(tx *Tx) error { return tx.Delete(c, []byte(k)) })
			delete(model[c], k)
		case op < 8:
			// Changes, a sweep among them, all undone.
			err := s.Update(func(tx *Tx) error {
				for range rng.IntN(4) {
					if err := tx.Put(colls[rng.IntN(3)], []byte(fmt.Sprint(rng.IntN(40))), []byte("w"), randExp()); err != nil {
						return err
					}
				}
				if _, err := tx.sweep(); err != nil {
					return err
				}
				return errors.Join(boom, tx.Delete(colls[rng.IntN(3)], []byte(fmt.Sprint(rng.IntN(40)))))
			})
			if !errors.Is(err, boom) {
				t.Fatalf("round %d: rolled-back Update: %v", round, err)
			}
		default:
			want := 0
			for _, m := range model {
				for k, exp := range m {
					if !exp.After(clock.Now()) {
						want++
						delete(m, k)
					}
				}
			}
			if got, err := s.Sweep(); err != nil || got != want {
				t.Fatalf("round %d: Sweep = %d, %v; want %d", round, got, err, want)
			}
			if due, _ := s.dir.due(uint64(clock.Now().Unix())); len(due) != 0 {
				t.Fatalf("round %d: %d items due after Sweep", round, len(due))
			}
		}
		held := 0
		for _, c := range colls {
			held += len(model[c])
			if len(s.dir.colls[c]) != len(model[c]) {
				t.Fatalf("round %d: %q holds %d items, want %d", round, c, len(s.dir.colls[c]), len(model[c]))
			}
			for k, exp := range model[c] {
				if got := s.dir.colls[c][s.hasher.hash(c, []byte(k))]; got != uint64(exp.Unix()) || got < s.dir.nextDue {
					t.Fatalf("round %d: %q %s expires at %d (next due %d), want %d", round, c, k, got, s.dir.nextDue, exp.Unix())
				}
			}
		}
		if n := indexLen(t, s); n != held {
			t.Fatalf("round %d: %d items held, want %d", round, n, held)
		}
	}
}

// TestMemoryTreeGrowShrink checks the tree after every single put and
// delete while it grows from empty past three levels and shrinks back to
// empty, so that each change of shape is seen: the first leaf, a leaf root
// splitting, inner nodes (the only ones with children) appearing and
// merging away, and the root becoming a leaf again.
func TestMemoryTreeGrowShrink(t *testing.T) {
	var tr memTree
	const n = 2 * btMaxItems * btMaxItems
	key := func(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i*2654435761)) }
	heights := map[int]bool{}
	for i := range n {
		tr.put(key(i), []byte{byte(i)})
		heights[checkTree(t, &tr)] = true
	}
	for i := range n {
		if _, v, ok := tr.delete(key(i)); !ok || v[0] != byte(i) {
			t.Fatalf("delete %d: %x, %v", i, v, ok)
		}
		heights[checkTree(t, &tr)] = true
		if c := dumpTree(&tr); len(c) != n-i-1 {
			t.Fatalf("after %d deletes the cursor finds %d keys", i+1, len(c))
		}
	}
	if tr.root != nil || !heights[0] || !heights[1] || !heights[2] || !heights[3] {
		t.Fatalf("root %v, heights seen %v", tr.root != nil, heights)
	}
}
