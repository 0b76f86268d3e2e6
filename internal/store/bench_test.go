package store

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkPutBatch measures durable batched writes: each iteration is one
// Update transaction (fsynced on commit) putting 1,000 distinct 200-byte
// values.
func BenchmarkPutBatch(b *testing.B) {
	const batch = 1000
	s := mustCreate(b, b.TempDir(), Options{KDF: TestKDF()})
	defer s.Close()
	value := make([]byte, 200)
	exp := time.Now().Add(24 * time.Hour)
	key := make([]byte, 8)
	var seq uint64
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		err := s.Update(func(tx *Tx) error {
			for range batch {
				seq++
				binary.BigEndian.PutUint64(key, seq)
				if err := tx.Put("envelopes", key, value, exp); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(batch*b.N)/elapsed.Seconds(), "items/s")
}

// BenchmarkMemoryPutGet measures what the simulator pays per stored item:
// one Update putting a 300-byte value and one View getting it back, on a
// memory store that grows by one item per iteration.
func BenchmarkMemoryPutGet(b *testing.B) {
	s, err := CreateMemory(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchPutGet(b, s, 0)
}

// BenchmarkMemoryPutGet100k is the same on a store already holding 100,000
// items, where the B-tree (up to 31 keys a node) is 4 or 5 levels deep.
func BenchmarkMemoryPutGet100k(b *testing.B) {
	s, err := CreateMemory(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchPutGet(b, s, 100_000)
}

// BenchmarkFilePutGet is BenchmarkMemoryPutGet on a bbolt file store, for
// comparison: every Update is fsynced.
func BenchmarkFilePutGet(b *testing.B) {
	s := mustCreate(b, b.TempDir(), Options{KDF: TestKDF()})
	defer s.Close()
	benchPutGet(b, s, 0)
}

// benchPutGet puts prefill items first (untimed), then per iteration puts a
// new 300-byte value and gets it back, each in its own transaction.
func benchPutGet(b *testing.B, s *Store, prefill int) {
	value := make([]byte, 300)
	exp := time.Now().Add(24 * time.Hour)
	key := make([]byte, 8)
	const coll = "envelopes"
	for i := 0; i < prefill; i += 1000 {
		err := s.Update(func(tx *Tx) error {
			for j := i; j < min(i+1000, prefill); j++ {
				binary.BigEndian.PutUint64(key, uint64(j)|1<<63)
				if err := tx.Put(coll, key, value, exp); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint64(key, uint64(i))
		if err := s.Update(func(tx *Tx) error { return tx.Put(coll, key, value, exp) }); err != nil {
			b.Fatal(err)
		}
		var ok bool
		err := s.View(func(tx *Tx) error {
			var err error
			_, _, ok, err = tx.Get(coll, key)
			return err
		})
		if err != nil || !ok {
			b.Fatalf("Get: ok=%v err=%v", ok, err)
		}
	}
}

// BenchmarkErasableTx measures what one transaction pays for the key file,
// by what it does to erasable items (a store with 100 erasable contacts):
// keyfile-fsyncs/tx is exact and on top of the database commit's own two
// fdatasyncs. plain touches no erasable item; new gives one new item a key
// (one slot written before the commit); replace overwrites one (both slots
// after the commit, the new key being derived from the old); delete drops
// one (both slots after); new+replace does both (three writes). A write
// rewrites a whole slot (8 KiB here), so its cost grows with the number of
// erasable items.
func BenchmarkErasableTx(b *testing.B) {
	kinds := []struct {
		name string
		fn   func(tx *Tx, i int) error
		prep func(tx *Tx, i int) error // untimed, before
	}{
		{name: "plain", fn: func(tx *Tx, i int) error {
			return tx.Put("envelopes", fmt.Appendf(nil, "e%d", i), make([]byte, 200), Forever)
		}},
		{
			name: "new",
			// The previous one goes, so that the table does not grow.
			prep: func(tx *Tx, i int) error { return tx.Delete("contacts", fmt.Appendf(nil, "n%d", i-1)) },
			fn: func(tx *Tx, i int) error {
				return tx.Put("contacts", fmt.Appendf(nil, "n%d", i), make([]byte, 200), Forever)
			},
		},
		{name: "replace", fn: func(tx *Tx, i int) error {
			return tx.Put("contacts", fmt.Appendf(nil, "c%d", i%100), make([]byte, 200), Forever)
		}},
		{
			name: "delete",
			prep: func(tx *Tx, i int) error {
				return tx.Put("contacts", fmt.Appendf(nil, "d%d", i), make([]byte, 200), Forever)
			},
			fn: func(tx *Tx, i int) error { return tx.Delete("contacts", fmt.Appendf(nil, "d%d", i)) },
		},
		{name: "new+replace", prep: func(tx *Tx, i int) error { return tx.Delete("contacts", fmt.Appendf(nil, "n%d", i-1)) }, fn: func(tx *Tx, i int) error {
			return errorsJoin(tx.Put("contacts", fmt.Appendf(nil, "n%d", i), make([]byte, 200), Forever),
				tx.Put("contacts", fmt.Appendf(nil, "c%d", i%100), make([]byte, 200), Forever))
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			s := mustCreate(b, b.TempDir(), Options{KDF: TestKDF(), Erasable: []string{"contacts"}})
			defer s.Close()
			mustUpdate(b, s, func(tx *Tx) error {
				for i := range 100 {
					if err := tx.Put("contacts", fmt.Appendf(nil, "c%d", i), make([]byte, 200), Forever); err != nil {
						return err
					}
				}
				return nil
			})
			syncs, txs := 0, 0
			for b.Loop() {
				if k.prep != nil {
					b.StopTimer()
					mustUpdate(b, s, func(tx *Tx) error { return k.prep(tx, txs) })
					b.StartTimer()
				}
				before := s.kf.syncs
				mustUpdate(b, s, func(tx *Tx) error { return k.fn(tx, txs) })
				syncs += s.kf.syncs - before
				txs++
			}
			b.ReportMetric(float64(syncs)/float64(txs), "keyfile-fsyncs/tx")
		})
	}
}

// BenchmarkOpen100k opens (and closes) a store holding 100,000 envelopes
// of 182 bytes and 100 erasable contacts: one pass over the items, peeking
// at each envelope's header and opening each contact in full, to build the
// directory.
func BenchmarkOpen100k(b *testing.B) {
	dir := b.TempDir()
	opts := Options{KDF: TestKDF(), Erasable: []string{"contacts"}}
	s := mustCreate(b, dir, opts)
	value := make([]byte, 182)
	exp := time.Now().Add(7 * 24 * time.Hour)
	for i := 0; i < 100_000; i += 5000 {
		mustUpdate(b, s, func(tx *Tx) error {
			for j := i; j < i+5000; j++ {
				if err := tx.Put("envelopes", binary.BigEndian.AppendUint64(nil, uint64(j)), value, exp); err != nil {
					return err
				}
			}
			return nil
		})
	}
	mustUpdate(b, s, func(tx *Tx) error {
		for i := range 100 {
			if err := tx.Put("contacts", fmt.Appendf(nil, "c%d", i), value, Forever); err != nil {
				return err
			}
		}
		return nil
	})
	s.Close()
	b.ReportAllocs()
	for b.Loop() {
		s := mustOpen(b, dir, opts)
		if s.dir.total != 100_100 {
			b.Fatalf("directory holds %d items", s.dir.total)
		}
		s.Close()
	}
}

// BenchmarkBytesPerItem fills a file store and a memory store with 20,000
// envelopes of 54 and of 182 bytes (the smallest and a typical envelope)
// and reports the bytes each item costs: file-B/item is the database
// file's size over the item count; inuse-B/item counts only the bytes
// bbolt uses in the pages of the two buckets; memory-B/item is what a
// memory store's FileSize reports (keys and values only).
func BenchmarkBytesPerItem(b *testing.B) {
	const n = 20_000
	for _, size := range []int{54, 182} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			var file, inuse, mem float64
			for b.Loop() {
				s := mustCreate(b, b.TempDir(), Options{KDF: TestKDF()})
				m, err := CreateMemory(Options{})
				if err != nil {
					b.Fatal(err)
				}
				fillEnvelopes(b, s, n, size)
				fillEnvelopes(b, m, n, size)
				fs, _ := s.db.size()
				file = float64(fs) / n
				inuse = float64(boltInuse(b, s)) / n
				ms, _ := m.FileSize()
				mem = float64(ms) / n
				s.Close()
				m.Close()
			}
			b.ReportMetric(file, "file-B/item")
			b.ReportMetric(inuse, "inuse-B/item")
			b.ReportMetric(mem, "memory-B/item")
		})
	}
}

func fillEnvelopes(b *testing.B, s *Store, n, size int) {
	value := make([]byte, size)
	exp := time.Now().Add(7 * 24 * time.Hour)
	for i := 0; i < n; i += 1000 {
		mustUpdate(b, s, func(tx *Tx) error {
			for j := i; j < i+1000; j++ {
				if err := tx.Put("envelopes", binary.BigEndian.AppendUint64(nil, uint64(j)), value, exp); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// boltInuse sums the bytes bbolt uses in the pages of the items and expiry
// buckets.
func boltInuse(b *testing.B, s *Store) int {
	n := 0
	err := s.db.(*boltDB).db.View(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketItems, bucketExpiry} {
			st := tx.Bucket([]byte(name)).Stats()
			n += st.BranchInuse + st.LeafInuse + st.InlineBucketInuse
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkMemoryHeapPerItem measures what the simulator pays in live heap
// for each item of a memory store, everything counted (value, key, tree
// slots, expiry bookkeeping, directory): heap-B/item over stores of a few
// sizes, filled the way a node fills its store, one envelope of 182 bytes a
// transaction with a later expiry each time. value-B/item is the part that
// is the sealed value itself, the same in every layout.
func BenchmarkMemoryHeapPerItem(b *testing.B) {
	for _, size := range []int{12, 300, 20_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			stores := max(1, 100_000/size)
			var perItem, valuePerItem float64
			for b.Loop() {
				t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
				before := liveHeap()
				all := make([]*Store, stores)
				for i := range all {
					all[i] = fillMemory(b, size, t0)
				}
				perItem = float64(liveHeap()-before) / float64(stores*size)
				valuePerItem = float64(fileSize(b, all[0])/int64(size)) - 2*hkeySize - 8
				for _, s := range all {
					s.Close()
				}
			}
			b.ReportMetric(perItem, "heap-B/item")
			b.ReportMetric(valuePerItem, "value-B/item")
		})
	}
}

// fillMemory makes a memory store holding n envelopes, put one a
// transaction, each expiring a second after the one before.
func fillMemory(b *testing.B, n int, t0 time.Time) *Store {
	s, err := CreateMemory(Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 182)
	for i := range n {
		mustUpdate(b, s, func(tx *Tx) error {
			return tx.Put("envelopes", binary.BigEndian.AppendUint64(nil, uint64(i)), value, t0.Add(time.Hour+time.Duration(i)*time.Second))
		})
	}
	return s
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemorySweep measures Sweep on memory stores of 300 and 20,000
// envelopes expiring a second apart, called once a simulated minute as a
// node does (every few minutes): each call removes the 60 items that
// expired since the last. ns/sweep is the time of one call.
func BenchmarkMemorySweep(b *testing.B) {
	for _, size := range []int{300, 20_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			var sweeps int
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				clock := &fakeClock{t: t0}
				s := fillMemory(b, size, t0)
				s.now = clock.Now
				clock.Advance(time.Hour - time.Second)
				b.StartTimer()
				start := time.Now()
				for range size / 60 {
					clock.Advance(time.Minute)
					if n, err := s.Sweep(); err != nil || n != 60 {
						b.Fatalf("Sweep = %d, %v; want 60", n, err)
					}
					sweeps++
				}
				elapsed += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(sweeps), "ns/sweep")
		})
	}
}
