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

// A Storage is an immutable, sorted vector of items with the queries
// reconciliation needs. It keeps prefix sums of the IDs so that the
// fingerprint of any range of items costs O(1). A Storage may be shared by
// any number of concurrent Initiators and Responders.
type Storage struct {
	items []Item
	// sums[i] is the sum modulo 2^256 of the IDs of items[:i].
	sums []sum256
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
// rather than copies: the caller must not modify them afterwards. A node
// that keeps its envelope list in order builds one at every reconciliation
// (or reuses the last), so the copy and sort are worth saving. It rejects
// items out of order as it rejects duplicates.
func NewSortedStorage(items []Item) (*Storage, error) {
	s := &Storage{items: items}
	s.sums = make([]sum256, len(s.items)+1)
	for i := range s.items {
		it := &s.items[i]
		if it.Timestamp > MaxTimestamp {
			return nil, errors.New("negentropy: item timestamp 2^64-1 is reserved for infinity")
		}
		if i > 0 && s.items[i-1] == *it {
			return nil, fmt.Errorf("negentropy: duplicate item (timestamp %d, id %x)", it.Timestamp, it.ID)
		}
		if i > 0 && s.items[i-1].Compare(*it) > 0 {
			return nil, fmt.Errorf("negentropy: item %d (timestamp %d, id %x) is out of order", i, it.Timestamp, it.ID)
		}
		s.sums[i+1] = s.sums[i].add(&it.ID)
	}
	return s, nil
}

// Len returns the number of items.
func (s *Storage) Len() int { return len(s.items) }

// At returns the i-th item in sort order.
func (s *Storage) At(i int) Item { return s.items[i] }

// Fingerprint returns the fingerprint of items [lo, hi) in sort order. It
// panics if the range is out of bounds, like slicing.
func (s *Storage) Fingerprint(lo, hi int) [FingerprintSize]byte {
	if lo < 0 || lo > hi || hi > len(s.items) {
		panic(fmt.Sprintf("negentropy: fingerprint range [%d, %d) out of bounds of %d items", lo, hi, len(s.items)))
	}
	return s.sums[hi].sub(s.sums[lo]).fingerprint(uint64(hi - lo))
}

// LowerBound returns the index of the first item not before it, or Len() if
// every item sorts before it.
func (s *Storage) LowerBound(it Item) int {
	return s.lowerBound(0, len(s.items), bound{ts: it.Timestamp, id: it.ID, n: IDSize})
}

// lowerBound returns the index of the first item in [lo, hi) that is not
// below b, or hi. Ranges in a message are consecutive and mostly short, so
// it gallops from lo before searching by halves.
func (s *Storage) lowerBound(lo, hi int, b bound) int {
	for step := 1; lo+step < hi; step *= 2 {
		if !b.above(&s.items[lo+step-1]) {
			hi = lo + step - 1
			break
		}
		lo += step
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if b.above(&s.items[mid]) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// oneExtra returns the index x in [lo, hi) such that fp is the fingerprint
// of items [lo, hi) without item x, or -1 if there is none. A peer whose
// fingerprint of a range differs from ours often lacks exactly one of our
// items there; this finds which, at the cost of one SHA-256 per item, so
// that the difference is settled without splitting the range. Ranges in a
// message are disjoint, so a message costs at most Len() hashes.
func (s *Storage) oneExtra(lo, hi int, fp [FingerprintSize]byte) int {
	if lo == hi {
		return -1
	}
	sum := s.sums[hi].sub(s.sums[lo])
	var buf [IDSize + maxVarintLen]byte
	tail := appendVarint(buf[IDSize:IDSize], uint64(hi-lo-1))
	msg := buf[:IDSize+len(tail)]
	for x := lo; x < hi; x++ {
		var id sum256
		for i := range id {
			id[i] = binary.LittleEndian.Uint64(s.items[x].ID[8*i:])
		}
		for i, limb := range sum.sub(id) {
			binary.LittleEndian.PutUint64(msg[8*i:], limb)
		}
		if h := sha256.Sum256(msg); [FingerprintSize]byte(h[:FingerprintSize]) == fp {
			return x
		}
	}
	return -1
}
