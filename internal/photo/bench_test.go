package photo

import "testing"

// BenchmarkReencode12MP re-encodes a 4000 × 3000 JPEG with EXIF (a phone's
// 12-megapixel photo) to 1600 × 1200 at quality 80.
func BenchmarkReencode12MP(b *testing.B) {
	in := withMetadata(encodeJPEG(b, quadrants(4000, 3000)), 1)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, _, err := Reencode(in, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(out)), "out-bytes")
	}
}
