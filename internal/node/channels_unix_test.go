//go:build unix

package node

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// BenchmarkIngestUnstamped is what a relay spends dropping a spammer's
// unstamped posts: per envelope, in batches of 256 from one link.
func BenchmarkIngestUnstamped(b *testing.B) {
	clk := newTestClock()
	n, err := Init(b.TempDir()+"/r", []byte("pw"), "Relay", DefaultConfig, Options{Now: clk.Now, KDF: store.TestKDF()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	c := room.Nearby()
	batch := make([][]byte, 256)
	for i := range batch {
		e, _ := c.Seal(n.id, keys.PeriodOf(clk.Now()), postContent(strings.Repeat("x", 100)), uint32(clk.Now().Add(time.Hour).Unix()), 2,
			bytes.NewReader(bytes.Repeat([]byte{byte(i), byte(i >> 8), 1}, 3)))
		raw := e.Marshal()
		for room.CheckStamp(raw, room.DefaultStampBits) == nil {
			raw[6]++
		}
		batch[i] = raw
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for b.Loop() {
		rep, err := n.IngestFrom("10.0.0.66:1", batch, nil)
		if err != nil || rep.Unstamped != len(batch) {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/envelope")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(batch)), "cpu-ns/envelope")
}
