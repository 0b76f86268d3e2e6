package node

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestImportInBoundedMemory imports a 128 MiB bundle of envelopes of the
// largest size bucket (finding 10: a 262 MB bundle of large records needed
// 1.23 GB) while sampling the heap every 2 ms, and holds the peak growth of
// the heap in use to 64 MiB, half the file. An import works one batch of at
// most 2 MiB at a time (importBatchBytes); what a batch costs in memory —
// the batch, its sealed copy, bbolt's pages for the transaction, and the
// garbage the collector has not yet reclaimed — is what is measured.
// Measured: 38 MiB for a 32 MiB file, 46 for 64, 48 for 128, 52 for 256.
func TestImportInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and imports a 128 MiB bundle")
	}
	const (
		fileSize = 128 << 20
		bound    = 64 << 20
	)
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	relay.SetRelayQuota(1 << 30) // keep everything: nothing is evicted
	path := filepath.Join(t.TempDir(), "big.gvb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := bundle.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 32000) // the largest size bucket is 32 KiB
	n := 0
	for written := 0; written < fileSize; n++ {
		s := envelope.Sealing{Expiry: expiryFor(clk.Now().Add(time.Hour)), Hops: 5}
		rand.Read(s.Key[:])
		rand.Read(s.Tag[:])
		e, err := envelope.Seal(s, body)
		if err != nil {
			t.Fatal(err)
		}
		raw := e.Marshal()
		if err := w.Add(raw); err != nil {
			t.Fatal(err)
		}
		written += len(raw)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	rep, err := relay.ImportFile(context.Background(), path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != n || !rep.Complete {
		t.Fatalf("imported %d new of %d: %+v", rep.New, n, rep)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("imported %d envelopes (%d MiB): heap in use grew by at most %.1f MiB (bound %d MiB)", n, fileSize>>20, float64(growth)/(1<<20), bound>>20)
	if growth > bound {
		t.Fatalf("heap in use grew by %d MiB importing a %d MiB bundle; bound %d MiB", growth>>20, fileSize>>20, bound>>20)
	}
}
