package mobility

import (
	"cmp"
	"math"
	"slices"
)

// grid holds Pairs' buffers between calls: nodes bucketed by cell, in
// counting-sort order.
type grid struct {
	start  []int32    // cell c holds sorted entries start[c] to start[c+1]
	cell   []int32    // each node's cell
	sx, sy []float64  // positions in cell order
	sid    []int32    // node indices in cell order (ascending within a cell)
	tmp    [][2]int32 // pairs found, before sorting
	head   []int      // pairs per lower node, then where its pairs start
	next   []int      // counting sort cursors
}

// Pairs appends to dst every pair {i, j}, i < j, of nodes at distance <= r
// from each other at the current time, sorted by (i, j), and returns the
// extended slice. A negative or NaN r yields no pairs.
//
// Nodes are bucketed in a uniform grid whose cells are at least r wide (and,
// when r is small, wide enough that there are at most about 2N cells). Each
// node is checked against the nodes after it in its own cell and those in
// the four cells to its right and below, so each pair of neighbouring cells
// is searched once; the pairs found are then put in (i, j) order by a
// counting sort on i. The cost is about N + number of pairs, and nothing is
// allocated once the world's buffers and dst have grown to size (except for
// results of around a million pairs or more, whose scratch buffer is not
// kept).
func (w *World) Pairs(r float64, dst [][2]int32) [][2]int32 {
	if !(r >= 0) {
		return dst
	}
	n := len(w.x)
	cols, rows := gridShape(w.c.Width, w.c.Height, r, n)
	cells := cols * rows
	g := &w.grid
	g.start = grow(g.start, cells+1)
	clear(g.start)
	g.cell = grow(g.cell, n)
	g.sx = grow(g.sx, n)
	g.sy = grow(g.sy, n)
	g.sid = grow(g.sid, n)
	g.head = grow(g.head, n+1)
	clear(g.head)
	g.next = grow(g.next, n)

	// Bucket the nodes: count per cell, then fill from the back so that
	// each cell lists its nodes in ascending order.
	fx, fy := float64(cols)/w.c.Width, float64(rows)/w.c.Height
	for i := range n {
		cx := min(int(w.x[i]*fx), cols-1)
		cy := min(int(w.y[i]*fy), rows-1)
		c := cy*cols + cx
		g.cell[i] = int32(c)
		g.start[c]++
	}
	var sum int32
	for c := range cells {
		sum += g.start[c]
		g.start[c] = sum
	}
	g.start[cells] = int32(n)
	for i := n - 1; i >= 0; i-- {
		c := g.cell[i]
		p := g.start[c] - 1
		g.start[c] = p
		g.sid[p], g.sx[p], g.sy[p] = int32(i), w.x[i], w.y[i]
	}

	r2 := r * r
	if cells == 1 {
		// One cell, in ascending order: the pairs come out sorted.
		for p := range n {
			xp, yp := g.sx[p], g.sy[p]
			for q := p + 1; q < n; q++ {
				dx, dy := g.sx[q]-xp, g.sy[q]-yp
				if float64(dx*dx)+float64(dy*dy) <= r2 {
					dst = append(dst, [2]int32{int32(p), int32(q)})
				}
			}
		}
		return dst
	}

	// Find the pairs, in no particular order, counting them by lower index.
	tmp := g.tmp[:cap(g.tmp)]
	k := 0
	for cy := range rows {
		for cx := range cols {
			c := cy*cols + cx
			s, e := g.start[c], g.start[c+1]
			if s == e {
				continue
			}
			// The rest of this cell and the cell to its right are one
			// range, and so are the three cells below.
			e1 := e
			if cx+1 < cols {
				e1 = g.start[c+2]
			}
			var s2, e2 int32
			if cy+1 < rows {
				row := (cy + 1) * cols
				s2, e2 = g.start[row+max(cx-1, 0)], g.start[row+min(cx+1, cols-1)+1]
			}
			// Room for every candidate pair of this cell.
			if most := k + int(e-s)*int(e1-s+e2-s2); most > len(tmp) {
				tmp = slices.Grow(tmp[:k], most-k)
				tmp = tmp[:cap(tmp)]
			}
			for p := s; p < e; p++ {
				for _, span := range [2][2]int32{{p + 1, e1}, {s2, e2}} {
					xp, yp, a := g.sx[p], g.sy[p], g.sid[p]
					for q := span[0]; q < span[1]; q++ {
						dx, dy := g.sx[q]-xp, g.sy[q]-yp
						if float64(dx*dx)+float64(dy*dy) <= r2 {
							b := g.sid[q]
							lo := min(a, b)
							tmp[k] = [2]int32{lo, max(a, b)}
							k++
							g.head[lo]++
						}
					}
				}
			}
		}
	}
	tmp = tmp[:k]

	// Counting sort on i, then sort each node's few pairs by j.
	base := len(dst)
	dst = slices.Grow(dst, len(tmp))[:base+len(tmp)]
	out := dst[base:]
	at := 0
	for i := range n {
		g.next[i] = at
		at += g.head[i]
		g.head[i] = g.next[i]
	}
	g.head[n] = at
	for _, p := range tmp {
		k := g.next[p[0]]
		g.next[p[0]] = k + 1
		out[k] = p
	}
	for i := range n {
		sortByJ(out[g.head[i]:g.head[i+1]])
	}
	if cap(tmp) > 1<<20 {
		tmp = nil // don't hold on to a huge buffer
	}
	g.tmp = tmp[:0]
	return dst
}

// sortByJ sorts pairs that share i by j.
func sortByJ(seg [][2]int32) {
	if len(seg) > 24 {
		slices.SortFunc(seg, func(a, b [2]int32) int { return cmp.Compare(a[1], b[1]) })
		return
	}
	for k := 1; k < len(seg); k++ {
		p := seg[k]
		m := k
		for m > 0 && seg[m-1][1] > p[1] {
			seg[m] = seg[m-1]
			m--
		}
		seg[m] = p
	}
}

// gridShape returns the grid for range r over a w×h area holding n nodes.
// Cells are at least r·(1+1e-6) wide and high unless there is a single
// column or row (the margin absorbs rounding in the cell computation, so
// nodes within r are never more than one cell apart), and there are at
// most about 2n cells: when r is small the cells are made larger, since
// mostly empty cells cost time and memory without saving distance checks.
func gridShape(w, h, r float64, n int) (cols, rows int) {
	k := float64(min(2*n, 1<<30))
	side := max(r*(1+1e-6), math.Sqrt(w*h/k))
	c := math.Floor(min(w/side, k))
	c = max(c, 1)
	rw := math.Floor(min(h/side, math.Floor(k/c)))
	rw = max(rw, 1)
	return int(c), int(rw)
}

// grow returns s resliced to length n, reallocated if too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}
