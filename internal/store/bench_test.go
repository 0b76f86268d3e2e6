package store

import (
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkPutBatch measures durable batched writes: each iteration is one
// Update transaction (fsynced on commit) putting 1,000 distinct 200-byte
// values.
func BenchmarkPutBatch(b *testing.B) {
	const batch = 1000
	s := mustCreate(b, b.TempDir(), Options{KDF: TestKDF})
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
	s := mustCreate(b, b.TempDir(), Options{KDF: TestKDF})
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
