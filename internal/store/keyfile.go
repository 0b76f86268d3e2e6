package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeyFileName is the name of the key file inside the Grapevine home: the
// passphrase-wrapped data key and the erasure table (SPEC §7).
const KeyFileName = "grapevine.key"

// Key file layout. The file holds two slots of slotSize bytes, A at offset
// 0 and B at offset slotSize; a slot is
//
//	[0,16)    magic "grapevine-key-v2"
//	[16,20)   slot size S, be32: a power of two, 8 KiB to 64 MiB
//	[20,28)   sequence number, be64, at least 1
//	[28,44)   store id (the same in the db's meta record)
//	[44,48)   Argon2id time, be32
//	[48,52)   Argon2id memory in KiB, be32
//	[52,53)   Argon2id lanes
//	[53,69)   salt
//	[69,93)   wrap nonce
//	[93,141)  wrapped DEK: XChaCha20-Poly1305(KEK, wrap nonce, DEK, AD = [0,16) || [28,69))
//	[141,165) table nonce
//	[165,S-32) sealed erasure table: XChaCha20-Poly1305(table key, table nonce, table, AD = [0,165))
//	[S-32,S)  SHA-256 of [0,S-32)
const (
	keyMagic = "grapevine-key-v2"

	slotMinSize    = 8 << 10
	slotMaxSize    = 64 << 20
	maxKeyFileSize = 2 * slotMaxSize

	slotOffSize       = 16
	slotOffSeq        = 20
	slotOffID         = 28
	slotOffTime       = 44
	slotOffMemory     = 48
	slotOffThreads    = 52
	slotOffSalt       = 53
	slotOffWrapNonce  = 69
	slotOffWrapped    = 93
	slotOffTableNonce = 141
	slotOffTable      = 165
	slotSumSize       = sha256.Size
	// slotFixed is a slot's size less the table's plaintext.
	slotFixed = slotOffTable + tagSize + slotSumSize // 213

	tableEntrySize = hkeySize + keySize // 48
)

// itemKeys is the erasure table: the key of every erasable item, by hkey.
type itemKeys map[[hkeySize]byte][keySize]byte

// keySlot is one decoded slot.
type keySlot struct {
	size       int
	seq        uint64
	id         [storeIDSize]byte
	kdf        KDFParams
	salt       [saltSize]byte
	wrapNonce  [nonceSize]byte
	wrapped    [keySize + tagSize]byte
	tableNonce [nonceSize]byte
	table      []byte // sealed table, size-slotFixed+tagSize bytes
}

func validSlotSize(n int) bool {
	return n >= slotMinSize && n <= slotMaxSize && n&(n-1) == 0
}

// tableCapacity is how many entries the table of a slot of this size holds:
// its plaintext is be32(count) || entries || zero padding.
func tableCapacity(size int) int {
	return (size - slotFixed - 4) / tableEntrySize
}

// slotSizeFor is the smallest slot size whose table holds n entries.
func slotSizeFor(n int) int {
	s := slotMinSize
	for tableCapacity(s) < n && s < slotMaxSize {
		s *= 2
	}
	return s
}

// header returns bytes [0,165) of the slot.
func (sl *keySlot) header() []byte {
	b := make([]byte, slotOffTable)
	copy(b, keyMagic)
	binary.BigEndian.PutUint32(b[slotOffSize:], uint32(sl.size))
	binary.BigEndian.PutUint64(b[slotOffSeq:], sl.seq)
	copy(b[slotOffID:], sl.id[:])
	binary.BigEndian.PutUint32(b[slotOffTime:], sl.kdf.Time)
	binary.BigEndian.PutUint32(b[slotOffMemory:], sl.kdf.MemoryKiB)
	b[slotOffThreads] = sl.kdf.Threads
	copy(b[slotOffSalt:], sl.salt[:])
	copy(b[slotOffWrapNonce:], sl.wrapNonce[:])
	copy(b[slotOffWrapped:], sl.wrapped[:])
	copy(b[slotOffTableNonce:], sl.tableNonce[:])
	return b
}

// wrapAD binds the wrapped DEK to the store and the KDF inputs, but not to
// the sequence number or the table, so that writing the table never needs
// the passphrase.
func (sl *keySlot) wrapAD() []byte {
	h := sl.header()
	return append(h[:slotOffSize:slotOffSize], h[slotOffID:slotOffWrapNonce]...)
}

// marshal encodes the slot, checksum included.
func (sl *keySlot) marshal() []byte {
	b := make([]byte, 0, sl.size)
	b = append(b, sl.header()...)
	b = append(b, sl.table...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// parseSlot decodes one slot, which must be exactly b. It checks the
// checksum (a torn write fails it) and the header's ranges; it never
// panics.
func parseSlot(b []byte) (*keySlot, error) {
	if len(b) < slotMinSize {
		return nil, fmt.Errorf("%w: slot of %d bytes", errCorruptKeyFile, len(b))
	}
	size := int(binary.BigEndian.Uint32(b[slotOffSize:]))
	switch {
	case string(b[:len(keyMagic)]) != keyMagic:
		return nil, fmt.Errorf("%w: bad magic", errCorruptKeyFile)
	case !validSlotSize(size) || size != len(b):
		return nil, fmt.Errorf("%w: bad slot size %d", errCorruptKeyFile, size)
	}
	if sum := sha256.Sum256(b[:size-slotSumSize]); !bytes.Equal(sum[:], b[size-slotSumSize:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorruptKeyFile)
	}
	sl := &keySlot{
		size: size,
		seq:  binary.BigEndian.Uint64(b[slotOffSeq:]),
		kdf: KDFParams{
			Time:      binary.BigEndian.Uint32(b[slotOffTime:]),
			MemoryKiB: binary.BigEndian.Uint32(b[slotOffMemory:]),
			Threads:   b[slotOffThreads],
		},
		table: bytes.Clone(b[slotOffTable : size-slotSumSize]),
	}
	if sl.seq == 0 {
		return nil, fmt.Errorf("%w: sequence number 0", errCorruptKeyFile)
	}
	if err := sl.kdf.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptKeyFile, err)
	}
	copy(sl.id[:], b[slotOffID:])
	copy(sl.salt[:], b[slotOffSalt:])
	copy(sl.wrapNonce[:], b[slotOffWrapNonce:])
	copy(sl.wrapped[:], b[slotOffWrapped:])
	copy(sl.tableNonce[:], b[slotOffTableNonce:])
	return sl, nil
}

// wrapDEK sets the slot's wrapped DEK; the KDF fields, salt and wrap nonce
// must be set.
func (sl *keySlot) wrapDEK(kek, dek []byte) error {
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return err
	}
	copy(sl.wrapped[:], aead.Seal(nil, sl.wrapNonce[:], dek, sl.wrapAD()))
	return nil
}

// unwrapDEK opens the wrapped data key. Any failure means the passphrase
// (or the slot) is wrong.
func (sl *keySlot) unwrapDEK(kek []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	dek, err := aead.Open(nil, sl.wrapNonce[:], sl.wrapped[:], sl.wrapAD())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return dek, nil
}

// sealTable sets the slot's sealed table; size, seq and table nonce must be
// set, and keys must fit.
func (sl *keySlot) sealTable(aead cipherAEAD, keys itemKeys) {
	pt := marshalTable(keys, sl.size-slotFixed)
	sl.table = aead.Seal(nil, sl.tableNonce[:], pt, sl.header())
	clear(pt)
}

// openTable authenticates and decodes the slot's table.
func (sl *keySlot) openTable(aead cipherAEAD) (itemKeys, error) {
	pt, err := aead.Open(nil, sl.tableNonce[:], sl.table, sl.header())
	if err != nil {
		return nil, fmt.Errorf("%w: the erasure table does not authenticate", errCorruptKeyFile)
	}
	defer clear(pt)
	return parseTable(pt)
}

// marshalTable encodes keys as be32(count) || (hkey || key) in hkey order
// || zeros, plainLen bytes in all.
func marshalTable(keys itemKeys, plainLen int) []byte {
	pt := make([]byte, plainLen)
	binary.BigEndian.PutUint32(pt, uint32(len(keys)))
	hks := make([][hkeySize]byte, 0, len(keys))
	for hk := range keys {
		hks = append(hks, hk)
	}
	slices.SortFunc(hks, func(a, b [hkeySize]byte) int { return bytes.Compare(a[:], b[:]) })
	off := 4
	for _, hk := range hks {
		k := keys[hk]
		off += copy(pt[off:], hk[:])
		off += copy(pt[off:], k[:])
	}
	return pt
}

// parseTable decodes a table plaintext. Entries must be in strictly
// increasing hkey order and the padding zero, so that a table has one
// encoding.
func parseTable(pt []byte) (itemKeys, error) {
	if len(pt) < 4 {
		return nil, fmt.Errorf("%w: table too short", errCorruptKeyFile)
	}
	n := binary.BigEndian.Uint32(pt)
	if uint64(n) > uint64(len(pt)-4)/tableEntrySize {
		return nil, fmt.Errorf("%w: table count %d too large", errCorruptKeyFile, n)
	}
	keys := make(itemKeys, n)
	off := 4
	var prev []byte
	for range n {
		hk := pt[off : off+hkeySize]
		if prev != nil && bytes.Compare(prev, hk) >= 0 {
			return nil, fmt.Errorf("%w: table entries out of order", errCorruptKeyFile)
		}
		keys[[hkeySize]byte(hk)] = [keySize]byte(pt[off+hkeySize : off+tableEntrySize])
		prev = hk
		off += tableEntrySize
	}
	for _, b := range pt[off:] {
		if b != 0 {
			return nil, fmt.Errorf("%w: non-zero table padding", errCorruptKeyFile)
		}
	}
	return keys, nil
}

// slotState is what is known of the slot at one of the two positions.
type slotState struct {
	valid bool // holds a slot of the current layout that verifies
	seq   uint64
}

// keyLayout is where the slots are: A at 0 and B at size.
type keyLayout struct {
	size    int
	pos     [2]slotState
	fileLen int64
	maxSeq  uint64 // the highest sequence number written or seen anywhere
}

// older is the position the next write goes to: one that does not verify,
// else the one with the lower sequence number (A on a tie).
func (l *keyLayout) older() int {
	switch {
	case !l.pos[0].valid:
		return 0
	case !l.pos[1].valid:
		return 1
	case l.pos[0].seq <= l.pos[1].seq:
		return 0
	}
	return 1
}

// scanKeyFile finds the newest slot of a key file that verifies. Slot A is
// at 0; a slot B of size S is at offset S, so the candidates are offset 0
// and every possible slot size (while the file grows, the new B slot lies
// beyond the old ones; SPEC §7). It never panics.
//
// It also returns the slot at the other position of the newest one's
// layout, if that verifies.
func scanKeyFile(b []byte) (best, other *keySlot, lay keyLayout, err error) {
	type cand struct {
		off int
		sl  *keySlot
	}
	var cands []cand
	if len(b) >= slotOffSeq {
		if s := int(binary.BigEndian.Uint32(b[slotOffSize:])); validSlotSize(s) && s <= len(b) {
			if sl, err := parseSlot(b[:s]); err == nil {
				cands = append(cands, cand{0, sl})
			}
		}
	}
	for s := slotMinSize; s <= slotMaxSize && 2*s <= len(b); s *= 2 {
		if sl, err := parseSlot(b[s : 2*s]); err == nil {
			cands = append(cands, cand{s, sl})
		}
	}
	if len(cands) == 0 {
		return nil, nil, keyLayout{}, fmt.Errorf("%w: no slot verifies", errCorruptKeyFile)
	}
	top := cands[0]
	for _, c := range cands[1:] {
		if c.sl.seq > top.sl.seq {
			top = c
		}
	}
	lay = keyLayout{size: top.sl.size, fileLen: int64(len(b)), maxSeq: top.sl.seq}
	for _, c := range cands {
		// A slot of this size is at 0 or at size: position 0 or 1.
		if c.sl.size == lay.size {
			i := c.off / lay.size
			lay.pos[i] = slotState{valid: true, seq: c.sl.seq}
			if c.off != top.off {
				other = c.sl
			}
		}
	}
	return top.sl, other, lay, nil
}

// keyFile is an open key file. Every write goes to one slot in place
// (WriteAt and fsync): the file is never renamed or copied, so that what
// it held before does not survive in another inode.
type keyFile struct {
	f    *os.File
	path string
	lay  keyLayout
	hdr  keySlot    // what every slot repeats: id, KDF, salt, wrapped DEK
	aead cipherAEAD // under the table key
	// other is the slot beside the newest when the file was read, if it
	// verified; Open checks it holds nothing the newest does not.
	other *keySlot
	// syncs counts fsyncs, for the benchmarks.
	syncs int
	// hook, if set (tests only), is called before every write and fsync;
	// an error is returned as the write's.
	hook func(keyFileStep) error
}

// keyFileStep describes one step of a key file write, for tests.
type keyFileStep struct {
	op  string // "write", "sync", "scrub"
	off int64
	buf []byte // for "write": what is about to be written at off
}

func (k *keyFile) step(st keyFileStep) error {
	if k.hook == nil {
		return nil
	}
	return k.hook(st)
}

// write stores keys in one slot (the older), or in both when both is set,
// in which case nothing older than keys survives in the file.
func (k *keyFile) write(keys itemKeys, both bool) error {
	size := max(k.lay.size, slotSizeFor(len(keys)))
	if tableCapacity(size) < len(keys) {
		return fmt.Errorf("too many erasable items (%d; at most %d)", len(keys), tableCapacity(slotMaxSize))
	}
	// A sequence number is used once even if its write fails, so that a
	// slot that reached the disk anyway never ties with a later one.
	k.lay.maxSeq++
	sl := k.hdr
	sl.size, sl.seq = size, k.lay.maxSeq
	if _, err := rand.Read(sl.tableNonce[:]); err != nil {
		return fmt.Errorf("failed to generate key file nonce: %w", err)
	}
	sl.sealTable(k.aead, keys)
	buf := sl.marshal()
	var order []int
	if size > k.lay.size {
		// The file grows: the new B slot goes first, beyond both old
		// slots, which stay as they are until it is durable; then A.
		if err := k.grow(buf, sl.seq); err != nil {
			return err
		}
		if both {
			order = []int{0}
		}
	} else {
		order = []int{k.lay.older()}
		if both {
			order = append(order, 1-order[0])
		}
	}
	for _, i := range order {
		if err := k.writeSlot(i, buf, sl.seq); err != nil {
			return err
		}
	}
	if !both {
		return nil
	}
	return k.scrubTail()
}

// grow writes buf as slot B of a layout with larger slots. If that fails,
// the old layout is kept: its slots lie below the new B and are intact.
func (k *keyFile) grow(buf []byte, seq uint64) error {
	old := k.lay
	k.lay = keyLayout{size: len(buf), fileLen: old.fileLen, maxSeq: old.maxSeq}
	if err := k.writeSlot(1, buf, seq); err != nil {
		old.fileLen = k.lay.fileLen
		k.lay = old
		return err
	}
	return nil
}

func (k *keyFile) writeSlot(i int, buf []byte, seq uint64) error {
	off := int64(i * k.lay.size)
	k.lay.pos[i] = slotState{} // torn if this fails
	if err := k.step(keyFileStep{op: "write", off: off, buf: buf}); err != nil {
		return fmt.Errorf("failed to write key file: %w", err)
	}
	if _, err := k.f.WriteAt(buf, off); err != nil {
		return fmt.Errorf("failed to write key file: %w", err)
	}
	k.lay.fileLen = max(k.lay.fileLen, off+int64(len(buf)))
	if err := k.sync(); err != nil {
		return err
	}
	k.lay.pos[i] = slotState{valid: true, seq: seq}
	return nil
}

func (k *keyFile) sync() error {
	if err := k.step(keyFileStep{op: "sync"}); err != nil {
		return fmt.Errorf("failed to sync key file: %w", err)
	}
	if err := k.f.Sync(); err != nil {
		return fmt.Errorf("failed to sync key file: %w", err)
	}
	k.syncs++
	return nil
}

// scrubTail zeroes and cuts what lies beyond the two slots, if anything:
// the remains of a growth that a crash or an error interrupted, which may
// hold keys since dropped, or a wrap under an old passphrase.
func (k *keyFile) scrubTail() error {
	end := int64(2 * k.lay.size)
	if k.lay.fileLen <= end {
		return nil
	}
	if err := k.step(keyFileStep{op: "scrub", off: end}); err != nil {
		return fmt.Errorf("failed to scrub key file: %w", err)
	}
	if _, err := k.f.WriteAt(make([]byte, k.lay.fileLen-end), end); err != nil {
		return fmt.Errorf("failed to scrub key file: %w", err)
	}
	if err := k.sync(); err != nil {
		return err
	}
	if err := k.f.Truncate(end); err != nil {
		return fmt.Errorf("failed to scrub key file: %w", err)
	}
	k.lay.fileLen = end
	return k.sync()
}

func (k *keyFile) close() error { return k.f.Close() }

// needsRepair reports whether the file, as read, must be rewritten although
// newest is intact and keys is its table: a slot does not verify, the file
// has a tail beyond the slots, or the other slot holds a key or a wrapped
// DEK that the newest does not (a crash stopped a write halfway).
func (k *keyFile) needsRepair(newest *keySlot, keys itemKeys) bool {
	if !k.lay.pos[0].valid || !k.lay.pos[1].valid || k.lay.fileLen != int64(2*k.lay.size) || k.other == nil {
		return true
	}
	o := k.other
	if o.seq == newest.seq {
		return false // written from the same bytes
	}
	if o.kdf != newest.kdf || o.salt != newest.salt || o.wrapNonce != newest.wrapNonce || o.wrapped != newest.wrapped {
		return true
	}
	old, err := o.openTable(k.aead)
	if err != nil {
		return true
	}
	defer clear(old)
	for hk, key := range old {
		if cur, ok := keys[hk]; !ok || cur != key {
			return true
		}
	}
	return false
}

// createKeyFile makes a new key file with both slots holding hdr and an
// empty table.
func createKeyFile(path string, hdr keySlot, aead cipherAEAD) (*keyFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	k := &keyFile{f: f, path: path, lay: keyLayout{size: slotMinSize}, hdr: hdr, aead: aead}
	// Sequence numbers start at random, below 2^62, so that one copy of
	// the file does not tell how many times it was written.
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to generate sequence number: %w", err)
	}
	k.lay.maxSeq = binary.BigEndian.Uint64(r[:]) >> 2
	if err := k.write(itemKeys{}, true); err != nil {
		f.Close()
		return nil, err
	}
	return k, nil
}

// readKeyFile opens the key file and finds its newest slot; nothing is
// written. The table key is set later, once the DEK is unwrapped.
func readKeyFile(path string) (*keyFile, *keySlot, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	b, err := readAllLimited(f, maxKeyFileSize)
	if err == nil {
		var sl, other *keySlot
		var lay keyLayout
		if sl, other, lay, err = scanKeyFile(b); err == nil {
			return &keyFile{f: f, path: path, lay: lay, hdr: *sl, other: other}, sl, nil
		}
	}
	f.Close()
	return nil, nil, err
}

func readAllLimited(f *os.File, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes is too large", errCorruptKeyFile, fi.Size())
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}
