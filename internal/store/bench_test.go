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
