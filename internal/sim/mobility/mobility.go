// Package mobility owns the geometry of the mesh simulator: where each of N
// nodes is inside a Width×Height metre area at a given virtual time, which
// pairs of nodes are within radio range of each other (Pairs), and the
// connected components of that contact graph (Components). It knows nothing
// about messages, links or protocols.
//
// Two mobility models are provided: Static (nodes stay where they were
// placed, uniformly at random) and Waypoint (the random waypoint model,
// started in its stationary regime; see Waypoint).
//
// Everything is deterministic. Each node draws from its own PCG stream,
// derived from Config.Seed and the node's index only, so a node's trajectory
// does not depend on the other nodes or on the order they are processed in.
// Waypoint events are computed from those streams alone, so the positions at
// time t do not depend on how the Advance calls that reached t were split.
// The arithmetic avoids everything a platform may do differently: every
// product that feeds a sum is rounded by an explicit float64 conversion
// (which, per the Go spec, stops the compiler fusing it into a multiply-add,
// as it otherwise does on arm64, ppc64, s390x, riscv64 and amd64 v3), and no
// math function with assembly variants is used. A given Config therefore
// yields bit-identical positions and pairs on every run and architecture.
package mobility

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Model selects how nodes move.
type Model int

const (
	// Static nodes are placed uniformly at random in the area and never move.
	Static Model = iota
	// Waypoint is the random waypoint model. A node picks a destination
	// uniformly in the area and a speed uniformly in [SpeedMin, SpeedMax],
	// moves there in a straight line, pauses for a time drawn uniformly in
	// [PauseMin, PauseMax], and repeats.
	//
	// Started from uniform positions, random waypoint has a long initial
	// transient: the stationary node density is higher in the middle of the
	// area than at its edges, and the stationary speed distribution is biased
	// towards slow speeds (slow legs last longer), so statistics drift for
	// the first several legs. To avoid that, a Waypoint world starts in the
	// stationary regime (perfect sampling, after Le Boudec and Vojnović, "The
	// random trip model: stability, stationary regime, and perfect
	// simulation", 2006): at time 0 each node is paused, with the long-run
	// probability of being paused, at a uniform point for a residual pause;
	// or it is part way along a leg whose endpoints are drawn with density
	// proportional to their distance, at a uniform fraction of that leg,
	// with a speed drawn with density proportional to 1/v on
	// [SpeedMin, SpeedMax]. The initial positions are therefore not uniform
	// (they already have the centre-heavy stationary shape), and the
	// distribution of the world's state is the same at every time.
	Waypoint
	// Traced replays measured movement (Config.Trace; see Trace).
	Traced
)

// String returns the name ParseModel accepts.
func (m Model) String() string {
	switch m {
	case Static:
		return "static"
	case Waypoint:
		return "waypoint"
	case Traced:
		return "trace"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// ParseModel parses a model name: "static" or "waypoint" (any case).
func ParseModel(s string) (Model, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "static":
		return Static, nil
	case "waypoint":
		return Waypoint, nil
	case "trace":
		return Traced, nil
	}
	return 0, fmt.Errorf("mobility: unknown model %q (want \"static\", \"waypoint\" or \"trace\")", s)
}

// Limits on Config values, chosen to keep all arithmetic far from float64
// overflow, underflow and loss of time resolution.
const (
	MinSide  = 1e-3 // metres
	MaxSide  = 1e9  // metres
	MinSpeed = 1e-6 // m/s
	MaxSpeed = 1e6  // m/s
	MaxPause = 1e12 // seconds
)

// Config describes a world.
type Config struct {
	Nodes         int     // number of nodes, >= 1
	Width, Height float64 // metres, in [MinSide, MaxSide]
	Model         Model

	// Waypoint only (ignored by Static).
	SpeedMin, SpeedMax float64 // m/s, MinSpeed <= SpeedMin <= SpeedMax <= MaxSpeed
	PauseMin, PauseMax float64 // seconds, 0 <= PauseMin <= PauseMax <= MaxPause

	// Trace only: the movement to replay; Nodes must be its node count and
	// the area must hold every sample.
	Trace *Trace

	Seed uint64
}

// Validate reports the first bad field of c.
func (c Config) Validate() error {
	if c.Nodes < 1 || c.Nodes > math.MaxInt32 {
		return fmt.Errorf("mobility: Nodes = %d, want 1 to %d", c.Nodes, math.MaxInt32)
	}
	if !(c.Width >= MinSide && c.Width <= MaxSide) {
		return fmt.Errorf("mobility: Width = %v m, want %v to %v m", c.Width, MinSide, MaxSide)
	}
	if !(c.Height >= MinSide && c.Height <= MaxSide) {
		return fmt.Errorf("mobility: Height = %v m, want %v to %v m", c.Height, MinSide, MaxSide)
	}
	switch c.Model {
	case Static:
		return nil
	case Traced:
		if c.Trace == nil {
			return errors.New("mobility: Model = trace needs a Trace")
		}
		if c.Trace.Nodes() != c.Nodes {
			return fmt.Errorf("mobility: the trace moves %d nodes, not %d", c.Trace.Nodes(), c.Nodes)
		}
		if w, h := c.Trace.Extent(); w > c.Width || h > c.Height {
			return fmt.Errorf("mobility: the trace reaches %gx%g m, outside the %gx%g m area", w, h, c.Width, c.Height)
		}
		return nil
	case Waypoint:
	default:
		return fmt.Errorf("mobility: Model = %v, want Static, Waypoint or Traced", c.Model)
	}
	if !(c.SpeedMin >= MinSpeed && c.SpeedMin <= MaxSpeed) {
		return fmt.Errorf("mobility: SpeedMin = %v m/s, want %v to %v m/s (random waypoint needs a positive minimum speed)", c.SpeedMin, MinSpeed, MaxSpeed)
	}
	if !(c.SpeedMax >= c.SpeedMin && c.SpeedMax <= MaxSpeed) {
		return fmt.Errorf("mobility: SpeedMax = %v m/s, want SpeedMin (%v) to %v m/s", c.SpeedMax, c.SpeedMin, MaxSpeed)
	}
	if !(c.PauseMin >= 0 && c.PauseMin <= MaxPause) {
		return fmt.Errorf("mobility: PauseMin = %v s, want 0 to %v s", c.PauseMin, MaxPause)
	}
	if !(c.PauseMax >= c.PauseMin && c.PauseMax <= MaxPause) {
		return fmt.Errorf("mobility: PauseMax = %v s, want PauseMin (%v) to %v s", c.PauseMax, c.PauseMin, MaxPause)
	}
	return nil
}

// A World holds the nodes of one Config and the current virtual time.
// It is not safe for concurrent use.
type World struct {
	c    Config
	t    float64
	x, y []float64 // positions at time t
	wp   []node    // Waypoint state; nil for Static
	cur  []int     // Trace: each node's last sample at or before t

	pPause float64 // Waypoint: long-run probability that a node is paused
	diag   float64 // length of the area's diagonal

	grid grid // Pairs' reusable buffers
}

// node is one node's random waypoint state: the current leg, from (x0, y0)
// at t0 to (x1, y1) at t1, then a pause at (x1, y1) until next, when the
// following leg starts.
type node struct {
	rng    rand.PCG
	x0, y0 float64
	x1, y1 float64
	vx, vy float64 // velocity on the leg, m/s
	t0, t1 float64
	next   float64
}

// New returns the world described by c at time 0.
func New(c Config) (*World, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w := &World{
		c:    c,
		x:    make([]float64, c.Nodes),
		y:    make([]float64, c.Nodes),
		diag: hypot(c.Width, c.Height),
	}
	if c.Model == Traced {
		w.cur = make([]int, c.Nodes)
		w.placeTrace(0)
		return w, nil
	}
	if c.Model == Static {
		for i := range c.Nodes {
			var rng rand.PCG
			seedNode(&rng, c.Seed, i)
			w.x[i] = float64(unif(&rng) * c.Width)
			w.y[i] = float64(unif(&rng) * c.Height)
		}
		return w, nil
	}
	meanPause := float64((c.PauseMin + c.PauseMax) / 2)
	meanTravel := float64(meanDistance(c.Width, c.Height) * meanInverse(c.SpeedMin, c.SpeedMax))
	w.pPause = meanPause / (meanPause + meanTravel)
	w.wp = make([]node, c.Nodes)
	for i := range w.wp {
		n := &w.wp[i]
		seedNode(&n.rng, c.Seed, i)
		w.startStationary(n)
	}
	w.place(0)
	return w, nil
}

// seedNode seeds node i's stream from the world seed: the two PCG seed
// words are splitmix64 outputs at distinct points of a sequence that starts
// at a hash of seed, so nodes' streams (for any seeds) start at unrelated
// points of the PCG sequence.
func seedNode(rng *rand.PCG, seed uint64, i int) {
	const golden = 0x9e3779b97f4a7c15
	k := splitmix64(seed) + golden*(2*uint64(i))
	rng.Seed(splitmix64(k), splitmix64(k+golden))
}

func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unif returns a uniform float64 in [0, 1) built from the top 53 bits of
// the next PCG output (defined here rather than via rand.Rand so that it
// can never change with the Go release).
func unif(rng *rand.PCG) float64 {
	return float64(rng.Uint64()>>11) * 0x1p-53
}

// uniform returns a uniform value in [lo, hi) (or lo if lo == hi).
func uniform(rng *rand.PCG, lo, hi float64) float64 {
	return lo + float64(unif(rng)*(hi-lo))
}

// startStationary draws n's state at time 0 from the stationary regime of
// random waypoint (see Waypoint).
func (w *World) startStationary(n *node) {
	c := &w.c
	if unif(&n.rng) < w.pPause {
		// Paused at a waypoint (waypoints are uniform). The residual pause
		// is a uniform fraction of a length-biased pause duration.
		n.x1 = float64(unif(&n.rng) * c.Width)
		n.y1 = float64(unif(&n.rng) * c.Height)
		n.x0, n.y0 = n.x1, n.y1
		p := c.PauseMin
		if c.PauseMax > c.PauseMin {
			a2, b2 := float64(c.PauseMin*c.PauseMin), float64(c.PauseMax*c.PauseMax)
			p = math.Sqrt(a2 + float64(unif(&n.rng)*(b2-a2)))
		}
		n.next = float64(unif(&n.rng) * p)
		return
	}
	// Moving: a leg drawn with density proportional to its length (by
	// rejection against the diagonal), a uniform fraction of it already
	// travelled, a speed drawn with density proportional to 1/v.
	var d float64
	for {
		n.x0 = float64(unif(&n.rng) * c.Width)
		n.y0 = float64(unif(&n.rng) * c.Height)
		n.x1 = float64(unif(&n.rng) * c.Width)
		n.y1 = float64(unif(&n.rng) * c.Height)
		d = hypot(n.x1-n.x0, n.y1-n.y0)
		if float64(unif(&n.rng)*w.diag) < d {
			break
		}
	}
	f := unif(&n.rng)
	v := inverseSpeed(&n.rng, c.SpeedMin, c.SpeedMax)
	dur := d / v
	n.t0 = -float64(f * dur)
	n.t1 = n.t0 + dur
	n.vx, n.vy = (n.x1-n.x0)/dur, (n.y1-n.y0)/dur
	n.next = n.t1 + uniform(&n.rng, c.PauseMin, c.PauseMax)
}

// newLeg starts n's next leg at n.next, from where it is paused.
func (w *World) newLeg(n *node) {
	c := &w.c
	n.x0, n.y0, n.t0 = n.x1, n.y1, n.next
	n.x1 = float64(unif(&n.rng) * c.Width)
	n.y1 = float64(unif(&n.rng) * c.Height)
	v := uniform(&n.rng, c.SpeedMin, c.SpeedMax)
	pause := uniform(&n.rng, c.PauseMin, c.PauseMax)
	dx, dy := n.x1-n.x0, n.y1-n.y0
	dur := hypot(dx, dy) / v
	n.t1 = n.t0 + dur
	if dur > 0 {
		n.vx, n.vy = dx/dur, dy/dur
	} else {
		n.vx, n.vy = 0, 0
	}
	n.next = n.t1 + pause
}

// maxStuck is how many consecutive legs may start at the same instant
// before Advance gives up: legs and pauses shorter than the float64
// resolution of the current time would otherwise loop forever.
const maxStuck = 1000

// placeTrace sets the positions at t from the trace.
func (w *World) placeTrace(t float64) {
	for i := range w.cur {
		w.x[i], w.y[i] = w.c.Trace.at(i, t, &w.cur[i])
	}
}

// place processes every node's legs that start at or before t and sets the
// positions at t.
func (w *World) place(t float64) {
	if w.cur != nil {
		w.placeTrace(t)
		return
	}
	W, H := w.c.Width, w.c.Height
	for i := range w.wp {
		n := &w.wp[i]
		if t >= n.next {
			stuck := 0
			for t >= n.next {
				start := n.next
				w.newLeg(n)
				if n.next > start {
					stuck = 0
				} else if stuck++; stuck > maxStuck {
					panic(fmt.Sprintf("mobility: node %d makes no progress at t=%v s: legs and pauses are below the time resolution (area too small or speed too high)", i, t))
				}
			}
		}
		if t >= n.t1 {
			w.x[i], w.y[i] = n.x1, n.y1
			continue
		}
		dt := t - n.t0
		x := n.x0 + float64(n.vx*dt)
		y := n.y0 + float64(n.vy*dt)
		// Rounding may step a hair outside the area.
		if x < 0 {
			x = 0
		} else if x > W {
			x = W
		}
		if y < 0 {
			y = 0
		} else if y > H {
			y = H
		}
		w.x[i], w.y[i] = x, y
	}
}

// Advance moves every node to virtual time t seconds. Every waypoint event
// up to t is processed, so the positions at t are the same however the
// Advance calls that reached t were split. t must be finite and not earlier
// than the current time; Advance panics otherwise. Static worlds only record
// the time.
func (w *World) Advance(t float64) {
	if !(t >= w.t) || math.IsInf(t, 1) {
		panic(fmt.Sprintf("mobility: Advance(%v) from time %v: time must be finite and must not decrease", t, w.t))
	}
	if t == w.t {
		return
	}
	w.t = t
	w.place(t)
}

// Pos returns node i's position at the current time, in metres from the
// area's corner: 0 <= x <= Width, 0 <= y <= Height.
func (w *World) Pos(i int) (x, y float64) { return w.x[i], w.y[i] }

// Time returns the current virtual time in seconds.
func (w *World) Time() float64 { return w.t }

// N returns the number of nodes.
func (w *World) N() int { return len(w.x) }

// Config returns the world's configuration.
func (w *World) Config() Config { return w.c }

// hypot is sqrt(x²+y²) without fused multiply-add; the arguments are
// bounded by MaxSide, so nothing overflows.
func hypot(x, y float64) float64 {
	return math.Sqrt(float64(x*x) + float64(y*y))
}
