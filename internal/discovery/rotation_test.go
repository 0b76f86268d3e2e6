package discovery

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sort"
	"testing"
	"time"
)

// sent is one beacon a rotation test saw leave.
type sent struct {
	at    time.Time
	value byte
	addr  string // the interface's address when it left
}

// rigState is a session with a fake interface whose address the test
// changes, a fake IPv4 socket that records what is sent, and a value that
// counts the rotations.
type rigState struct {
	s       *session
	addr    net.IP
	value   byte
	rotated int
	sends   []sent
}

func newRotationRig(t *testing.T, start time.Time, every, interval time.Duration) *rigState {
	r := &rigState{addr: net.IPv4(10, 0, 0, 9), value: 1}
	fake := net.Interface{Index: 9, Name: "fake0", Flags: net.FlagUp | net.FlagMulticast}
	d := New(Config{
		Value:       func() [ValueSize]byte { return [ValueSize]byte{0: r.value} },
		Rotate:      func() { r.rotated++; r.value++ },
		RotateEvery: every, Interval: interval, Rand: seeded(5), Log: slog.New(slog.DiscardHandler),
		Interfaces: func() ([]net.Interface, error) { return []net.Interface{fake}, nil },
		Addrs: func(*net.Interface) ([]net.Addr, error) {
			return []net.Addr{&net.IPNet{IP: r.addr, Mask: net.CIDRMask(24, 32)}}, nil
		},
	})
	r.s = &session{d: d, ctx: context.Background(), links: map[int]*link{}}
	r.s.fams[fam4] = &family{
		name:  "IPv4",
		join:  func(*net.Interface) error { return nil },
		leave: func(*net.Interface) error { return nil },
		send: func(_ *net.Interface, p []byte) error {
			b, err := Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			r.sends = append(r.sends, sent{value: b.Value[0], addr: r.addr.String()})
			return nil
		},
	}
	r.s.start(start)
	return r
}

// run steps the session from now until end, stamping each send with its
// time, and calls at(now) before each step.
func (r *rigState) run(now, end time.Time, at func(time.Time)) time.Time {
	for now.Before(end) {
		if at != nil {
			at(now)
		}
		n := len(r.sends)
		wake := r.s.step(now)
		for i := n; i < len(r.sends); i++ {
			r.sends[i].at = now
		}
		now = wake
	}
	return now
}

// TestRotation follows one interface's beacons through a wall-clock
// rotation and an address change: the value changes at the boundary and at
// the change, each change is followed by silence, and no beacon with the
// old value ever leaves from the new address.
func TestRotation(t *testing.T) {
	const interval = 5 * time.Second
	start := time.Date(2026, 12, 1, 10, 58, 20, 0, time.UTC)
	boundary := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	r := newRotationRig(t, start, time.Hour, interval)
	moveAt := boundary.Add(3*time.Minute + 1234*time.Millisecond) // between two rescans
	end := boundary.Add(6 * time.Minute)
	r.run(start, end, func(now time.Time) {
		if !now.Before(moveAt) && r.addr.Equal(net.IPv4(10, 0, 0, 9)) {
			r.addr = net.IPv4(10, 0, 0, 77) // a new lease
		}
	})
	if r.rotated != 2 {
		t.Fatalf("%d rotations, want 2 (the hour, the address)", r.rotated)
	}
	var last1, first2, last2, first3 time.Time
	for _, s := range r.sends {
		switch s.value {
		case 1:
			last1 = s.at
		case 2:
			if first2.IsZero() {
				first2 = s.at
			}
			last2 = s.at
			if s.addr != "10.0.0.9" {
				t.Errorf("value 2 left from %s at %v", s.addr, s.at)
			}
		case 3:
			if first3.IsZero() {
				first3 = s.at
			}
			if s.addr != "10.0.0.77" {
				t.Errorf("value 3 left from %s", s.addr)
			}
		}
	}
	if !last1.Before(boundary) || first2.Before(boundary.Add(interval)) || first2.After(boundary.Add(interval+DefaultRotateGap)) {
		t.Errorf("value 1 until %v, value 2 from %v; want the change at %v, then %v to %v of silence",
			last1, first2, boundary, interval, interval+DefaultRotateGap)
	}
	if last2.After(moveAt) || first3.Before(moveAt.Add(interval)) {
		t.Errorf("value 2 until %v, value 3 from %v; the address changed at %v", last2, first3, moveAt)
	}
	t.Logf("silence at the hour %v, at the address change %v", first2.Sub(last1), first3.Sub(last2))
}

// TestRotationTimingLinksNoBetterThanChance is the listener of SPEC §13.2
// who sees only beacon times: at a rotation every node's old value stops
// and a new one starts. It models N nodes with the schedule of this package
// (gaps uniform in [I/2, 3I/2), rotation at the whole hour of each node's
// clock, then silence for I plus [0, RotateGap)) and clocks off by a
// normal error of σ, and lets the observer pair each value that stopped
// with the one that started in the same rank (the best guess when all
// shifts are alike). It reports the share paired correctly against chance
// (1/N), and fails if with clocks within a second the observer does better
// than chance by more than sampling noise.
func TestRotationTimingLinksNoBetterThanChance(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	const interval = DefaultInterval
	gap := DefaultRotateGap
	for _, n := range []int{10, 100, 1000} {
		for _, sigma := range []time.Duration{0, time.Second, 10 * time.Second, time.Minute, 5 * time.Minute} {
			trials := max(20000/n, 20)
			correct := 0
			for range trials {
				correct += rankMatches(rnd, n, interval, gap, sigma)
			}
			acc := float64(correct) / float64(trials*n)
			chance := 1 / float64(n)
			t.Logf("N=%4d σ=%-5v linked %.4f (chance %.4f, advantage %+.4f)", n, sigma, acc, chance, acc-chance)
			if sigma <= time.Second && acc > chance+5*stddev(chance, trials*n) {
				t.Errorf("N=%d σ=%v: the observer links %.4f, chance is %.4f", n, sigma, acc, chance)
			}
		}
	}
}

func stddev(p float64, samples int) float64 {
	return math.Sqrt(p * (1 - p) / float64(samples))
}

// rankMatches simulates one rotation among n nodes and returns how many
// values the rank-matching observer links correctly.
func rankMatches(rnd *rand.Rand, n int, interval, gap, sigma time.Duration) int {
	u := func(d time.Duration) time.Duration {
		if d <= 0 {
			return 0
		}
		return time.Duration(rnd.Int64N(int64(d)))
	}
	type ev struct {
		at   time.Duration
		node int
	}
	stops, starts := make([]ev, n), make([]ev, n)
	for i := range n {
		skew := time.Duration(rnd.NormFloat64() * float64(sigma))
		// The last beacon before the rotation: the train's phase is
		// uniform, and the gap before the rotation is what remains of a
		// gap drawn in [I/2, 3I/2).
		phase := interval/2 + u(interval)
		stops[i] = ev{skew - u(phase), i}
		starts[i] = ev{skew + interval + u(gap), i}
	}
	byTime := func(s []ev) { sort.Slice(s, func(a, b int) bool { return s[a].at < s[b].at }) }
	byTime(stops)
	byTime(starts)
	right := 0
	for k := range n {
		if stops[k].node == starts[k].node {
			right++
		}
	}
	return right
}
