package bundle

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestSpanCRC: the CRC of any span follows from the CRCs of the stream up
// to its two ends, for every length a record can have.
func TestSpanCRC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*maxRecordLen)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for i := range 500 {
		k := r.IntN(MaxEnvelope + 5)
		if i < 5 {
			k = []int{0, 1, 255, 256, MaxEnvelope + 4}[i]
		}
		a := r.IntN(len(data) - k)
		before := crc32.Checksum(data[:a], castagnoli)
		after := crc32.Checksum(data[:a+k], castagnoli)
		if got, want := spanCRC(before, after, k), crc32.Checksum(data[a:a+k], castagnoli); got != want {
			t.Fatalf("span [%d, %d): %08x, want %08x", a, a+k, got, want)
		}
	}
}
