package node

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// BenchmarkRecognise measures finding one's own envelope among the tags of
// N contacts (each with the full retention window). The cost is one map
// lookup, so ns/op must not grow with N.
func BenchmarkRecognise(b *testing.B) {
	for _, contacts := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("contacts=%d", contacts), func(b *testing.B) {
			ix := newIndex()
			const now = 20413
			var probe [16]byte
			for i := range contacts {
				c := &contactRecord{Fingerprint: fmt.Sprint(i), Recv: []keys.RecvChain{{Chain: keys.Chain{Period: now - 8}}}}
				rand.Read(c.Recv[0].Key[:])
				ix.setContact(c, now-8, now+1)
				if i == contacts/2 {
					probe = c.Recv[0].At(now).Tag(3)
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			var miss [16]byte
			rand.Read(miss[:])
			for b.Loop() {
				if _, ok := ix.lookup(probe); !ok {
					b.Fatal("own envelope not recognised")
				}
				if _, ok := ix.lookup(miss); ok {
					b.Fatal("random tag recognised")
				}
			}
			b.ReportMetric(float64(len(ix.slots)), "tags")
			b.ReportMetric(float64(ms.HeapAlloc)/float64(contacts), "heap-bytes/contact")
		})
	}
}

// BenchmarkIngestCarried measures durable ingest of envelopes carried for
// others (the common case for a relay): parse, dedupe, recognise, seal at
// rest and commit, in batches as an import does.
func BenchmarkIngestCarried(b *testing.B) {
	clk := newClock()
	n, err := Init(filepath.Join(b.TempDir(), "home"), []byte("pw"), "Relay", DefaultConfig, Options{Now: clk.Now, KDF: store.TestKDF})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	const batch = importBatch
	make := func() [][]byte {
		out := make([][]byte, batch)
		for i := range out {
			s := envelope.Sealing{Expiry: uint32(clk.Now().Add(time.Hour).Unix()), Hops: 5}
			rand.Read(s.Key[:])
			rand.Read(s.Tag[:])
			e, _ := envelope.Seal(s, []byte("a carried message of about a hundred characters, padded into the 128-byte bucket"))
			out[i] = e.Marshal()
		}
		return out
	}
	b.ResetTimer()
	total := 0
	for b.Loop() {
		b.StopTimer()
		envs := make()
		b.StartTimer()
		rep, err := n.Ingest(envs)
		if err != nil || rep.New != batch {
			b.Fatalf("ingest: %+v, %v", rep, err)
		}
		total += batch
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "envelopes/s")
}
