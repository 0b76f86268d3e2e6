package session

import (
	"fmt"
	"testing"
)

// linkOverhead is what a link adds to each frame (SPEC §10.3): a 2-byte
// length, the type byte and a 16-byte AEAD tag.
const linkOverhead = 2 + 1 + 16

// BenchmarkReconcile syncs two nodes holding 100,000 envelopes each, with d
// differences split between them, and reports what reconciliation cost on
// the wire (NegOpen, Neg, Want and Done frames with link framing; the
// envelopes themselves are counted apart) and in round trips.
func BenchmarkReconcile(b *testing.B) {
	const total = 100000
	all := make([][]byte, total+1000)
	for i := range all {
		all[i] = fixedEnvelope(1000000 + i)
		all[i][1] = 5 // hop budget
	}
	for _, d := range []int{0, 10, 100, 1000} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			common := all[:total-d/2-d%2]
			onlyA := all[total : total+d/2]
			onlyB := all[total-d/2-d%2 : total]
			var recon, envBytes, trips, moved int
			for b.Loop() {
				sa := newMemStore(append(append([][]byte{}, common...), onlyA...))
				sb := newMemStore(append(append([][]byte{}, common...), onlyB...))
				recon, envBytes, trips, moved = 0, 0, 0, 0
				pumpRecord(b, New(sa, Config{Initiator: true}), New(sb, Config{}), func(from string, f Frame) {
					switch f.Type {
					case TypeEnvelope:
						envBytes += linkOverhead + len(f.Payload)
						moved++
					default:
						recon += linkOverhead + len(f.Payload)
						if f.Type == TypeNeg && from == "responder" {
							trips++
						}
					}
				})
				if len(sa.m) != len(sb.m) {
					b.Fatalf("after sync A holds %d and B %d", len(sa.m), len(sb.m))
				}
			}
			if moved != d {
				b.Fatalf("%d envelopes moved for %d differences", moved, d)
			}
			b.ReportMetric(float64(recon), "wire-bytes")
			b.ReportMetric(float64(trips), "round-trips")
			if d > 0 {
				b.ReportMetric(float64(recon)/float64(d), "bytes/diff")
			}
			b.ReportMetric(float64(envBytes), "envelope-bytes")
		})
	}
}
