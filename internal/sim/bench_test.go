package sim

import (
	"context"
	"testing"
	"time"
)

// BenchmarkMoving runs 1,000 walkers for 20 simulated minutes with a
// message every 5 s: the per-event cost of the simulator and the node code
// it drives.
func BenchmarkMoving(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Width, sc.Height = 1000, 2000, 2000
	sc.Duration, sc.TTL, sc.Messages = 20*time.Minute, 10*time.Minute, 120
	for b.Loop() {
		r, err := Run(context.Background(), sc, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Links), "links")
		b.ReportMetric(float64(r.Transmissions), "transmissions")
	}
}

func BenchmarkMovingLongTTL(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Width, sc.Height = 1000, 2000, 2000
	sc.PauseMax = 30 * time.Minute
	sc.Duration, sc.TTL, sc.Messages, sc.SendUntil = time.Hour, 6*time.Hour, 720, time.Hour
	for b.Loop() {
		r, err := Run(context.Background(), sc, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Links), "links")
	}
}
