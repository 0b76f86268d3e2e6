package mobility

// Reach answers how many links apart nodes are in one snapshot of the
// pairs in range: breadth-first, bounded, over an adjacency built once.
type Reach struct {
	start []int32 // node i's neighbours are adj[start[i]:start[i+1]]
	adj   []int32
	seen  []uint32 // the search that last reached each node
	round uint32
	queue []int32
}

// NewReach indexes the graph of n nodes whose links are pairs.
func NewReach(n int, pairs [][2]int32) *Reach {
	r := &Reach{start: make([]int32, n+1), adj: make([]int32, 2*len(pairs)), seen: make([]uint32, n)}
	for _, p := range pairs {
		r.start[p[0]+1]++
		r.start[p[1]+1]++
	}
	for i := range n {
		r.start[i+1] += r.start[i]
	}
	fill := append([]int32(nil), r.start[:n]...)
	for _, p := range pairs {
		r.adj[fill[p[0]]], fill[p[0]] = p[1], fill[p[0]]+1
		r.adj[fill[p[1]]], fill[p[1]] = p[0], fill[p[1]]+1
	}
	return r
}

// Within says whether to is at most hops links from from.
func (r *Reach) Within(from, to int32, hops int) bool {
	if from == to {
		return true
	}
	r.round++
	r.seen[from] = r.round
	r.queue = append(r.queue[:0], from)
	for depth := 1; depth <= hops && len(r.queue) > 0; depth++ {
		level := len(r.queue)
		for _, u := range r.queue[:level] {
			for _, v := range r.adj[r.start[u]:r.start[u+1]] {
				if v == to {
					return true
				}
				if r.seen[v] != r.round {
					r.seen[v] = r.round
					r.queue = append(r.queue, v)
				}
			}
		}
		r.queue = r.queue[level:]
	}
	return false
}
