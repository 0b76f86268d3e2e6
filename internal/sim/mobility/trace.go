package mobility

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A Trace is measured movement to replay instead of a random model: for each
// node, its position at some times. Between two samples a node moves in a
// straight line at constant speed; before its first sample it stands at the
// first, after its last at the last.
//
// The file format (ParseTrace) is CSV text, one sample per line:
//
//	# comments and blank lines are ignored
//	t,node,x,y
//	0,0,10.5,20
//	30,0,40,20
//	0,1,100,100
//
// t is seconds from the start of the run (≥ 0), node an index from 0 (every
// index up to the largest must have a sample), x and y metres from the
// area's corner. A first line whose first field is not a number ("t,node,x,y")
// is a header. Lines may come in any order; two samples of one node at one
// time are refused. This is the shape of the ONE simulator's external
// movement files (time, id, x, y) with commas, so such traces convert with
// one `tr`.
type Trace struct {
	nodes [][]sample // by node, sorted by time
	maxX  float64
	maxY  float64
}

type sample struct{ t, x, y float64 }

// MaxTraceSamples bounds a trace, so that a hostile or mistaken file cannot
// take all memory.
const MaxTraceSamples = 10_000_000

// ParseTrace reads a trace; errors name the line.
func ParseTrace(r io.Reader) (*Trace, error) {
	tr := &Trace{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	line, samples := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) != 4 {
			return nil, fmt.Errorf("trace line %d: %d fields, want 4 (t,node,x,y)", line, len(f))
		}
		t, errT := strconv.ParseFloat(strings.TrimSpace(f[0]), 64)
		if errT != nil && samples == 0 && len(tr.nodes) == 0 {
			continue // a header
		}
		n, errN := strconv.Atoi(strings.TrimSpace(f[1]))
		x, errX := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
		y, errY := strconv.ParseFloat(strings.TrimSpace(f[3]), 64)
		switch {
		case errT != nil || math.IsNaN(t) || math.IsInf(t, 0) || t < 0 || t > MaxPause:
			return nil, fmt.Errorf("trace line %d: time %q is not a number of seconds from 0 to %g", line, f[0], float64(MaxPause))
		case errN != nil || n < 0:
			return nil, fmt.Errorf("trace line %d: node %q is not an index from 0", line, f[1])
		case errX != nil || errY != nil || !(x >= 0 && x <= MaxSide) || !(y >= 0 && y <= MaxSide):
			return nil, fmt.Errorf("trace line %d: position (%s, %s) is not in metres from 0 to %g", line, f[2], f[3], float64(MaxSide))
		}
		if samples++; samples > MaxTraceSamples || n >= MaxTraceSamples {
			return nil, fmt.Errorf("trace line %d: more than %d samples or nodes", line, MaxTraceSamples)
		}
		for len(tr.nodes) <= n {
			tr.nodes = append(tr.nodes, nil)
		}
		tr.nodes[n] = append(tr.nodes[n], sample{t, x, y})
		tr.maxX, tr.maxY = max(tr.maxX, x), max(tr.maxY, y)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("trace line %d: longer than 4096 bytes", line+1)
		}
		return nil, fmt.Errorf("failed to read trace: %w", err)
	}
	if len(tr.nodes) == 0 {
		return nil, errors.New("trace: no samples")
	}
	for i, s := range tr.nodes {
		if len(s) == 0 {
			return nil, fmt.Errorf("trace: node %d has no sample (nodes are numbered from 0 without gaps)", i)
		}
		slices.SortStableFunc(s, func(a, b sample) int { return cmpFloat(a.t, b.t) })
		for k := 1; k < len(s); k++ {
			if s[k].t == s[k-1].t {
				return nil, fmt.Errorf("trace: node %d has two samples at %g s", i, s[k].t)
			}
		}
	}
	return tr, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Nodes is the number of nodes the trace moves.
func (tr *Trace) Nodes() int { return len(tr.nodes) }

// Extent is the smallest area (from the corner) that holds every sample.
func (tr *Trace) Extent() (width, height float64) { return tr.maxX, tr.maxY }

// at returns node i's position at time t, moving cursor (the index of the
// last sample at or before t; t never decreases between calls).
func (tr *Trace) at(i int, t float64, cursor *int) (x, y float64) {
	s := tr.nodes[i]
	for *cursor+1 < len(s) && s[*cursor+1].t <= t {
		*cursor++
	}
	a := s[*cursor]
	if t <= a.t || *cursor+1 == len(s) {
		return a.x, a.y
	}
	b := s[*cursor+1]
	f := (t - a.t) / (b.t - a.t)
	return a.x + f*(b.x-a.x), a.y + f*(b.y-a.y)
}
