package negentropy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Wire format of protocol version 1. Messages in both directions have the
// same layout:
//
//	Message := version (1 byte, 0x61) Range*
//	Range   := upperBound (Bound) mode (Varint) payload
//	payload := (nothing)                       mode 0: Skip
//	         | fingerprint (16 bytes)          mode 1: Fingerprint
//	         | count (Varint) id (32 bytes)*   mode 2: IdList
//	Bound   := timestamp (Varint) length (Varint) idPrefix (length bytes, 0..32)
//	Varint  := base-128 digits, most significant first, as few as possible;
//	           the high bit is set on every byte but the last
//
// Each Range ends at its upper bound (exclusive) and starts where the
// previous one ended; the first starts at timestamp 0 and the empty ID. A
// bound's timestamp is encoded as 0 for infinity (2^64-1) and otherwise as
// 1 + (timestamp - previous timestamp encoded in this message), the previous
// timestamp starting at 0 in each message and becoming 2^64-1 after an
// infinity. Omitted trailing bytes of the ID prefix are zero. If the last
// Range ends before infinity, the rest of the space is an implicit Skip.

const (
	modeSkip        = 0
	modeFingerprint = 1
	modeIDList      = 2
)

const (
	maxVarintLen = 10 // bytes of a Varint holding 2^64-1
	// maxBoundLen is the longest encoding of a Bound.
	maxBoundLen = maxVarintLen + 1 + IDSize
	// reserve is what a message must keep free for deferring the rest of the
	// ranges: a pending Skip and a Fingerprint up to infinity.
	reserve = (maxBoundLen + 1) + (2 + 1 + FingerprintSize)
)

// ErrMalformed is wrapped by every error about a message that does not
// follow the protocol.
var ErrMalformed = errors.New("negentropy: malformed message")

// ErrUnsupportedVersion is wrapped by the error the Initiator returns when
// the peer answers with a protocol version other than 0x61.
var ErrUnsupportedVersion = errors.New("negentropy: unsupported protocol version")

// A FormatError reports a malformed message: what is wrong and the offset in
// the message of the element at fault. It wraps ErrMalformed.
type FormatError struct {
	Offset int
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("negentropy: %s at offset %d", e.Reason, e.Offset)
}

func (e *FormatError) Unwrap() error { return ErrMalformed }

func appendVarint(b []byte, n uint64) []byte {
	var tmp [maxVarintLen]byte
	i := len(tmp) - 1
	tmp[i] = byte(n & 0x7f)
	for n >>= 7; n != 0; n >>= 7 {
		i--
		tmp[i] = byte(n&0x7f) | 0x80
	}
	return append(b, tmp[i:]...)
}

// A bound is a point in the (timestamp, ID) space: ts, then the first n
// bytes of id, the rest of id being zero. A Range holds the items at or
// above its lower bound and below its upper bound.
type bound struct {
	ts uint64
	id [IDSize]byte
	n  int
}

var infinity = bound{ts: math.MaxUint64}

func (b bound) compare(c bound) int {
	if r := cmp.Compare(b.ts, c.ts); r != 0 {
		return r
	}
	return bytes.Compare(b.id[:], c.id[:])
}

// above reports whether b is above the item: whether the item sorts below b
// and so belongs to a range that ends at b.
func (b bound) above(it *Item) bool {
	if it.Timestamp != b.ts {
		return it.Timestamp < b.ts
	}
	return bytes.Compare(it.ID[:], b.id[:]) < 0
}

// minimalBound returns the shortest bound above prev and not above next,
// which must sort after prev: next's timestamp alone if the timestamps
// differ, else next's ID cut just past the first byte that differs.
func minimalBound(prev, next *Item) bound {
	b := bound{ts: next.Timestamp}
	if prev.Timestamp == next.Timestamp {
		n := 0
		for n < IDSize && prev.ID[n] == next.ID[n] {
			n++
		}
		b.n = min(n+1, IDSize)
		copy(b.id[:b.n], next.ID[:])
	}
	return b
}

// A reader decodes one message.
type reader struct {
	msg    []byte
	pos    int
	lastTs uint64 // timestamp of the previous bound, for delta decoding
}

func (r *reader) fail(at int, format string, args ...any) error {
	return &FormatError{Offset: at, Reason: fmt.Sprintf(format, args...)}
}

func (r *reader) empty() bool { return r.pos == len(r.msg) }

func (r *reader) varint(what string) (uint64, error) {
	start := r.pos
	var n uint64
	for {
		if r.pos == len(r.msg) {
			return 0, r.fail(start, "truncated varint (%s)", what)
		}
		c := r.msg[r.pos]
		r.pos++
		if c == 0x80 && r.pos-1 == start {
			return 0, r.fail(start, "non-minimal varint (%s)", what)
		}
		if n>>57 != 0 {
			return 0, r.fail(start, "varint overflows 64 bits (%s)", what)
		}
		n = n<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return n, nil
		}
	}
}

func (r *reader) bytes(n uint64, what string) ([]byte, error) {
	if n > uint64(len(r.msg)-r.pos) {
		return nil, r.fail(r.pos, "truncated %s: %d bytes needed, %d left", what, n, len(r.msg)-r.pos)
	}
	b := r.msg[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *reader) bound() (bound, error) {
	start := r.pos
	var b bound
	enc, err := r.varint("bound timestamp")
	if err != nil {
		return b, err
	}
	if enc == 0 {
		b.ts = math.MaxUint64
	} else {
		delta := enc - 1
		if r.lastTs > math.MaxUint64-delta {
			return b, r.fail(start, "bound timestamp overflows 64 bits")
		}
		b.ts = r.lastTs + delta
	}
	r.lastTs = b.ts
	at := r.pos
	n, err := r.varint("bound id prefix length")
	if err != nil {
		return b, err
	}
	if n > IDSize {
		return b, r.fail(at, "bound id prefix of %d bytes is longer than %d", n, IDSize)
	}
	prefix, err := r.bytes(n, "bound id prefix")
	if err != nil {
		return b, err
	}
	b.n = copy(b.id[:], prefix)
	return b, nil
}

// A writer builds one message within a size budget. Ranges that match are
// not written at once but held as a pending Skip, which is written only
// when a later range needs it, so that trailing Skips cost nothing.
type writer struct {
	buf    []byte
	budget int    // most bytes the ranges may take before the final reserve; 0 for no limit
	lastTs uint64 // timestamp of the previous bound written, for delta encoding

	skip      bool // a Skip up to skipBound is pending
	skipBound bound
	// end is the index of our first item not below the end of what is
	// written or pending: where a deferred remainder starts.
	end int
}

// newWriter returns a writer of a message in buf's array (nil: a new one).
func newWriter(frameSizeLimit int, buf []byte) *writer {
	w := &writer{buf: append(buf[:0], ProtocolVersion)}
	if frameSizeLimit > 0 {
		w.budget = frameSizeLimit - reserve
	}
	return w
}

type mark struct {
	n         int
	lastTs    uint64
	skip      bool
	skipBound bound
	end       int
}

func (w *writer) mark() mark { return mark{len(w.buf), w.lastTs, w.skip, w.skipBound, w.end} }

func (w *writer) reset(m mark) {
	w.buf, w.lastTs, w.skip, w.skipBound, w.end = w.buf[:m.n], m.lastTs, m.skip, m.skipBound, m.end
}

func (w *writer) fits() bool { return w.budget == 0 || len(w.buf) <= w.budget }

func (w *writer) putBound(b bound) {
	if b.ts == math.MaxUint64 {
		w.buf = appendVarint(w.buf, 0)
	} else {
		w.buf = appendVarint(w.buf, b.ts-w.lastTs+1)
	}
	w.lastTs = b.ts
	w.buf = appendVarint(w.buf, uint64(b.n))
	w.buf = append(w.buf, b.id[:b.n]...)
}

// skipTo extends the pending Skip up to b, below which we hold end items.
func (w *writer) skipTo(b bound, end int) {
	w.skip, w.skipBound, w.end = true, b, end
}

func (w *writer) flush() {
	if w.skip {
		w.putBound(w.skipBound)
		w.buf = appendVarint(w.buf, modeSkip)
		w.skip = false
	}
}

// fingerprint writes a Fingerprint range up to b, below which we hold end
// items. It writes nothing and returns false if the range does not fit.
func (w *writer) fingerprint(b bound, end int, fp [FingerprintSize]byte) bool {
	m := w.mark()
	w.flush()
	w.putBound(b)
	w.buf = appendVarint(w.buf, modeFingerprint)
	w.buf = append(w.buf, fp[:]...)
	w.end = end
	if !w.fits() {
		w.reset(m)
		return false
	}
	return true
}

// idList writes our items [lo, hi) as an IdList range up to b and returns
// true. If they do not all fit, it writes the longest prefix [lo, j) that
// does, as a range up to the minimal bound between items j-1 and j (or
// nothing if no ID fits), and returns false; w.end tells where the written
// part ends.
func (w *writer) idList(s *Storage, lo, hi int, b bound) bool {
	for j := hi; ; {
		m := w.mark()
		w.flush()
		if j < hi {
			b = minimalBound(s.at(j-1), s.at(j))
		}
		w.putBound(b)
		w.buf = appendVarint(w.buf, modeIDList)
		w.buf = appendVarint(w.buf, uint64(j-lo))
		// Size it before writing it: a range may hold every item we have.
		if size := len(w.buf) + (j-lo)*IDSize; w.budget == 0 || size <= w.budget {
			w.buf = slices.Grow(w.buf, (j-lo)*IDSize)
			s.each(lo, j, func(_ int, it *Item) bool {
				w.buf = append(w.buf, it.ID[:]...)
				return true
			})
			w.end = j
			return j == hi
		} else {
			over := size - w.budget
			w.reset(m)
			// Drop enough IDs to fit and try again (the bound may grow). An
			// empty list short of b would say nothing.
			j -= min(j-lo, (over+IDSize-1)/IDSize)
			if j == lo {
				return false
			}
		}
	}
}

// deferRest ends the message with a Fingerprint from the end of what is
// written up to infinity, so that the peer takes up the remaining ranges in
// the next round. The reserve always leaves room for it.
//
// If we hold no item there it is an empty IdList instead: we never send a
// Fingerprint of a range in which we hold nothing. A v1 peer that defers
// sends a Fingerprint up to infinity of its items past the range it was
// answering only, and that could equal our Fingerprint of an empty
// remainder though the peer holds items in the range; as long as every
// Fingerprint we send covers one of our items, a deferred answer can never
// look equal to ours (SPEC.md §11.5). An empty IdList also costs less and
// asks for what the peer must send anyway: its IDs.
func (w *writer) deferRest(s *Storage) {
	w.flush()
	w.putBound(infinity)
	if w.end == s.Len() {
		w.buf = appendVarint(w.buf, modeIDList)
		w.buf = appendVarint(w.buf, 0)
		return
	}
	w.buf = appendVarint(w.buf, modeFingerprint)
	fp := s.Fingerprint(w.end, s.Len())
	w.buf = append(w.buf, fp[:]...)
	w.end = s.Len()
}
