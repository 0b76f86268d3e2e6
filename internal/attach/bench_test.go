package attach

import (
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// BenchmarkSeal seals the chunks of a 16 MiB file (the default limit); the
// MB/s are of file bytes. overhead-% is what every chunk costs on the wire
// beyond its file bytes: the envelope, the Merkle path, the link frame and
// the chunk's receipt in its own frame.
func BenchmarkSeal(b *testing.B) {
	data := content("bench", DefaultMaxFileSize)
	f := prepare(b, data, Options{Receipts: true})
	m := f.Manifest()
	b.SetBytes(int64(m.ChunkSize))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Seal(i%(m.Chunks-1), 1800000000, 12); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(overheadPercent(m.ChunkSize), "overhead-%")
}

// BenchmarkOpen opens and verifies chunks of a 16 MiB file.
func BenchmarkOpen(b *testing.B) {
	data := content("bench", DefaultMaxFileSize)
	f := prepare(b, data, Options{Receipts: true})
	m := f.Manifest()
	ks := NewKeys(m)
	chunks := make([][]byte, 64)
	for i := range chunks {
		chunks[i], _ = f.Seal(i, 1800000000, 12)
	}
	b.SetBytes(int64(m.ChunkSize))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ks.Open(chunks[i%len(chunks)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(overheadPercent(m.ChunkSize), "overhead-%")
}

// BenchmarkAssemble reassembles a 16 MiB file in memory: open, verify, write,
// and the final whole-file check.
func BenchmarkAssemble(b *testing.B) {
	data := content("bench", DefaultMaxFileSize)
	f := prepare(b, data, Options{Receipts: true})
	chunks := sealAll(b, f)
	m := f.Manifest()
	b.SetBytes(m.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, _ := NewAssembler(m, NewMemStorage())
		for _, raw := range chunks {
			if _, err := a.Add(raw, "B"); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

func overheadPercent(chunkSize int) float64 {
	const frame = 19 // SPEC §10.3: length, type, Noise tag
	wire := envelope.ChunkSize + frame + envelope.ReceiptSize + frame
	return 100 * float64(wire-chunkSize) / float64(chunkSize)
}
