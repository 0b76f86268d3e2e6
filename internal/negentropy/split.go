package negentropy

// A policy is how we split a range whose fingerprints differ: into how many
// Fingerprint buckets, or when to send an IdList instead. It only shapes
// what we send; the peer reads any choice (SPEC.md §11).
//
// Messages are numbered by level: the initiator's first message is level 0,
// the responder's reply level 1, the initiator's next message level 2, and
// so on. A range of m items that must be split at level L is:
//
//   - sent as an IdList if m <= idList, or if L >= lastLevel and m <= lateIDList;
//   - at level 0 (the initiator's first message), split into
//     max(ceil(m/firstItems), minFirst, b) buckets, at most maxFirst and at
//     most m, where b is as below;
//   - before lastLevel, split into the least b >= 2 buckets such that
//     idList * b^(lastLevel-L) >= m, at most maxBuckets: the fewest buckets
//     that still bring a difference down to an IdList by level lastLevel;
//   - from lastLevel on, split into ceil(m/idList) buckets, at most maxBuckets.
//
// Buckets hold equal numbers of our items, the first m mod b one more.
//
// The first message is never an IdList and has at least minFirstBuckets
// buckets, padded to a size class (see first.go).
type policy struct {
	firstItems int
	minFirst   int
	maxFirst   int
	idList     int
	lateIDList int
	lastLevel  int
	maxBuckets int
}

// defaultPolicy: for 100,000 items the first message has 250 buckets of 400
// items (about 5 KB). A bucket holding one difference is mostly settled by
// the next message through the one-extra-item test (see Storage.oneExtra);
// the others are split three ways per message until they are, and ranges
// of four items or fewer go as IdLists. 100 differences cost about 12 KB
// in two or three round trips.
var defaultPolicy = policy{
	firstItems: 400,
	minFirst:   16,
	maxFirst:   1024,
	idList:     4,
	lateIDList: 8,
	lastLevel:  5,
	maxBuckets: 3,
}

// buckets returns how many buckets to split m items into at level, or 0 to
// send them as an IdList.
func (p *policy) buckets(m, level int) int {
	if m <= p.idList || level >= p.lastLevel && m <= p.lateIDList {
		return 0
	}
	if level >= p.lastLevel {
		return min(p.maxBuckets, (m+p.idList-1)/p.idList)
	}
	r := p.lastLevel - level
	b := 2
	for b < p.maxBuckets && !reaches(b, r, p.idList, m) {
		b++
	}
	if level == 0 {
		b = min(max(b, p.minFirst, (m+p.firstItems-1)/p.firstItems), p.maxFirst, m)
	}
	return b
}

// reaches reports whether t * b^r >= m.
func reaches(b, r, t, m int) bool {
	for range r {
		if t >= m {
			return true
		}
		t *= b
	}
	return t >= m
}
