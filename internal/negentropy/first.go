package negentropy

// The initiator's first message is what a listener sees at every link
// set-up, encrypted but not hidden in size, and it is the same on every
// link: if its length followed the number of items, it would count the
// envelopes a node holds and follow the node from link to link. So it is
// always at least minFirstBuckets ranges — Fingerprints, except that a range
// in which we hold no item is an empty IdList (see initiate) — padded to a size class: the least power of
// two of at least minFirstSize bytes that holds it (at most the frame size
// limit). The padding is legal Negentropy: a bound may carry more of its ID
// prefix than the shortest separating one, up to 32 bytes, and the peer
// reads any valid bound (SPEC.md §11.2). Nothing else on the wire changes.
const (
	minFirstBuckets = 14
	minFirstSize    = 320
)

// firstRange is one range of the first message: its items [lo, hi), its
// upper bound with the shortest prefix, and where longer prefixes come
// from (the first item of the next range, or zeros past the last item).
type firstRange struct {
	lo, hi int
	b      bound
	pad    [IDSize]byte // b.id extended: any prefix of it longer than b.n is a valid bound too
	inf    bool
}

// firstSize returns the size class of a first message of n bytes: the least
// power of two at least minFirstSize that holds it, at most limit (0: no
// limit).
func firstSize(n, limit int) int {
	size := minFirstSize
	for size < n {
		size *= 2
	}
	if limit > 0 && size > limit-reserve {
		size = max(n, limit-reserve)
	}
	return size
}

// initiate writes the first message: b Fingerprint ranges over our items
// (items split evenly; with fewer items than ranges, one item each and the
// rest empty, ending just past the last item), padded to firstSize.
func (s *session) initiate(b int) []byte {
	n := s.st.Len()
	if n < b && n > 0 && s.st.at(n-1).Timestamp > MaxTimestamp-uint64(b) {
		b = n // no room for empty ranges past the last item
	}
	// On the stack for the usual number of ranges: one made for every
	// first message was most of what opening a round allocated.
	var room [minFirstBuckets]firstRange
	ranges := room[:0]
	if n >= b {
		cur := 0
		for i := range b {
			next := cur + n/b
			if i < n%b {
				next++
			}
			r := firstRange{lo: cur, hi: next}
			if next < n {
				nx := s.st.at(next)
				r.b = minimalBound(s.st.at(next-1), nx)
				r.pad = nx.ID
			} else {
				r.inf = true
			}
			ranges = append(ranges, r)
			cur = next
		}
	} else {
		var lastTs uint64
		for i := range b {
			r := firstRange{lo: min(i, n), hi: min(i+1, n)}
			switch {
			case i == b-1:
				r.inf = true
			case i+1 < n:
				nx := s.st.at(i + 1)
				r.b = minimalBound(s.st.at(i), nx)
				r.pad = nx.ID
			default:
				// Past the last item: empty ranges ending at the next
				// timestamps, which no item of ours has.
				if n > 0 && i == n-1 {
					lastTs = s.st.at(n - 1).Timestamp
				}
				lastTs++
				r.b = bound{ts: lastTs}
			}
			ranges = append(ranges, r)
		}
	}
	// Size with the shortest bounds, then lengthen bounds to the size class.
	size := 1
	var prevTs uint64
	for _, r := range ranges {
		if r.inf {
			size += 2
		} else {
			size += varintLen(r.b.ts-prevTs+1) + 1 + r.b.n
			prevTs = r.b.ts
		}
		if r.lo == r.hi {
			size += 2 // an empty IdList: mode, count 0
		} else {
			size += 1 + FingerprintSize
		}
	}
	total := firstSize(size, s.limit)
	padding := total - size
	for i := range ranges {
		r := &ranges[i]
		if r.inf || padding == 0 {
			continue
		}
		k := min(padding, IDSize-r.b.n)
		copy(r.b.id[r.b.n:r.b.n+k], r.pad[r.b.n:r.b.n+k])
		r.b.n += k
		padding -= k
	}
	w := newWriter(0, make([]byte, 0, total))
	for _, r := range ranges {
		b := r.b
		if r.inf {
			b = infinity
		}
		w.putBound(b)
		if r.lo == r.hi {
			// Never a Fingerprint of a range where we hold nothing: a v1
			// peer that defers its answer to such a range could send back
			// a Fingerprint we would find equal to ours (SPEC.md §11.5).
			w.buf = appendVarint(w.buf, modeIDList)
			w.buf = appendVarint(w.buf, 0)
			continue
		}
		w.buf = appendVarint(w.buf, modeFingerprint)
		fp := s.fingerprint(r.lo, r.hi)
		w.buf = append(w.buf, fp[:]...)
	}
	return w.buf
}

func varintLen(n uint64) int {
	l := 1
	for n >>= 7; n != 0; n >>= 7 {
		l++
	}
	return l
}
