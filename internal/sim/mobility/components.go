package mobility

// Components returns the connected components of the graph on nodes
// 0..n-1 whose edges are pairs (as returned by Pairs; any order, self-loops
// and duplicates allowed, every index must be in [0, n)).
//
// labels[i] is the smallest node index in i's component, so i and j are
// connected exactly when labels[i] == labels[j], and the labels do not
// depend on the order of pairs. largestShare is the size of the largest
// component divided by n: 1/n for a graph without edges, 0 when n == 0.
func Components(n int, pairs [][2]int32) (labels []int32, largestShare float64) {
	return ComponentsInto(nil, n, pairs)
}

// ComponentsInto is Components storing the labels in labels' backing array
// when it is large enough; it allocates nothing then.
func ComponentsInto(labels []int32, n int, pairs [][2]int32) ([]int32, float64) {
	labels = grow(labels, n)
	// Union-find in place: a root holds -(size of its tree), any other
	// node its parent. A tree's root is always its smallest node, so a
	// parent's index is always below its child's.
	for i := range labels {
		labels[i] = -1
	}
	for _, p := range pairs {
		a, b := find(labels, p[0]), find(labels, p[1])
		if a == b {
			continue
		}
		if a > b {
			a, b = b, a
		}
		labels[a] += labels[b]
		labels[b] = a
	}
	// In ascending order, a node's parent already holds its final label.
	largest := int32(0)
	for i, p := range labels {
		if p < 0 {
			largest = max(largest, -p)
			labels[i] = int32(i)
		} else {
			labels[i] = labels[p]
		}
	}
	if n == 0 {
		return labels, 0
	}
	return labels, float64(largest) / float64(n)
}

// find returns i's root, halving the path on the way.
func find(parent []int32, i int32) int32 {
	for {
		p := parent[i]
		if p < 0 {
			return i
		}
		gp := parent[p]
		if gp < 0 {
			return p
		}
		parent[i] = gp
		i = gp
	}
}
