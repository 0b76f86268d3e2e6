package negentropy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
)

const (
	// ProtocolVersion is the first byte of every version 1 message.
	ProtocolVersion = 0x61

	// IDSize is the size of an item ID in bytes.
	IDSize = 32

	// FingerprintSize is the size of a range fingerprint in bytes.
	FingerprintSize = 16

	// MinFrameSizeLimit is the smallest frame size limit other than 0 (no
	// limit) that NewInitiator and NewResponder accept.
	MinFrameSizeLimit = 4096

	// MaxTimestamp is the largest timestamp an item may have. The value
	// above it, 2^64-1, is reserved for the "infinity" bound.
	MaxTimestamp = math.MaxUint64 - 1
)

// An Item is one element of the reconciled set. In Grapevine, Timestamp is
// an envelope's expiry (Unix seconds) and ID its 32-byte envelope ID. Items
// are ordered by Timestamp, then by ID compared bytewise.
type Item struct {
	Timestamp uint64
	ID        [IDSize]byte
}

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b.
func (a Item) Compare(b Item) int {
	if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// sum256 is a 256-bit unsigned integer as four little-endian 64-bit limbs.
type sum256 [4]uint64

func (s sum256) add(id *[IDSize]byte) sum256 {
	var c uint64
	for i := range s {
		s[i], c = bits.Add64(s[i], binary.LittleEndian.Uint64(id[8*i:]), c)
	}
	return s
}

// less is s minus an ID, modulo 2^256.
func (s sum256) less(id *[IDSize]byte) sum256 {
	var b uint64
	for i := range s {
		s[i], b = bits.Sub64(s[i], binary.LittleEndian.Uint64(id[8*i:]), b)
	}
	return s
}

func (s sum256) sub(t sum256) sum256 {
	var b uint64
	for i := range s {
		s[i], b = bits.Sub64(s[i], t[i], b)
	}
	return s
}

// fingerprint is the Negentropy fingerprint of count IDs whose sum modulo
// 2^256 is s:
//
//	SHA-256( sum (32 bytes, little-endian) || Varint(count) )[:16]
func (s sum256) fingerprint(count uint64) [FingerprintSize]byte {
	var buf [IDSize + maxVarintLen]byte
	for i, limb := range s {
		binary.LittleEndian.PutUint64(buf[8*i:], limb)
	}
	b := appendVarint(buf[:IDSize], count)
	h := sha256.Sum256(b)
	return [FingerprintSize]byte(h[:FingerprintSize])
}

// A Storage is an immutable, sorted sequence of items with the queries
// reconciliation needs. A Storage may be shared by any number of concurrent
// Initiators and Responders.
//
// Items are kept in chunks of at most maxChunk, each with prefix sums of its
// IDs, and the Storage keeps the sums and counts before each chunk, so that
// the fingerprint of any range of items costs O(log n) and one SHA-256.
// With returns a new Storage with some items added and removed that shares
// every chunk it did not change with the old one: a node keeps one Storage
// up to date as envelopes come and go, at a cost per change that does not
// grow with what it holds (SPEC.md §11.2), instead of building one of every
// item for each reconciliation.
type Storage struct {
	chunks []*chunk
	// starts[c] is the index of chunks[c]'s first item; starts[len(chunks)]
	// is the number of items.
	starts []int
	// base[c] is the sum modulo 2^256 of the IDs before chunks[c].
	base []sum256
}

// chunk is a run of at most maxChunk items in order, never empty, never
// modified once made.
type chunk struct {
	items []Item
	// sums[k] is the sum modulo 2^256 of the IDs of items[:k*sumEvery];
	// the last is the sum of them all. A sum per sumEvery items rather than
	// per item: a node keeps a Storage of everything it holds, and 32 bytes
	// per item would nearly double what each costs (40 bytes), while adding
	// or taking off at most sumEvery/2 IDs on a query (see prefix) is far
	// cheaper than the SHA-256 that follows it.
	sums []sum256
}

// sumEvery is how many items apart a chunk keeps its prefix sums.
const sumEvery = 16

// total is the sum of the IDs of every item in the chunk.
func (c *chunk) total() sum256 { return c.sums[len(c.sums)-1] }

// prefix is the sum of the IDs of items[:j], 0 <= j <= len(items): from
// the nearer of the sums kept before and after j, so that it adds or takes
// off at most sumEvery/2 IDs.
func (c *chunk) prefix(j int) sum256 {
	k := j / sumEvery
	if j == len(c.items) || j == k*sumEvery {
		return c.sums[min(k, len(c.sums)-1)]
	}
	// sums[k+1] is the sum up to next: the next multiple of sumEvery, or
	// the total.
	if next := min((k+1)*sumEvery, len(c.items)); next-j < j-k*sumEvery {
		sum := c.sums[k+1]
		for i := j; i < next; i++ {
			sum = sum.less(&c.items[i].ID)
		}
		return sum
	}
	sum := c.sums[k]
	for i := k * sumEvery; i < j; i++ {
		sum = sum.add(&c.items[i].ID)
	}
	return sum
}

// maxChunk is the most items in a chunk: a change rewrites the chunks it
// touches, so they are small; a Storage keeps O(n/maxChunk) words apart
// from its chunks, so they are not tiny.
const maxChunk = 128

func newChunk(items []Item) *chunk {
	c := &chunk{items: items, sums: make([]sum256, 0, (len(items)+sumEvery-1)/sumEvery+1)}
	var sum sum256
	for i := range items {
		if i%sumEvery == 0 {
			c.sums = append(c.sums, sum)
		}
		sum = sum.add(&items[i].ID)
	}
	c.sums = append(c.sums, sum) // the total
	return c
}

// NewStorage returns a Storage holding a copy of items, sorted. It rejects
// duplicate items and items whose timestamp is above MaxTimestamp. Callers
// must not put the same ID in twice with different timestamps: the protocol
// tells items apart by ID alone inside a range.
func NewStorage(items []Item) (*Storage, error) {
	items = slices.Clone(items)
	if !slices.IsSortedFunc(items, Item.Compare) {
		slices.SortFunc(items, Item.Compare)
	}
	return NewSortedStorage(items)
}

// NewSortedStorage is NewStorage for items already sorted, which it keeps
// rather than copies: the caller must not modify them afterwards. It
// rejects items out of order as it rejects duplicates.
func NewSortedStorage(items []Item) (*Storage, error) {
	if err := checkSorted(items); err != nil {
		return nil, err
	}
	return build(items), nil
}

func checkSorted(items []Item) error {
	for i := range items {
		it := &items[i]
		if it.Timestamp > MaxTimestamp {
			return errors.New("negentropy: item timestamp 2^64-1 is reserved for infinity")
		}
		if i > 0 && items[i-1] == *it {
			return fmt.Errorf("negentropy: duplicate item (timestamp %d, id %x)", it.Timestamp, it.ID)
		}
		if i > 0 && items[i-1].Compare(*it) > 0 {
			return fmt.Errorf("negentropy: item %d (timestamp %d, id %x) is out of order", i, it.Timestamp, it.ID)
		}
	}
	return nil
}

// build cuts sorted, checked items into chunks of maxChunk/2 to maxChunk.
func build(items []Item) *Storage {
	var chunks []*chunk
	for len(items) > 0 {
		k := min(len(items), maxChunk*3/4)
		if len(items)-k < maxChunk/4 {
			k = len(items) // no runt at the end
			if k > maxChunk {
				k = len(items) / 2
			}
		}
		chunks = append(chunks, newChunk(items[:k:k]))
		items = items[k:]
	}
	return index(chunks)
}

// index makes a Storage of chunks, computing where each starts.
func index(chunks []*chunk) *Storage {
	s := &Storage{chunks: chunks, starts: make([]int, len(chunks)+1), base: make([]sum256, len(chunks)+1)}
	for c, ch := range chunks {
		s.starts[c+1] = s.starts[c] + len(ch.items)
		s.base[c+1] = s.base[c].sub(negate(ch.total()))
	}
	return s
}

// negate returns -t modulo 2^256, so that s.sub(negate(t)) is s + t.
func negate(t sum256) sum256 { return sum256{}.sub(t) }

// With returns a Storage holding the items of s, less those in remove, plus
// those in add; s is unchanged. Items of remove that s does not hold and
// items of add that it holds already are ignored, so a caller may pass the
// state it wants for each changed item. An item in both lists is added. The
// cost is O(k log k + k log n) for k changes, plus rewriting each chunk
// that changes (at most maxChunk items each) and O(n/maxChunk) words for
// the index; a Storage whose chunks have thinned out is repacked, which
// deletions pay for. It rejects items whose timestamp is above
// MaxTimestamp. It sorts add and remove in place and may keep add's array,
// as NewSortedStorage keeps its items: the caller must not use them
// afterwards (a snapshot's lists of changes were copied for nothing).
func (s *Storage) With(add, remove []Item) (*Storage, error) {
	add = sortedSet(add)
	if err := checkSorted(add); err != nil {
		return nil, err
	}
	remove = without(sortedSet(remove), add)
	if len(s.chunks) == 0 {
		if len(add) == 0 {
			return s, nil
		}
		return build(add), nil
	}
	// Both lists are sorted, so the changes of each chunk (those up to its
	// last item; the last chunk takes the rest) are the next runs of them.
	var chunks []*chunk // nil until a chunk changes
	n := 0
	for c, ch := range s.chunks {
		na, nr := len(add), len(remove)
		if c < len(s.chunks)-1 {
			last := &ch.items[len(ch.items)-1]
			na, nr = upTo(add, last), upTo(remove, last)
		}
		merged, changed := ch.with(add[:na], remove[:nr])
		add, remove = add[na:], remove[nr:]
		if !changed {
			if chunks != nil {
				chunks = append(chunks, ch)
			}
			n += len(ch.items)
			continue
		}
		if chunks == nil {
			chunks = append(make([]*chunk, 0, len(s.chunks)+len(merged)/maxChunk+2), s.chunks[:c]...)
		}
		n += len(merged)
		for len(merged) > maxChunk {
			k := min(maxChunk/2, len(merged)-maxChunk/2)
			chunks = append(chunks, newChunk(merged[:k:k]))
			merged = merged[k:]
		}
		if len(merged) > 0 {
			chunks = append(chunks, newChunk(merged))
		}
	}
	if chunks == nil {
		return s, nil
	}
	// Deletions thin chunks out: repack when there are more than twice as
	// many as full ones would need (the O(n) this costs is paid by the
	// Omega(n) deletions since the last repack).
	if len(chunks) > 2*(n/maxChunk)+4 {
		all := make([]Item, 0, n)
		for _, ch := range chunks {
			all = append(all, ch.items...)
		}
		return build(all), nil
	}
	return index(chunks), nil
}

// sortedSet sorts items in place and returns them without repeats.
func sortedSet(items []Item) []Item {
	slices.SortFunc(items, Item.Compare)
	return slices.Compact(items)
}

// without returns the items of a (sorted) that are not in b (sorted), in
// a's storage.
func without(a, b []Item) []Item {
	out, j := a[:0], 0
	for _, it := range a {
		for j < len(b) && b[j].Compare(it) < 0 {
			j++
		}
		if j < len(b) && b[j] == it {
			continue
		}
		out = append(out, it)
	}
	return out
}

// upTo is the number of items of sorted that do not sort after last.
func upTo(sorted []Item, last *Item) int {
	return sort.Search(len(sorted), func(i int) bool { return sorted[i].Compare(*last) > 0 })
}

// with returns the chunk's items less remove plus add (both sorted, none in
// both), and whether that changes anything; if not, it allocates nothing.
// It finds each change by halves and copies the runs of items between
// changes whole: a chunk mostly changes in an item or two.
func (c *chunk) with(add, remove []Item) ([]Item, bool) {
	var merged []Item // nil until something changes
	items := c.items  // those not yet copied to merged
	for len(add) > 0 || len(remove) > 0 {
		adding := len(remove) == 0 || len(add) > 0 && add[0].Compare(remove[0]) < 0
		var it Item
		if adding {
			it, add = add[0], add[1:]
		} else {
			it, remove = remove[0], remove[1:]
		}
		k, held := slices.BinarySearchFunc(items, it, Item.Compare)
		if held == adding {
			continue // held already, or not held
		}
		if merged == nil {
			merged = make([]Item, 0, len(c.items)+len(add)+1)
		}
		merged = append(merged, items[:k]...)
		items = items[k:]
		if adding {
			merged = append(merged, it)
		} else {
			items = items[1:]
		}
	}
	if merged == nil {
		return nil, false
	}
	return append(merged, items...), true
}

// Len returns the number of items.
func (s *Storage) Len() int { return s.starts[len(s.chunks)] }

// locate returns the chunk holding item i and i's index in it, for 0 <= i
// < Len().
func (s *Storage) locate(i int) (c, j int) {
	c = sort.Search(len(s.chunks), func(c int) bool { return s.starts[c+1] > i })
	return c, i - s.starts[c]
}

// At returns the i-th item in sort order.
func (s *Storage) At(i int) Item {
	if i < 0 || i >= s.Len() {
		panic(fmt.Sprintf("negentropy: item %d out of bounds of %d items", i, s.Len()))
	}
	c, j := s.locate(i)
	return s.chunks[c].items[j]
}

// at returns a pointer to the i-th item, which the caller must not modify.
func (s *Storage) at(i int) *Item {
	c, j := s.locate(i)
	return &s.chunks[c].items[j]
}

// prefix returns the sum of the IDs of the first i items, 0 <= i <= Len().
func (s *Storage) prefix(i int) sum256 {
	if i == s.Len() {
		return s.base[len(s.chunks)]
	}
	c, j := s.locate(i)
	return s.base[c].sub(negate(s.chunks[c].prefix(j)))
}

// each calls fn for the items [lo, hi) in order, until it returns false.
func (s *Storage) each(lo, hi int, fn func(i int, it *Item) bool) {
	if lo >= hi {
		return
	}
	c, j := s.locate(lo)
	for i := lo; i < hi; c, j = c+1, 0 {
		items := s.chunks[c].items
		for ; j < len(items) && i < hi; j, i = j+1, i+1 {
			if !fn(i, &items[j]) {
				return
			}
		}
	}
}

// Fingerprint returns the fingerprint of items [lo, hi) in sort order. It
// panics if the range is out of bounds, like slicing.
func (s *Storage) Fingerprint(lo, hi int) [FingerprintSize]byte {
	if lo < 0 || lo > hi || hi > s.Len() {
		panic(fmt.Sprintf("negentropy: fingerprint range [%d, %d) out of bounds of %d items", lo, hi, s.Len()))
	}
	return s.sum(lo, hi).fingerprint(uint64(hi - lo))
}

func (s *Storage) sum(lo, hi int) sum256 { return s.prefix(hi).sub(s.prefix(lo)) }

// LowerBound returns the index of the first item not before it, or Len() if
// every item sorts before it.
func (s *Storage) LowerBound(it Item) int {
	return s.lowerBound(0, s.Len(), bound{ts: it.Timestamp, id: it.ID, n: IDSize})
}

// lowerBound returns the index of the first item in [lo, hi) that is not
// below b, or hi: the chunk by halves from lo's on, then the item in it by
// halves from lo on. The ranges of a message come in order, each searched
// from where the one before ended.
func (s *Storage) lowerBound(lo, hi int, b bound) int {
	if lo >= hi {
		return lo
	}
	c, _ := s.locate(lo)
	c += sort.Search(len(s.chunks)-c, func(d int) bool {
		ch := s.chunks[c+d]
		return !b.above(&ch.items[len(ch.items)-1])
	})
	if c == len(s.chunks) {
		return hi
	}
	items := s.chunks[c].items
	from := max(0, lo-s.starts[c])
	i := s.starts[c] + from + sort.Search(len(items)-from, func(j int) bool { return !b.above(&items[from+j]) })
	return min(i, hi)
}

// oneExtra returns the index x in [lo, hi) such that fp is the fingerprint
// of items [lo, hi) without item x, or -1 if there is none; sum is the sum
// of the IDs of items [lo, hi). A peer whose
// fingerprint of a range differs from ours often lacks exactly one of our
// items there; this finds which, at the cost of one SHA-256 per item, so
// that the difference is settled without splitting the range. It tries
// only ranges of at most maxOneExtra items and spends at most *budget
// hashes (taking them off it): a peer must not buy a hash per item held
// with a few bytes (SPEC.md §11.3). Past either, it returns -1 and the
// range is split as any other. It must be given only exact fingerprints:
// the caller never tries it on a range up to infinity, where a v1 peer's
// deferral may fingerprint fewer items than the range holds (SPEC.md §11.5).
func (s *Storage) oneExtra(lo, hi int, sum sum256, fp [FingerprintSize]byte, budget *int) int {
	if lo == hi || hi-lo > maxOneExtra || hi-lo > *budget {
		return -1
	}
	*budget -= hi - lo
	var buf [IDSize + maxVarintLen]byte
	tail := appendVarint(buf[IDSize:IDSize], uint64(hi-lo-1))
	msg := buf[:IDSize+len(tail)]
	found := -1
	s.each(lo, hi, func(x int, it *Item) bool {
		for i, limb := range sum.less(&it.ID) {
			binary.LittleEndian.PutUint64(msg[8*i:], limb)
		}
		if h := sha256.Sum256(msg); [FingerprintSize]byte(h[:FingerprintSize]) == fp {
			found = x
			return false
		}
		return true
	})
	return found
}

// The one-extra-item check (see oneExtra) costs a SHA-256 per item of the
// range it is tried on. It is tried only on ranges of at most maxOneExtra
// items — an honest first message cuts 100,000 items into buckets of 400,
// 1,000,000 into buckets of 977 — and on at most oneExtraBudget items per
// message received, so that a message costs at most that many hashes
// whatever the store holds.
const (
	maxOneExtra    = 1024
	oneExtraBudget = 16384
)

// all returns a copy of every item in order.
func (s *Storage) all() []Item {
	out := make([]Item, 0, s.Len())
	for _, ch := range s.chunks {
		out = append(out, ch.items...)
	}
	return out
}
