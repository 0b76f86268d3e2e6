package mobility

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLogPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// No subnormals: math.Log on amd64 gets them wrong (it returns
	// -709.09 for 5e-324), which is one reason not to use it.
	xs := []float64{1, 2, 0.5, math.E, 10, 1 + 1e-12, 1 - 1e-12, 1e-300, 1e300, math.MaxFloat64}
	for range 10000 {
		xs = append(xs, math.Exp(rng.NormFloat64()*50))
	}
	for _, x := range xs {
		got, want := logPortable(x), math.Log(x)
		if math.Abs(got-want) > 4e-16*max(1, math.Abs(want)) {
			t.Errorf("logPortable(%v) = %v, math.Log %v", x, got, want)
		}
	}
}

func TestMeanInverse(t *testing.T) {
	for _, ab := range [][2]float64{{1, 1}, {1, 1 + 1e-9}, {1, 1.5}, {1, 2}, {0.5, 20}, {1e-6, 1e6}} {
		a, b := ab[0], ab[1]
		want := 1 / a
		if b > a {
			want = math.Log1p((b-a)/a) / (b - a)
		}
		if got := meanInverse(a, b); math.Abs(got-want) > 1e-12*want {
			t.Errorf("meanInverse(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
}

func TestMeanDistance(t *testing.T) {
	if got, want := meanDistance(1, 1), 0.5214054331647207; math.Abs(got-want) > 1e-15 {
		t.Errorf("unit square: %v, want %v", got, want)
	}
	if got := meanDistance(3, 7) / meanDistance(7, 3); got != 1 {
		t.Errorf("meanDistance is not symmetric: ratio %v", got)
	}
	// A segment of length L has mean distance L/3.
	if got, want := meanDistance(1e9, 1e-3), 1e9/3; math.Abs(got-want) > 1e-9*want {
		t.Errorf("thin rectangle: %v, want %v", got, want)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, wh := range [][2]float64{{1000, 600}, {1, 50}, {1000, 10}} {
		w, h := wh[0], wh[1]
		const k = 400000
		sum := 0.0
		for range k {
			sum += math.Hypot((rng.Float64()-rng.Float64())*w, (rng.Float64()-rng.Float64())*h)
		}
		mc, got := sum/k, meanDistance(w, h)
		if math.Abs(got-mc) > 0.005*got {
			t.Errorf("%v×%v: meanDistance %v, Monte Carlo %v", w, h, got, mc)
		}
	}
}

// inverseSpeed's draws have density ∝ 1/v on [a, b]: their mean is
// (b-a)/ln(b/a) and their median √(ab).
func TestInverseSpeed(t *testing.T) {
	for _, ab := range [][2]float64{{2, 2}, {1, 1.3}, {1, 2}, {1, 2.1}, {0.5, 20}, {1e-6, 1e6}} {
		a, b := ab[0], ab[1]
		var rng rand.PCG
		seedNode(&rng, 99, 0)
		const k = 200000
		sum, sum2, below := 0.0, 0.0, 0
		for range k {
			v := inverseSpeed(&rng, a, b)
			if v < a || v > b {
				t.Fatalf("[%v, %v]: drew %v", a, b, v)
			}
			sum += v
			sum2 += v * v
			if v < math.Sqrt(a*b) {
				below++
			}
		}
		want := a
		if b > a {
			want = (b - a) / math.Log(b/a)
		}
		mean := sum / k
		se := math.Sqrt(max(sum2/k-mean*mean, 0) / k)
		if math.Abs(mean-want) > 4*se+1e-12*want {
			t.Errorf("[%v, %v]: mean %v ± %v, want %v", a, b, mean, se, want)
		}
		if frac := float64(below) / k; b > a && math.Abs(frac-0.5) > 0.01 {
			t.Errorf("[%v, %v]: %.3f of draws below √(ab), want 0.5", a, b, frac)
		}
	}
}

// A waypoint world starts stationary: the share of nodes moving, their mean
// speed and the nodes' mean distance from the centre are the same at time 0
// as in the long run. (Started from uniform positions with speeds uniform on
// [SpeedMin, SpeedMax], all three would drift over the first few legs: here
// the mean speed would start near 10.5 m/s instead of about 6.4, and the
// mean distance from the centre near 383 m instead of about 335.) The
// tolerances hold with room to spare over 30 other seeds.
func TestStationaryStart(t *testing.T) {
	c := Config{
		Nodes: 4000, Width: 1000, Height: 1000, Model: Waypoint,
		SpeedMin: 1, SpeedMax: 20, PauseMin: 0, PauseMax: 120, Seed: 8,
	}
	w := mustNew(t, c)
	type stats struct{ moving, speed, centre float64 }
	measure := func() stats {
		var s stats
		moving := 0
		for i := range w.N() {
			n := &w.wp[i]
			if w.t < n.t1 {
				moving++
				s.speed += math.Hypot(n.vx, n.vy)
			}
			x, y := w.Pos(i)
			s.centre += math.Hypot(x-c.Width/2, y-c.Height/2)
		}
		s.speed /= float64(moving)
		s.moving = float64(moving) / float64(w.N())
		s.centre /= float64(w.N())
		return s
	}
	start := measure()
	var long stats
	const samples = 40
	for k := range samples {
		w.Advance(3000 + 250*float64(k))
		s := measure()
		long.moving += s.moving / samples
		long.speed += s.speed / samples
		long.centre += s.centre / samples
	}
	// The stationary share of moving nodes, from the model's means.
	travel := meanDistance(c.Width, c.Height) * meanInverse(c.SpeedMin, c.SpeedMax)
	wantMoving := travel / (travel + (c.PauseMin+c.PauseMax)/2)
	t.Logf("moving %.3f (theory %.3f), long run %.3f; speed %.2f, long run %.2f; distance from centre %.1f, long run %.1f",
		start.moving, wantMoving, long.moving, start.speed, long.speed, start.centre, long.centre)
	if math.Abs(start.moving-wantMoving) > 0.03 || math.Abs(long.moving-wantMoving) > 0.03 {
		t.Errorf("share moving: %.3f at start, %.3f in the long run, theory %.3f", start.moving, long.moving, wantMoving)
	}
	if math.Abs(start.speed-long.speed) > 0.07*long.speed {
		t.Errorf("mean speed of moving nodes: %.3f at start, %.3f in the long run", start.speed, long.speed)
	}
	if math.Abs(start.centre-long.centre) > 0.025*long.centre {
		t.Errorf("mean distance from centre: %.2f at start, %.2f in the long run", start.centre, long.centre)
	}
	// For contrast: uniform positions are farther from the centre on
	// average than the stationary ones, by more than the tolerance above.
	uniform := 0.3826 * c.Width // mean distance from a unit square's centre is 0.3826
	if uniform-long.centre < 0.05*long.centre {
		t.Errorf("long-run distance from centre %.1f too close to the uniform %.1f for this test to mean anything", long.centre, uniform)
	}
}
