package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
)

// memTree is an ordered map from byte-string keys to byte-string values: a
// B-tree. Get, put and delete are O(log n), and a cursor walks the keys in
// bytewise order, like a bbolt bucket.
//
// Why a B-tree: a lookup is bound by memory latency, not by arithmetic, and
// a B-tree's few wide nodes cost a handful of cache misses where a binary
// tree costs one per level (a treap measured 2-3 times slower from 1,000
// keys up). It also makes the garbage collector trace one node per dozens of
// items. It has no randomness: the same operations give the same tree.
//
// memTree does no locking and no copying: memDB (memory.go) does both.
type memTree struct {
	root  *btNode // nil when empty
	n     int     // number of keys
	bytes int64   // sum of itemBytes
	gen   uint64  // bumped by every change, so that cursors know to re-seek
	// valueSize is what a value of n bytes counts for in bytes; nil
	// counts n.
	valueSize func(n int) int
}

// itemBytes is what an item counts for in t.bytes.
func (t *memTree) itemBytes(key, val []byte) int64 {
	if t.valueSize == nil {
		return int64(len(key) + len(val))
	}
	return int64(len(key) + t.valueSize(len(val)))
}

const (
	// btMaxItems is odd so that a full node splits into two halves of
	// btMinItems around its middle item.
	btMaxItems = 31
	// btMinItems is the least every node but the root holds.
	btMinItems = btMaxItems / 2
)

// btNode holds n items in key order; an inner node also has n+1 children,
// kids[i] holding the keys between items i-1 and i. A leaf has no children
// (kids == nil): most nodes are leaves, and the array of children in a
// separate allocation of inner nodes only spares each leaf a ninth of its
// size (2 KB instead of 2.25). Slots from n on are kept zero, so that
// removed keys and values can be collected.
//
// The key prefixes (hi, lo) sit in their own arrays, so that a binary
// search reads a few cache lines of words and follows a key pointer only
// on a 16-byte tie.
type btNode struct {
	n    int
	hi   [btMaxItems]uint64
	lo   [btMaxItems]uint64
	keys [btMaxItems][]byte
	vals [btMaxItems][]byte
	kids *btKids
}

type btKids [btMaxItems + 1]*btNode

// keyPrefix is a key's first 16 bytes, zero-padded, as two big-endian
// words. 16 bytes because expiry index keys share their first 8 (the
// expiry) and differ in the next (the hashed key).
type keyPrefix struct{ hi, lo uint64 }

func prefixOf(key []byte) keyPrefix {
	var b [16]byte
	copy(b[:], key)
	return keyPrefix{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (n *btNode) leaf() bool { return n.kids == nil }

// kid returns child i, nil in a leaf.
func (n *btNode) kid(i int) *btNode {
	if n.kids == nil {
		return nil
	}
	return n.kids[i]
}

// compareAt orders key (whose prefix is p) against item i, bytewise.
// Zero-padded prefixes that differ order their keys the same way (where a
// key ends early it is a prefix of the other); equal prefixes need the full
// keys.
func (n *btNode) compareAt(i int, p keyPrefix, key []byte) int {
	switch {
	case p.hi != n.hi[i]:
		return cmpWord(p.hi, n.hi[i])
	case p.lo != n.lo[i]:
		return cmpWord(p.lo, n.lo[i])
	}
	return compareTails(key, n.keys[i])
}

// compareTails orders two keys whose zero-padded 16-byte prefixes are
// equal, bytewise, without comparing those prefixes again. A key of at most
// 16 bytes is then a prefix of the other (the other's bytes past its end,
// within the 16, are zero): the shorter sorts first, and keys of one length
// are equal — the case of every hashed key found. Past 16 bytes both keys
// hold real bytes there: their tails decide (an expiry index key's is one
// word).
func compareTails(a, b []byte) int {
	if len(a) <= 16 || len(b) <= 16 {
		return cmp.Compare(len(a), len(b))
	}
	a, b = a[16:], b[16:]
	if len(a) == 8 && len(b) == 8 {
		return cmp.Compare(binary.BigEndian.Uint64(a), binary.BigEndian.Uint64(b))
	}
	return bytes.Compare(a, b)
}

func cmpWord(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// search returns the index of the first item not below key, and whether
// that item is key.
func (n *btNode) search(p keyPrefix, key []byte) (int, bool) {
	lo, hi := 0, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := n.compareAt(m, p, key); {
		case c > 0:
			lo = m + 1
		case c < 0:
			hi = m
		default:
			return m, true
		}
	}
	return lo, false
}

func (n *btNode) setItem(i int, key, val []byte) {
	p := prefixOf(key)
	n.hi[i], n.lo[i], n.keys[i], n.vals[i] = p.hi, p.lo, key, val
}

// insertAt puts an item at i, and right (if any) as the child after it.
// The node must have room.
func (n *btNode) insertAt(i int, key, val []byte, right *btNode) {
	copy(n.hi[i+1:n.n+1], n.hi[i:n.n])
	copy(n.lo[i+1:n.n+1], n.lo[i:n.n])
	copy(n.keys[i+1:n.n+1], n.keys[i:n.n])
	copy(n.vals[i+1:n.n+1], n.vals[i:n.n])
	if !n.leaf() {
		copy(n.kids[i+2:n.n+2], n.kids[i+1:n.n+1])
		n.kids[i+1] = right
	}
	n.setItem(i, key, val)
	n.n++
}

// removeAt takes out item i and the child after it, and returns them.
func (n *btNode) removeAt(i int) (key, val []byte, right *btNode) {
	key, val, right = n.keys[i], n.vals[i], n.kid(i+1)
	copy(n.hi[i:], n.hi[i+1:n.n])
	copy(n.lo[i:], n.lo[i+1:n.n])
	copy(n.keys[i:], n.keys[i+1:n.n])
	copy(n.vals[i:], n.vals[i+1:n.n])
	if !n.leaf() {
		copy(n.kids[i+1:], n.kids[i+2:n.n+1])
	}
	n.n--
	n.clearFrom(n.n)
	return key, val, right
}

// clearFrom zeroes item slots from i and child slots after i.
func (n *btNode) clearFrom(i int) {
	clear(n.hi[i:])
	clear(n.lo[i:])
	clear(n.keys[i:])
	clear(n.vals[i:])
	if !n.leaf() {
		clear(n.kids[i+1:])
	}
}

// find returns the value stored under key, and whether there is one.
func (t *memTree) find(key []byte) ([]byte, bool) {
	p := prefixOf(key)
	for n := t.root; n != nil; {
		i, found := n.search(p, key)
		if found {
			return n.vals[i], true
		}
		n = n.kid(i)
	}
	return nil, false
}

// put stores val under key, keeping both slices (the caller gives up
// ownership). It returns the key and the value it replaced, if any: a key
// replaced too, since a store's key lies in its value's allocation
// (putKept), which the old key would otherwise keep alive.
//
// It splits every full node on its way down, so that there is always room
// for an item coming up from below: one pass, no walking back up.
func (t *memTree) put(key, val []byte) (oldKey, old []byte, existed bool) {
	t.gen++
	if t.root == nil {
		t.root = &btNode{}
	}
	if t.root.n == btMaxItems {
		r := &btNode{kids: &btKids{t.root}}
		r.splitChild(0)
		t.root = r
	}
	p := prefixOf(key)
	n := t.root
	for {
		i, found := n.search(p, key)
		if !found && !n.leaf() && n.kids[i].n == btMaxItems {
			n.splitChild(i)
			// The middle item of the child is now item i.
			switch c := n.compareAt(i, p, key); {
			case c == 0:
				found = true
			case c > 0:
				i++
			}
		}
		switch {
		case found:
			oldKey, old = n.keys[i], n.vals[i]
			n.keys[i], n.vals[i] = key, val // the prefix is the same
			t.bytes += t.itemBytes(key, val) - t.itemBytes(oldKey, old)
			return oldKey, old, true
		case n.leaf():
			n.insertAt(i, key, val, nil)
			t.n++
			t.bytes += t.itemBytes(key, val)
			return nil, nil, false
		}
		n = n.kids[i]
	}
}

// splitChild splits the full child i around its middle item, which moves
// up into n as item i. n must have room.
func (n *btNode) splitChild(i int) {
	c := n.kids[i]
	const mid = btMaxItems / 2
	right := &btNode{n: c.n - mid - 1}
	copy(right.hi[:], c.hi[mid+1:c.n])
	copy(right.lo[:], c.lo[mid+1:c.n])
	copy(right.keys[:], c.keys[mid+1:c.n])
	copy(right.vals[:], c.vals[mid+1:c.n])
	if !c.leaf() {
		right.kids = new(btKids)
		copy(right.kids[:], c.kids[mid+1:c.n+1])
	}
	key, val := c.keys[mid], c.vals[mid]
	c.n = mid
	c.clearFrom(mid)
	n.insertAt(i, key, val, right)
}

// delete removes key and returns what it held, if anything.
func (t *memTree) delete(key []byte) (k, v []byte, ok bool) {
	if t.root == nil {
		return nil, nil, false
	}
	k, v, ok = t.root.remove(prefixOf(key), key)
	if !ok {
		return nil, nil, false
	}
	if t.root.n == 0 {
		t.root = t.root.kid(0) // the tree shrinks; nil if it was a leaf
	}
	t.n--
	t.bytes -= t.itemBytes(k, v)
	t.gen++
	return k, v, true
}

// remove deletes key from the subtree under n. n may be left with fewer
// than btMinItems items: the caller repairs that (fixChild).
func (n *btNode) remove(p keyPrefix, key []byte) (k, v []byte, ok bool) {
	i, found := n.search(p, key)
	switch {
	case found && n.leaf():
		k, v, _ = n.removeAt(i)
		return k, v, true
	case found:
		// Replace the item with its predecessor, the last item of the
		// subtree before it, which sits in a leaf.
		k, v = n.keys[i], n.vals[i]
		pk, pv := n.kids[i].removeLast()
		n.setItem(i, pk, pv)
		n.fixChild(i)
		return k, v, true
	case n.leaf():
		return nil, nil, false
	}
	k, v, ok = n.kids[i].remove(p, key)
	if ok {
		n.fixChild(i)
	}
	return k, v, ok
}

// removeLast takes out the last item of the subtree under n.
func (n *btNode) removeLast() (k, v []byte) {
	if n.leaf() {
		k, v, _ = n.removeAt(n.n - 1)
		return k, v
	}
	k, v = n.kids[n.n].removeLast()
	n.fixChild(n.n)
	return k, v
}

// fixChild brings child i back to btMinItems items after a removal below
// it: it borrows one through the separator from a sibling that can spare
// one, or else merges with a sibling.
func (n *btNode) fixChild(i int) {
	c := n.kids[i]
	switch {
	case c.n >= btMinItems:
	case i > 0 && n.kids[i-1].n > btMinItems:
		// Rotate right: the separator comes down to the front of c, the
		// left sibling's last item goes up in its place.
		l := n.kids[i-1]
		k, v, lastKid := l.removeAt(l.n - 1)
		// Inserting c's first child after the new item, then putting the
		// borrowed child in front, shifts c's children by one.
		c.insertAt(0, n.keys[i-1], n.vals[i-1], c.kid(0))
		if !c.leaf() {
			c.kids[0] = lastKid
		}
		n.setItem(i-1, k, v)
	case i < n.n && n.kids[i+1].n > btMinItems:
		// Rotate left, the mirror image.
		r := n.kids[i+1]
		firstKid := r.kid(0)
		k, v := r.keys[0], r.vals[0]
		if !r.leaf() {
			copy(r.kids[0:], r.kids[1:r.n+1])
			r.kids[r.n] = nil
		}
		r.removeFirstItem()
		c.insertAt(c.n, n.keys[i], n.vals[i], firstKid)
		n.setItem(i, k, v)
	case i > 0:
		n.merge(i - 1)
	default:
		n.merge(i)
	}
}

// removeFirstItem shifts items left by one; the caller has moved the
// children already.
func (n *btNode) removeFirstItem() {
	copy(n.hi[0:], n.hi[1:n.n])
	copy(n.lo[0:], n.lo[1:n.n])
	copy(n.keys[0:], n.keys[1:n.n])
	copy(n.vals[0:], n.vals[1:n.n])
	n.n--
	n.clearFrom(n.n)
}

// merge joins child i, separator i and child i+1 into child i. Together
// they hold at most btMinItems-1 + 1 + btMinItems = btMaxItems-1 items.
func (n *btNode) merge(i int) {
	l := n.kids[i]
	k, v, r := n.removeAt(i)
	l.setItem(l.n, k, v)
	copy(l.hi[l.n+1:], r.hi[:r.n])
	copy(l.lo[l.n+1:], r.lo[:r.n])
	copy(l.keys[l.n+1:], r.keys[:r.n])
	copy(l.vals[l.n+1:], r.vals[:r.n])
	if !l.leaf() {
		copy(l.kids[l.n+1:], r.kids[:r.n+1])
	}
	l.n += 1 + r.n
}

// memCursor walks a memTree in key order. Its stack holds the path from the
// root to the current node, each frame with the index of the next item to
// return from that node, which makes Next O(1) amortised. If the tree
// changes between calls the stack may be stale, so Next then seeks afresh
// to the first key after the one it returned last: like bbolt, a cursor
// survives writes to its bucket.
type memCursor struct {
	tree  *memTree
	stack []cursorFrame
	last  []byte // key returned last; nil before First and after the end
	gen   uint64 // tree.gen when stack was built
}

type cursorFrame struct {
	n *btNode
	i int
}

func (c *memCursor) First() ([]byte, []byte) {
	c.stack = c.stack[:0]
	c.pushLeftmost(c.tree.root)
	c.gen = c.tree.gen
	return c.next()
}

func (c *memCursor) Next() ([]byte, []byte) {
	if c.last == nil {
		return nil, nil
	}
	if c.gen != c.tree.gen {
		c.seekAfter(c.last)
	}
	return c.next()
}

// pushLeftmost pushes the path from n down to its first leaf.
func (c *memCursor) pushLeftmost(n *btNode) {
	for ; n != nil; n = n.kid(0) {
		c.stack = append(c.stack, cursorFrame{n, 0})
	}
}

// seekAfter rebuilds the stack for the first key above key.
func (c *memCursor) seekAfter(key []byte) {
	c.stack = c.stack[:0]
	p := prefixOf(key)
	for n := c.tree.root; n != nil; {
		i, found := n.search(p, key)
		if found {
			i++
		}
		c.stack = append(c.stack, cursorFrame{n, i})
		n = n.kid(i)
	}
	c.gen = c.tree.gen
}

// next returns item i of the deepest frame that has one left, which comes
// after everything in the child before it, then descends into the child
// after it.
func (c *memCursor) next() ([]byte, []byte) {
	for len(c.stack) > 0 {
		f := &c.stack[len(c.stack)-1]
		if f.i >= f.n.n {
			c.stack = c.stack[:len(c.stack)-1]
			continue
		}
		n, i := f.n, f.i
		f.i++
		c.pushLeftmost(n.kid(i + 1))
		c.last = n.keys[i]
		return n.keys[i], n.vals[i]
	}
	c.last = nil
	return nil, nil
}
