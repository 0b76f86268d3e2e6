package mobility

import (
	"math"
	"math/rand/v2"
)

// The helpers below compute the few quantities the stationary start needs
// with +, -, *, / and Sqrt only (plus the exact Frexp and Ldexp), each
// product rounded on its own by an explicit float64 conversion, so that
// their results are identical on every platform. math.Log, math.Exp and
// math.Pow use assembly on some architectures and may differ in the last
// bit between them.

// atanhSeries returns atanh(s) = s + s³/3 + s⁵/5 + ... for |s| <= 0.5.
func atanhSeries(s float64) float64 {
	s2 := float64(s * s)
	term, sum := s, s
	for k := 3.0; k < 200; k += 2 {
		term = float64(term * s2)
		next := sum + term/k
		if next == sum {
			break
		}
		sum = next
	}
	return sum
}

// logPortable returns the natural logarithm of a positive finite x.
func logPortable(x float64) float64 {
	m, e := math.Frexp(x) // x = m·2^e, 0.5 <= m < 1
	if m < math.Sqrt2/2 {
		m *= 2
		e--
	}
	// ln m = 2·atanh((m-1)/(m+1)), with |(m-1)/(m+1)| <= 0.172.
	return float64(float64(e)*math.Ln2) + 2*atanhSeries((m-1)/(m+1))
}

// meanInverse returns E[1/V] for V uniform on [a, b], 0 < a <= b:
// ln(b/a)/(b-a).
func meanInverse(a, b float64) float64 {
	if a == b {
		return 1 / a
	}
	if b < 2*a {
		// ln(b/a) = 2·atanh((b-a)/(b+a)); no cancellation when b ≈ a.
		return 2 * atanhSeries((b-a)/(b+a)) / (b - a)
	}
	return logPortable(b/a) / (b - a)
}

// meanDistance returns the mean distance between two points drawn uniformly
// in a w×h rectangle. With a the longer side, t = b/a <= 1 and
// q = sqrt(1+t²), the classical closed form is
//
//	E/a = (t³ - 1/(1+q) + q(3-t²))/15 + (t²·asinh(1/t) + asinh(t)/t)/6
//
// (rearranged so that nothing cancels for thin rectangles; for the unit
// square it is 0.5214054331647207).
func meanDistance(w, h float64) float64 {
	a, b := max(w, h), min(w, h)
	t := b / a
	t2 := float64(t * t)
	q := math.Sqrt(1 + t2)
	r1 := float64(t2*t) - 1/(1+q) + float64(q*(3-t2))
	// asinh(t) = 2·atanh(t/(1+q)), and t/(1+q) <= 0.415.
	asinhT := 2 * atanhSeries(t/(1+q))
	r2 := float64(t2*logPortable((1+q)/t)) + asinhT/t
	return float64(a * (r1/15 + r2/6))
}

// inverseSpeed draws a speed from [a, b] with density proportional to 1/v:
// the stationary speed of a random waypoint node whose legs draw speeds
// uniformly from [a, b] (slow legs last longer). It uses rejection only, no
// logarithms: [a, b] is cut into octaves [c, 2c), c = a·2^k, which all have
// the same probability ln 2; an octave is picked uniformly, a speed uniformly
// in it, accepted with probability c/v (>= 1/2), and rejected if beyond b.
func inverseSpeed(rng *rand.PCG, a, b float64) float64 {
	if a == b {
		return a
	}
	if b < 2*a {
		for {
			v := uniform(rng, a, b)
			if float64(unif(rng)*v) <= a {
				return v
			}
		}
	}
	_, e := math.Frexp(b / a) // 2^(e-1) <= b/a < 2^e: octaves 0..e-1 cover [a, b]
	for {
		c := math.Ldexp(a, int(unif(rng)*float64(e)))
		v := c + float64(c*unif(rng))
		accept := float64(unif(rng)*v) <= c
		if v <= b && accept {
			return v
		}
	}
}
