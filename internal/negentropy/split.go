package negentropy

import "math"

// A policy is how we split a range whose fingerprints differ: into how many
// Fingerprint buckets, or when to send an IdList instead. It only shapes
// what we send; the peer reads any choice (SPEC.md §11).
//
// Messages are numbered by level: the initiator's first message is level 0,
// the responder's reply level 1, the initiator's next message level 2, and
// so on. The first message has first buckets, whatever the number of items
// (its size must not tell it; see first.go). A range of m items that must
// be split at a later level L is:
//
//   - sent as an IdList if m <= idList, or if L >= lastLevel and m <= lateIDList;
//   - with an estimated density (differences per item) of denseIDList or
//     more, sent as an IdList by the responder and as one Fingerprint by
//     the initiator, so that only the responder lists (see buckets);
//   - if m > maxOneExtra, split into ceil(m/wideItems) buckets, at least
//     first and at most maxWide, which the one-extra-item check can settle;
//   - otherwise into max(b, ceil(density*m)) buckets when that is more than
//     maxBuckets (at least probe if every range differed), at most maxWide,
//     where b is as below: about one difference per bucket;
//   - before lastLevel, into the least b >= 2 buckets such that
//     idList * b^(lastLevel-L) >= m, at most maxBuckets: the fewest buckets
//     that still bring a difference down to an IdList by level lastLevel;
//   - from lastLevel on, into ceil(m/idList) buckets, at most maxBuckets.
//
// Buckets hold equal numbers of our items, the first m mod b one more.
type policy struct {
	first      int
	wideItems  int
	maxWide    int
	idList     int
	lateIDList int
	lastLevel  int
	maxBuckets int
	probe      int
}

// defaultPolicy: the first message has 14 buckets (about 300 bytes, padded
// to 320; the reference implementation's has 16 and 337 bytes), so that
// nodes in sync pay little. A differing bucket of a large store is cut into buckets of 400
// items, in which one difference is mostly settled by the next message
// through the one-extra-item test (see Storage.oneExtra); the others are
// split three ways per message until they are, and ranges of four items or
// fewer go as IdLists. Many differences are found out from how many of the
// peer's ranges differ, and go as IdLists early.
var defaultPolicy = policy{
	first:      14,
	wideItems:  400,
	maxWide:    1024,
	idList:     4,
	lateIDList: 8,
	lastLevel:  5,
	maxBuckets: 3,
	probe:      16,
}

// buckets returns how many buckets to split m items into at level, or 0 to
// send them as an IdList. density is the estimated number of differences
// per item (see estimate; 0 if unknown).
func (p *policy) buckets(m, level int, density float64, saturated bool) int {
	if level == 0 {
		return p.first
	}
	if m <= p.idList || level >= p.lastLevel && m <= p.lateIDList {
		return 0
	}
	if level > 0 && density >= denseIDList {
		// So many differences that most small buckets would differ
		// again: the IDs must cross anyway, and fingerprints only add
		// bytes and round trips. The responder lists its items; the
		// initiator sends the range back as one Fingerprint, so that only
		// one side lists. The exchange still progresses: a responder,
		// Grapevine's or any v1 one, lists such a range or splits it finer.
		if level%2 == 1 {
			return 0
		}
		return 1
	}
	if level > 0 && density > 0 {
		// Aim at one difference per bucket, which the one-extra-item check
		// settles, when that is finer than the level's split. If every
		// range differed, the density is only a lower bound: probe finer.
		k := int(math.Ceil(density * float64(m)))
		if saturated {
			k = max(k, p.probe)
		}
		if k > p.maxBuckets {
			return min(max(k, p.bucketsByLevel(m, level, density)), p.maxWide, m)
		}
	}
	return p.bucketsByLevel(m, level, density)
}

// denseIDList is the density (differences per item) from which a differing
// range is sent as an IdList whatever its size: listing it costs 32 bytes
// per item, splitting it about 150 bytes per difference (SPEC.md §11.7).
const denseIDList = 0.2

// minDensityRange is the fewest items of a peer's IdList range from which
// its differences count towards the density estimate: IdLists are sent for
// ranges known to differ, and a small one with a single difference would
// suggest a density far above the true one.
const minDensityRange = 16

// estimate returns the number of differences per item suggested by a
// message in which ranges of the peer's Fingerprints, holding items of ours
// in all, differed out of all: if differences fall at random, a range of s
// items differs with probability 1 - exp(-density*s). It returns ok false
// with too few ranges to tell. When every range differed it returns the
// least density that makes that likely, a lower bound.
func estimate(differed, all, items int) (density float64, ok bool) {
	if all < 8 || items == 0 {
		return 0, false
	}
	f := float64(differed) / float64(all)
	if differed == all {
		f = 1 - 1/float64(2*all)
	}
	return -math.Log1p(-f) * float64(all) / float64(items), true
}

func (p *policy) bucketsByLevel(m, level int, density float64) int {
	if m > maxOneExtra {
		// Too many items for the one-extra-item check (a bucket of the
		// first message, or a deferred remainder): cut it into buckets
		// that the check can settle, once differences are known to be
		// there. Before that (density 0: a message of a few large ranges,
		// such as a 20-byte opener of a made-up Fingerprint of everything)
		// into as many as the first message has, so that such a message
		// costs a few hashes whatever the store holds (SPEC.md §11.3).
		if density == 0 {
			return p.first
		}
		return min(max(p.first, (m+p.wideItems-1)/p.wideItems), p.maxWide)
	}
	if level >= p.lastLevel {
		return min(p.maxBuckets, (m+p.idList-1)/p.idList)
	}
	r := p.lastLevel - level
	b := 2
	for b < p.maxBuckets && !reaches(b, r, p.idList, m) {
		b++
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
