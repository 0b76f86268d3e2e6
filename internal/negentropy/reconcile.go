package negentropy

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// An Initiator is the side of a reconciliation that sends the first message
// and learns the differences. It is not safe for concurrent use.
type Initiator struct {
	s         session
	initiated bool
	done      bool
	failed    bool
	// reported holds every ID returned as have or need so far, so that no ID
	// is reported twice even if the peer covers a range again; nil while
	// they are only the few of the reply being processed (see report).
	reported map[[IDSize]byte]struct{}
	// have and need collect what the message being processed reveals.
	have, need [][IDSize]byte
}

// A Responder answers the messages of one Initiator, for one
// reconciliation. It learns nothing itself: the initiator works out both
// directions of the difference. It is not safe for concurrent use.
type Responder struct {
	s session
	// done: our last reply held no Fingerprint, so the initiator has
	// nothing left to ask and the round is over. s.st is then nil: a
	// responder may be kept long after its round (until the next one
	// opens), and the Storage it answered from, which the node has since
	// moved on from, would stay alive with it.
	done bool
}

// session is what both sides share: our items, our frame size limit and the
// level of the next message we send (see policy).
type session struct {
	st     *Storage
	limit  int
	policy policy
	level  int
	// density is the estimated number of differences per item, from the
	// Fingerprints the peer sent (see estimate): it shapes our splits and
	// carries over a deferral, so that a remainder is not refined again
	// from coarse buckets. 0 while unknown.
	density float64
	// saturated is whether density is a lower bound (every range differed).
	saturated bool
	// at is the last prefix sum computed (at.i items): the ranges of a
	// message are consecutive, so each one's lower prefix is the previous
	// one's upper, and a range's fingerprint costs one prefix, not two.
	at struct {
		i   int
		sum sum256
		ok  bool
	}
	// scanned holds what scan found for each range of the message being
	// processed, in order, so that process does not search and fingerprint
	// them again.
	scanned []scannedRange
}

// scannedRange is a range of a message as scan saw it: from our item lo,
// up to the bound that ends at offset at of the message, which our item hi
// is the first not below; and, if hasFP, the sum and fingerprint of our
// items [lo, hi).
type scannedRange struct {
	lo, hi, at int
	sum        sum256
	fp         [FingerprintSize]byte
	hasFP      bool
}

// scannedPool holds the scanned slices of messages processed: each message
// needs one, which no session keeps between messages (see process); made
// afresh for every message, they were 11% of all the simulator's walkers
// day allocated (2.1 of 18.6 GB).
var scannedPool = sync.Pool{New: func() any { return new([]scannedRange) }}

// bufPool holds the buffers replies are written in (see process), which
// are then copied out at their size: grown by append, a reply took several
// allocations of up to twice that.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBuf is the largest buffer given back to bufPool: a session's
// frame size limit.
const maxPooledBuf = 64 << 10

// maxPooledScan is the most ranges of a scanned slice given back to
// scannedPool: one of a rare long message is left to the collector.
const maxPooledScan = 1024

// scannedAt returns scan's entry for the k-th range if it is the range from
// lo up to the bound that ends at offset at, else nil. The ranges of a
// message come in order, and process reads the same message scan read, so
// it always is, but for a message scan gave up on.
func (s *session) scannedAt(k, lo, at int) *scannedRange {
	if k < len(s.scanned) && s.scanned[k].lo == lo && s.scanned[k].at == at {
		return &s.scanned[k]
	}
	return nil
}

// fingerprint is s.st.Fingerprint(lo, hi), reusing the prefix of lo when
// the range before ended there.
func (s *session) fingerprint(lo, hi int) [FingerprintSize]byte {
	return s.sum(lo, hi).fingerprint(uint64(hi - lo))
}

// sum is the sum of the IDs of our items [lo, hi), reusing the prefix of lo
// when the range before ended there.
func (s *session) sum(lo, hi int) sum256 {
	if lo < 0 || lo > hi || hi > s.st.Len() {
		s.st.Fingerprint(lo, hi) // panics, saying why
	}
	var below sum256
	if s.at.ok && s.at.i == lo {
		below = s.at.sum
	} else {
		below = s.st.prefix(lo)
	}
	upto := s.st.prefix(hi)
	s.at.i, s.at.sum, s.at.ok = hi, upto, true
	return upto.sub(below)
}

// observe updates the density estimate from the Fingerprint ranges of a
// message: all of them, differed of which differed, holding items of ours.
func (s *session) observe(differed, all, items int) {
	d, ok := estimate(differed, all, items)
	if !ok {
		return
	}
	if s.saturated && d < s.density {
		// A finer split that still differs everywhere tells no more than
		// the coarser one did.
		d = s.density
	}
	s.density, s.saturated = d, differed == all
}

func checkArgs(st *Storage, frameSizeLimit int) error {
	if st == nil {
		return errors.New("negentropy: nil Storage")
	}
	if frameSizeLimit != 0 && frameSizeLimit < MinFrameSizeLimit {
		return fmt.Errorf("negentropy: frame size limit %d is below the minimum %d", frameSizeLimit, MinFrameSizeLimit)
	}
	return nil
}

// NewInitiator returns an Initiator reconciling the items in st. Every
// message it sends is at most frameSizeLimit bytes; 0 means no limit, and
// any other value must be at least MinFrameSizeLimit.
func NewInitiator(st *Storage, frameSizeLimit int) (*Initiator, error) {
	if err := checkArgs(st, frameSizeLimit); err != nil {
		return nil, err
	}
	return &Initiator{s: session{st: st, limit: frameSizeLimit, policy: defaultPolicy}}, nil
}

// NewResponder returns a Responder answering from the items in st. Every
// reply is at most frameSizeLimit bytes; 0 means no limit, and any other
// value must be at least MinFrameSizeLimit.
func NewResponder(st *Storage, frameSizeLimit int) (*Responder, error) {
	if err := checkArgs(st, frameSizeLimit); err != nil {
		return nil, err
	}
	return &Responder{s: session{st: st, limit: frameSizeLimit, policy: defaultPolicy, level: 1}}, nil
}

// Initiate returns the first message, to be sent to the peer's Responder.
// It may be called only once.
func (in *Initiator) Initiate() ([]byte, error) {
	if in.initiated {
		return nil, errors.New("negentropy: already initiated")
	}
	in.initiated = true
	s := &in.s
	b := max(minFirstBuckets, s.policy.buckets(s.st.Len(), 0, 0, false))
	if s.limit > 0 {
		// Rather fewer, larger buckets that all fit than a deferred remainder.
		const perBucket = 3 + 1 + 1 + FingerprintSize // typical timestamp delta, prefix length, mode, fingerprint
		b = min(b, (s.limit-reserve)/perBucket)
	}
	msg := s.initiate(b)
	s.level += 2
	return msg, nil
}

// Reconcile processes the peer's reply to our last message. It returns the
// next message to send, the IDs we have that the peer lacks (have) and the
// IDs the peer has that we lack (need) learned from this reply, and whether
// reconciliation is complete. When done is true there is no next message,
// and the have and need of all calls together are exactly the difference
// between the two sets.
//
// If the peer does not speak protocol version 1, the error wraps
// ErrUnsupportedVersion; if the reply is malformed, it wraps ErrMalformed.
// After an error the Initiator must not be used again.
func (in *Initiator) Reconcile(msg []byte) (next []byte, have, need [][IDSize]byte, done bool, err error) {
	switch {
	case !in.initiated:
		return nil, nil, nil, false, errors.New("negentropy: Reconcile called before Initiate")
	case in.done:
		return nil, nil, nil, false, errors.New("negentropy: Reconcile called after reconciliation was done")
	case in.failed:
		return nil, nil, nil, false, errors.New("negentropy: Reconcile called after an error")
	}
	if len(msg) == 0 {
		in.failed = true
		return nil, nil, nil, false, &FormatError{Offset: 0, Reason: "empty message"}
	}
	if msg[0] != ProtocolVersion {
		in.failed = true
		return nil, nil, nil, false, fmt.Errorf("%w 0x%02x (we speak 0x%02x)", ErrUnsupportedVersion, msg[0], ProtocolVersion)
	}
	in.have, in.need = nil, nil
	out, err := in.s.process(msg, in)
	have, need = in.have, in.need
	in.have, in.need = nil, nil
	if err != nil {
		in.failed = true
		return nil, nil, nil, false, err
	}
	if len(out) == 1 {
		in.done = true
		return nil, have, need, true, nil
	}
	if in.reported == nil && len(have)+len(need) > 0 {
		in.remember(have, need) // for the replies to come
	}
	return out, have, need, false, nil
}

// compare is what the Initiator does with an IdList from the peer: ours in
// [lo, hi) that are not in the list are have, the listed IDs we do not hold
// in that range are need. It returns how many differences the range holds
// and how many items the two sides hold there together.
func (in *Initiator) compare(lo, hi int, ids []byte) (diffs, union int) {
	k := len(ids) / IDSize
	var first map[[IDSize]byte]int32 // index of each listed ID's first place
	var room [fewListed]bool
	var matched []bool // matched[j]: the j-th listed ID is one of ours
	if k <= fewListed {
		matched = room[:k]
	} else {
		first = make(map[[IDSize]byte]int32, k)
		for j := k - 1; j >= 0; j-- {
			first[[IDSize]byte(ids[j*IDSize:])] = int32(j)
		}
		matched = make([]bool, k)
	}
	for i := lo; i < hi; i++ {
		id := &in.s.st.at(i).ID
		if j := listedAt(ids, first, id); j >= 0 {
			matched[j] = true
		} else {
			in.have = in.report(in.have, *id)
			diffs++
		}
	}
	have := diffs
	for j := range k {
		id := [IDSize]byte(ids[j*IDSize:])
		if !matched[j] && listedAt(ids, first, &id) == j { // a repeated ID counts once
			in.need = in.report(in.need, id)
			diffs++
		}
	}
	return diffs, hi - lo + diffs - have
}

// fewListed is the longest IdList compare searches one ID at a time: a map
// would cost a short one more than it saves.
const fewListed = 8

// listedAt returns the index of the first ID of list equal to id, or -1,
// from first if it is not nil (see compare).
func listedAt(list []byte, first map[[IDSize]byte]int32, id *[IDSize]byte) int {
	if first != nil {
		if j, ok := first[*id]; ok {
			return int(j)
		}
		return -1
	}
	for j := 0; j+IDSize <= len(list); j += IDSize {
		if [IDSize]byte(list[j:]) == *id {
			return j / IDSize
		}
	}
	return -1
}

// report appends id to list, in.have or in.need, unless it was reported
// before. Most rounds are over after one or two replies, reporting a few
// IDs: those of the reply being processed are looked for in in.have and
// in.need, and the set of reported IDs is made only once they are more
// than fewReports or the round goes on (Reconcile). Made for every
// Initiator, the set was 2.6% of all the simulator's walkers day allocated
// (0.48 of 18.6 GB).
func (in *Initiator) report(list [][IDSize]byte, id [IDSize]byte) [][IDSize]byte {
	if in.reported == nil && len(in.have)+len(in.need) >= fewReports {
		in.remember(in.have, in.need)
	}
	if in.reported != nil {
		if _, ok := in.reported[id]; ok {
			return list
		}
		in.reported[id] = struct{}{}
	} else if slices.Contains(in.have, id) || slices.Contains(in.need, id) {
		return list
	}
	return append(list, id)
}

// fewReports is the most IDs reported in one reply that report looks for
// one by one.
const fewReports = 16

// remember makes the set of reported IDs, which are have and need.
func (in *Initiator) remember(have, need [][IDSize]byte) {
	in.reported = make(map[[IDSize]byte]struct{}, 2*(len(have)+len(need)))
	for _, id := range have {
		in.reported[id] = struct{}{}
	}
	for _, id := range need {
		in.reported[id] = struct{}{}
	}
}

// Reconcile processes a message from the peer's Initiator and returns the
// reply to send back. A reply without a Fingerprint range ends the round:
// the initiator's next Reconcile returns done, whatever it holds (an IdList
// or a Skip leaves it nothing to ask). The Responder then lets go of its
// Storage, and a later message is an error, as it is for an Initiator
// that is done.
//
// A message in a protocol version other than 1 (a first byte 0x60 to 0x6f
// other than 0x61) gets the one-byte reply 0x61, the version we speak, as
// the protocol prescribes, so that the peer can fall back to it. A first
// byte outside that range, or any malformed message, is an error wrapping
// ErrMalformed and gets no reply.
func (r *Responder) Reconcile(msg []byte) ([]byte, error) {
	if len(msg) == 0 {
		return nil, &FormatError{Offset: 0, Reason: "empty message"}
	}
	if v := msg[0]; v != ProtocolVersion {
		if v < 0x60 || v > 0x6f {
			return nil, &FormatError{Offset: 0, Reason: fmt.Sprintf("invalid protocol version byte 0x%02x", v)}
		}
		return []byte{ProtocolVersion}, nil
	}
	if r.done {
		return nil, errors.New("negentropy: Reconcile called after reconciliation was done")
	}
	reply, err := r.s.process(msg, nil)
	if err != nil {
		return nil, err
	}
	if !hasFingerprint(reply) {
		r.done, r.s.st = true, nil
	}
	return reply, nil
}

// hasFingerprint says whether a message we wrote holds a Fingerprint range.
func hasFingerprint(msg []byte) bool {
	r := &reader{msg: msg, pos: 1}
	for !r.empty() {
		if _, err := r.bound(); err != nil {
			return true // not ours to judge: assume the round goes on
		}
		mode, err := r.varint("mode")
		if err != nil {
			return true
		}
		switch mode {
		case modeFingerprint:
			return true
		case modeIDList:
			count, err := r.varint("id list length")
			if err != nil || count > uint64(len(r.msg)-r.pos)/IDSize {
				return true
			}
			r.pos += int(count) * IDSize
		}
	}
	return false
}

// process reads the ranges of msg, whose version byte has been checked, and
// writes our answer to each. in is the Initiator if we are one, nil if we
// are the responder.
//
// For each Range of the message:
//
//   - Skip: nothing to do.
//   - Fingerprint equal to ours: nothing to do.
//   - Fingerprint equal to that of our items in the range but one, x, in a
//     range that ends before infinity: the peer lacks x and holds the rest.
//     The initiator notes x as have; the responder sends x in an IdList
//     range of its own (see oneExtra).
//   - Any other Fingerprint: split our items in the range (Fingerprints of
//     smaller buckets, or an IdList when few).
//   - IdList, initiator: note the differences; nothing more to send.
//   - IdList, responder: send our IDs the peer lacks (see answerIDList).
//
// Ranges needing nothing become a pending Skip. If our answer outgrows the
// frame size limit, the ranges not yet answered are deferred: the message
// ends with a Fingerprint of our items from there to infinity, which the
// peer will split again.
func (s *session) process(msg []byte, in *Initiator) ([]byte, error) {
	r := &reader{msg: msg, pos: 1}
	pooledBuf := bufPool.Get().(*[]byte)
	w := newWriter(s.limit, *pooledBuf)
	defer func() {
		if cap(w.buf) <= maxPooledBuf {
			*pooledBuf = w.buf[:0]
			bufPool.Put(pooledBuf)
		}
	}()
	n := s.st.Len()
	var prev bound // the lower bound of the next range: 0, empty ID
	lower := 0     // index of our first item not below prev
	hashes := oneExtraBudget
	pooled := scannedPool.Get().(*[]scannedRange)
	s.scanned = (*pooled)[:0]
	s.observe(s.scan(msg))
	// A session may wait long for the next message: it holds nothing.
	defer func() {
		if cap(s.scanned) <= maxPooledScan {
			*pooled = s.scanned[:0]
			scannedPool.Put(pooled)
		}
		s.scanned = nil
	}()
	// The differences found in the peer's IdLists of this message, and the
	// items in those ranges (initiator only).
	listDiffs, listItems := 0, 0
	for k := 0; !r.empty(); k++ {
		start := r.pos
		cur, err := r.bound()
		if err != nil {
			return nil, err
		}
		if cur.compare(prev) < 0 {
			return nil, r.fail(start, "bound out of order")
		}
		at := r.pos
		mode, err := r.varint("mode")
		if err != nil {
			return nil, err
		}
		seen := s.scannedAt(k, lower, at)
		var upper int
		if seen != nil {
			upper = seen.hi
		} else {
			upper = s.st.lowerBound(lower, n, cur)
		}
		// A range whose lower bound is at infinity (timestamp 2^64-1)
		// holds no item on either side. A frame-limited v1 peer may still
		// send one: having answered a range up to infinity and gone over
		// its limit, it appends its deferral, a Fingerprint up to infinity
		// of its items from there on: none. Such a range must say it is
		// empty; one that claims items is malformed (see empty below).
		empty := prev.ts == math.MaxUint64
		ok := true
		switch mode {
		case modeSkip:
			w.skipTo(cur, upper)
		case modeFingerprint:
			b, err := r.bytes(FingerprintSize, "fingerprint")
			if err != nil {
				return nil, err
			}
			fp := [FingerprintSize]byte(b)
			var sum sum256
			var ours [FingerprintSize]byte
			if seen != nil && seen.hasFP {
				sum, ours = seen.sum, seen.fp
			} else {
				sum = s.sum(lower, upper)
				ours = sum.fingerprint(uint64(upper - lower))
			}
			if fp == ours {
				w.skipTo(cur, upper)
				break
			}
			if empty {
				return nil, r.fail(start, "fingerprint of items after the infinity bound")
			}
			// The one-extra-item check only on ranges that end before
			// infinity: a v1 peer's deferral (SPEC.md §11.5) is a
			// Fingerprint up to infinity that may cover fewer of its items
			// than the range's bounds say, and "theirs equals ours less x"
			// would then conclude wrongly. Every other Fingerprint a v1
			// peer sends is exact (SPEC.md §11.3). Nor where the range
			// likely holds two differences or more: the hashes would be
			// spent in vain.
			x := -1
			if cur.ts != math.MaxUint64 && s.density*float64(upper-lower) < 2 {
				x = s.st.oneExtra(lower, upper, sum, fp, &hashes)
			}
			switch {
			case x >= 0 && in != nil:
				in.have = in.report(in.have, s.st.at(x).ID)
				w.skipTo(cur, upper)
			case x >= 0:
				ok = s.sendRun(w, lower, upper, cur, x, x+1)
			default:
				ok = s.split(w, lower, upper, cur)
			}
		case modeIDList:
			countAt := r.pos
			count, err := r.varint("id list length")
			if err != nil {
				return nil, err
			}
			if count > uint64(len(r.msg)-r.pos)/IDSize {
				return nil, r.fail(countAt, "id list of %d ids is longer than the %d bytes left", count, len(r.msg)-r.pos)
			}
			if empty && count > 0 {
				return nil, r.fail(countAt, "id list of %d ids after the infinity bound", count)
			}
			ids, _ := r.bytes(count*IDSize, "id list")
			if in != nil {
				diffs, union := in.compare(lower, upper, ids)
				if union >= minDensityRange {
					// An IdList tells the differences in its range exactly:
					// a better estimate than any from Fingerprints.
					listDiffs += diffs
					listItems += union
					if listItems >= 4*minDensityRange {
						s.density, s.saturated = float64(listDiffs)/float64(listItems), false
					}
				}
				w.skipTo(cur, upper)
			} else {
				ok = s.answerIDList(w, lower, upper, cur, ids)
			}
		default:
			return nil, r.fail(at, "unknown mode %d", mode)
		}
		if !ok {
			w.deferRest(s.st)
			break
		}
		prev, lower = cur, upper
	}
	s.level += 2
	if cap(w.buf) > maxPooledBuf {
		return w.buf, nil // not going back to the pool: no need to copy
	}
	return bytes.Clone(w.buf), nil
}

// scan reads the Fingerprint ranges of msg that end before infinity and
// hold items of ours, before anything is answered, for the density
// estimate: how many there are, how many differ from ours, and our items
// in them. It appends what it saw of each range to s.scanned, which is
// empty. It stops at anything malformed, which process reports.
func (s *session) scan(msg []byte) (differed, all, items int) {
	r := &reader{msg: msg, pos: 1}
	n := s.st.Len()
	lower := 0
	for !r.empty() {
		b, err := r.bound()
		if err != nil {
			break
		}
		at := r.pos
		mode, err := r.varint("mode")
		if err != nil {
			break
		}
		upper := s.st.lowerBound(lower, n, b)
		s.scanned = append(s.scanned, scannedRange{lo: lower, hi: upper, at: at})
		switch mode {
		case modeFingerprint:
			fp, err := r.bytes(FingerprintSize, "fingerprint")
			if err != nil {
				return differed, all, items
			}
			if upper > lower && b.ts != math.MaxUint64 {
				all++
				items += upper - lower
				seen := &s.scanned[len(s.scanned)-1]
				seen.sum = s.sum(lower, upper)
				seen.fp, seen.hasFP = seen.sum.fingerprint(uint64(upper-lower)), true
				if [FingerprintSize]byte(fp) != seen.fp {
					differed++
				}
			}
		case modeIDList:
			count, err := r.varint("id list length")
			if err != nil || count > uint64(len(r.msg)-r.pos)/IDSize {
				return differed, all, items
			}
			r.pos += int(count) * IDSize
		case modeSkip:
		default:
			return differed, all, items
		}
		lower = upper
	}
	return differed, all, items
}

// split writes our items [lo, hi), which end at upper bound ub, as the
// policy says for this level. It returns false if not all of it fit.
func (s *session) split(w *writer, lo, hi int, ub bound) bool {
	return s.splitInto(w, lo, hi, ub, s.policy.buckets(hi-lo, s.level, s.density, s.saturated))
}

// splitInto writes our items [lo, hi), which end at ub, as one IdList if
// b is 0 or they are one at most, else as Fingerprints of b buckets of
// equal size (the first (hi-lo) mod b buckets one item larger), each ending
// at the minimal bound before the next bucket's first item: b = 1 is one
// Fingerprint of the whole range. It returns false if not all of it
// fit, having written what did.
func (s *session) splitInto(w *writer, lo, hi int, ub bound, b int) bool {
	m := hi - lo
	if b == 0 || m <= 1 {
		return w.idList(s.st, lo, hi, ub)
	}
	b = min(b, m)
	cur := lo
	for i := range b {
		next := cur + m/b
		if i < m%b {
			next++
		}
		nb := ub
		if next < hi {
			nb = minimalBound(s.st.at(next-1), s.st.at(next))
		}
		if !w.fingerprint(nb, next, s.fingerprint(cur, next)) {
			return false
		}
		cur = next
	}
	return true
}

// answerIDList is the responder's answer to an IdList: the peer's IDs in
// a range in which we hold items [lo, hi), ending at ub. The initiator must
// learn which of ours it lacks and which of its own we lack.
//
// If the peer listed an ID we do not hold, we cannot tell where in the
// range it lies, so we send all our IDs in the range as one IdList, and the
// initiator compares. Otherwise we know every item the peer holds there:
// each run of our items the peer lacks goes in an IdList range of its own,
// cut at minimal bounds from the neighbouring items, and the rest of the
// range, identical on both sides, is skipped. The initiator then learns the
// same at a fraction of the bytes.
func (s *session) answerIDList(w *writer, lo, hi int, ub bound, ids []byte) bool {
	theirs := make(map[[IDSize]byte]struct{}, len(ids)/IDSize)
	for i := 0; i < len(ids); i += IDSize {
		theirs[[IDSize]byte(ids[i:])] = struct{}{}
	}
	// Look for their IDs among ours, but not past the point where more of
	// ours than fit in the frame were not theirs: the answer would be cut
	// there anyway, so it lists ours from the start of the range. The
	// answer then costs what fits in a frame and what they sent, not a
	// lookup per item we hold.
	limit := hi
	if w.budget > 0 {
		limit = min(hi, lo+len(theirs)+max(0, w.budget-len(w.buf))/IDSize+1)
	}
	held := 0
	s.st.each(lo, limit, func(_ int, it *Item) bool {
		if _, ok := theirs[it.ID]; ok {
			held++
		}
		return held < len(theirs)
	})
	if held < len(theirs) {
		return w.idList(s.st, lo, hi, ub)
	}
	lacks := func(i int) bool { _, ok := theirs[s.st.at(i).ID]; return !ok }
	for i := lo; i < hi; {
		if !lacks(i) {
			i++
			continue
		}
		// A run longer than a frame holds is cut where the frame is full
		// anyway: look no further than one ID past that.
		stop := hi
		if w.budget > 0 {
			stop = min(hi, i+max(0, w.budget-len(w.buf))/IDSize+2)
		}
		j := i + 1
		for j < stop && lacks(j) {
			j++
		}
		if !s.sendRun(w, lo, hi, ub, i, j) {
			return false
		}
		i = j
	}
	w.skipTo(ub, hi)
	return true
}

// sendRun answers a range holding our items [lo, hi) and ending at ub in
// which the peer holds the same items as we do except for [i, j), which it
// lacks: a Skip up to the shortest bound before item i, an IdList of items
// [i, j) up to the shortest bound after item j-1, and a pending Skip for
// the rest of the range. The peer finds no item of its own in the IdList
// range and learns that it needs these IDs. It returns false if not all of
// it fit.
func (s *session) sendRun(w *writer, lo, hi int, ub bound, i, j int) bool {
	if i > lo {
		w.skipTo(minimalBound(s.st.at(i-1), s.st.at(i)), i)
	}
	end := ub
	if j < hi {
		end = minimalBound(s.st.at(j-1), s.st.at(j))
	}
	if !w.idList(s.st, i, j, end) {
		return false
	}
	w.skipTo(ub, hi)
	return true
}
