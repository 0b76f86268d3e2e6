package sim

import (
	"context"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/sim/mobility"
)

// benchRun runs sc b.N times and reports the simulator's speed in domain
// units: simulated seconds per wall second, and envelope transmissions
// (every copy on every link) per wall second.
func benchRun(b *testing.B, sc Scenario) {
	var r *Result
	start := time.Now()
	for b.Loop() {
		var err error
		if r, err = Run(context.Background(), sc, nil); err != nil {
			b.Fatal(err)
		}
	}
	wall := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(sc.Duration.Seconds()/wall, "sim-s/s")
	b.ReportMetric(float64(r.Transmissions)/wall, "transmissions/s")
	b.ReportMetric(float64(r.Links), "links")
}

// BenchmarkMoving: 1,000 walkers on 4 km² for 20 simulated minutes, a
// message every 10 s.
func BenchmarkMoving(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Width, sc.Height = 1000, 2000, 2000
	sc.Duration, sc.TTL, sc.Messages = 20*time.Minute, 10*time.Minute, 120
	benchRun(b, sc)
}

// BenchmarkMovingLongTTL: the same walkers for an hour, a message every
// 5 s, each living 6 hours: stores and reconciliations grow.
func BenchmarkMovingLongTTL(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Width, sc.Height = 1000, 2000, 2000
	sc.PauseMax = 30 * time.Minute
	sc.Duration, sc.TTL, sc.Messages, sc.SendUntil = time.Hour, 6*time.Hour, 720, time.Hour
	benchRun(b, sc)
}

// BenchmarkStatic: 2,000 standing people at mean degree 6.4 flooding 100
// messages with no hop limit.
func BenchmarkStatic(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Range, sc.Hops, sc.Loss = 2000, 32, node.MaxHops, 0
	sc.Mobility, sc.Duration, sc.Messages = mobility.Static, 5*time.Minute, 100
	benchRun(b, sc)
}

// BenchmarkWalkersDay: two hours of the documented scale scenario (1,000
// walkers on 4 km², 50 m radios, a message about every 5 s living an hour),
// long enough for stores to reach their steady state.
func BenchmarkWalkersDay(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Width, sc.Height = 1000, 2000, 2000
	sc.PauseMax = 30 * time.Minute
	sc.Duration, sc.TTL, sc.Messages = 2*time.Hour, time.Hour, 750
	benchRun(b, sc)
}

// BenchmarkWalkersDayRate: three hours of the documented day at its own
// rate, a message every 5 s (BenchmarkWalkersDay sends one every 10 s):
// with twice as much held, the live heap is the day's, and so is the
// collector's share of the CPU (docs/simulation.md §4).
func BenchmarkWalkersDayRate(b *testing.B) {
	sc := Default
	sc.Nodes, sc.Width, sc.Height = 1000, 2000, 2000
	sc.PauseMax = 30 * time.Minute
	sc.Duration, sc.TTL, sc.Messages = 3*time.Hour, time.Hour, 2160
	benchRun(b, sc)
}
