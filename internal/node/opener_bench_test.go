package node

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/negentropy"
)

// hostileOpener is the 20-byte reconciliation opener of finding 8: one
// Fingerprint range up to infinity with a made-up fingerprint, which
// matches nothing the responder holds.
func hostileOpener() []byte {
	msg := []byte{negentropy.ProtocolVersion, 0x00, 0x00, 0x01} // bound infinity, mode Fingerprint
	fp := make([]byte, negentropy.FingerprintSize)
	rand.Read(fp)
	return append(msg, fp...)
}

// BenchmarkOpener measures what a responder holding n envelopes spends on
// one hostile opener (SPEC §11.3, §13.1): taking a snapshot of what it holds
// and answering the opener. "changed" adds an envelope before each opener,
// as a flood of junk would, so that the snapshot is never the last one;
// "unchanged" reuses it.
func BenchmarkOpener(b *testing.B) {
	for _, n := range []int{1000, 10_000, 100_000} {
		for _, changed := range []bool{false, true} {
			name := fmt.Sprintf("n=%d/unchanged", n)
			if changed {
				name = fmt.Sprintf("n=%d/changed", n)
			}
			b.Run(name, func(b *testing.B) {
				iv := newInventory(DefaultRecordCache)
				expiry := uint32(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
				add := func(i int) {
					var id envelope.ID
					rand.Read(id[:])
					iv.add(id, heldMeta{expiry: expiry + uint32(i%(7*86400)), size: 100, source: 1})
				}
				for i := range n {
					add(i)
				}
				if _, err := iv.snapshot(); err != nil {
					b.Fatal(err)
				}
				opener := hostileOpener()
				i := n
				for b.Loop() {
					if changed {
						add(i)
						i++
					}
					st, err := iv.snapshot()
					if err != nil {
						b.Fatal(err)
					}
					res, err := negentropy.NewResponder(st, 60000)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := res.Reconcile(opener); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/opener")
			})
		}
	}
}
