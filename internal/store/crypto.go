package store

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes and labels of the v2 format. See SPEC.md §7.
const (
	keySize     = 32 // KEK, DEK, subkeys, item keys
	saltSize    = 16
	nonceSize   = chacha20poly1305.NonceSizeX // 24
	tagSize     = chacha20poly1305.Overhead   // 16
	hkeySize    = 16
	storeIDSize = 16

	sealInfo     = "grapevine store seal v2"
	indexInfo    = "grapevine store index v2"
	tableInfo    = "grapevine store erasure v2"
	itemNextInfo = "grapevine store item key next v2"

	// A stored value is be64(coarse expiry) || nonce || sealed plaintext.
	valuePrefix   = 8 + nonceSize            // 32
	valueOverhead = valuePrefix + tagSize    // 48, plus the padding
	plainFixed    = 1 + 8 + 4                // collection length, exact expiry, value length
	minPlain      = 64                       // the smallest size bucket
	maxValueLen   = 1<<30 - 4096             // far below bbolt's limit, so padding cannot overflow
	minStored     = valueOverhead + minPlain // the shortest well-formed stored value

	// day is the unit coarse expiries are rounded to; horizon caps how far
	// ahead a clear expiry may lie (see coarseExpiry).
	day     = 86400
	horizon = 60 * day
	// maxExpiry bounds exact expiries (whole seconds), as in v1.
	maxExpiry = 1<<63 - 1

	// KDF parameter bounds accepted by Create and by the key file parser,
	// so a corrupt or hostile key file cannot make Open allocate unbounded
	// memory or spin forever.
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 * 1024 * 1024 // 4 GiB
)

var (
	errCorruptKeyFile = errors.New("corrupt key file")
	errCorruptValue   = errors.New("corrupt or undecryptable value")
)

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime {
		return fmt.Errorf("argon2id time %d out of range [1,%d]", p.Time, maxKDFTime)
	}
	if p.Threads < 1 {
		return fmt.Errorf("argon2id threads must be at least 1")
	}
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB out of range [%d,%d]", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemoryKiB)
	}
	return nil
}

// deriveKEK derives the key-encryption key from the passphrase.
func deriveKEK(passphrase, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, keySize)
}

// storeKeys are the subkeys of one DEK.
type storeKeys struct {
	seal, index, table []byte
}

func (k *storeKeys) clear() {
	clear(k.seal)
	clear(k.index)
	clear(k.table)
}

// subkeys derives the value-sealing, key-hashing and erasure-table keys
// from the DEK.
func subkeys(dek []byte) (storeKeys, error) {
	var k storeKeys
	var err error
	for _, d := range []struct {
		out  *[]byte
		info string
	}{{&k.seal, sealInfo}, {&k.index, indexInfo}, {&k.table, tableInfo}} {
		if *d.out, err = hkdf.Key(sha256.New, dek, nil, d.info, keySize); err != nil {
			return storeKeys{}, err
		}
	}
	return k, nil
}

// nextItemKey is the key that replaces k when its item is overwritten. It is
// one-way, so the replaced key cannot be recomputed from the new one, and
// deterministic, so the key file need not learn it before the commit (an
// Open after a crash tries k's successor; SPEC §7, commit protocol).
func nextItemKey(k [keySize]byte) [keySize]byte {
	out, err := hkdf.Key(sha256.New, k[:], nil, itemNextInfo, keySize)
	if err != nil {
		panic(err) // HKDF-SHA256 cannot fail for a 32-byte output
	}
	return [keySize]byte(out)
}

// hashKey returns HMAC-SHA256(indexKey, collection || 0x00 || key)[:16].
func hashKey(indexKey []byte, collection string, key []byte) []byte {
	h := hmac.New(sha256.New, indexKey)
	h.Write([]byte(collection))
	h.Write([]byte{0})
	h.Write(key)
	return h.Sum(nil)[:hkeySize]
}

// keyHasher computes hashKey under one store's index key without redoing
// the HMAC key schedule on every call (hmac.New per call cost about 1 µs
// and 8 allocations, a large share of a Get on a memory store): it pools
// keyed HMACs, whose Reset restores a saved state instead of hashing the
// padded key again, each with a scratch buffer so that the message goes in
// with one Write. The pool makes it safe for concurrent use (readers run in
// parallel). TestKeyHasherMatchesHashKey pins it to hashKey.
type keyHasher struct {
	pool sync.Pool // of *keyHashState
}

type keyHashState struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// maxPooledKeyBuf bounds the scratch buffer kept in the pool, so that one
// huge key does not stay allocated.
const maxPooledKeyBuf = 4096

func (kh *keyHasher) init(indexKey []byte) {
	kh.pool.New = func() any { return &keyHashState{mac: hmac.New(sha256.New, indexKey)} }
}

// hash returns hashKey(indexKey, collection, key).
func (kh *keyHasher) hash(collection string, key []byte) [hkeySize]byte {
	st := kh.pool.Get().(*keyHashState)
	st.mac.Reset()
	st.buf = append(append(append(st.buf[:0], collection...), 0), key...)
	st.mac.Write(st.buf)
	out := [hkeySize]byte(st.mac.Sum(st.sum[:0]))
	if cap(st.buf) <= maxPooledKeyBuf {
		kh.pool.Put(st)
	}
	return out
}

// padSize is the size bucket a plaintext of n bytes is padded to: 64, 96,
// 128, 192, 256, 384, ... (the powers of two from 64 and 1.5 times each),
// so a stored value shows its size only to within 50 %.
func padSize(n int) int {
	for b := minPlain; ; b *= 2 {
		if n <= b {
			return b
		}
		if n <= b+b/2 {
			return b + b/2
		}
	}
}

// ceilDay rounds t up to a multiple of day.
func ceilDay(t uint64) uint64 {
	return (t + day - 1) / day * day
}

// coarseExpiry is the expiry shown in clear for an item whose exact expiry
// is exact, stored at now, with jitter in [0, day): the exact expiry
// rounded up to a day, plus the jitter, so it is never before the exact
// one. An expiry further than horizon ahead is shown as now+horizon
// (rounded and jittered the same way) and renewed by Sweep when that comes,
// so that items kept for long (contacts, the identity, a year of messages)
// do not stand out as a countable class.
func coarseExpiry(exact, now, jitter uint64) uint64 {
	now = min(now, maxExpiry/2) // keeps now+horizon far from overflow
	e := min(exact, now+horizon)
	return ceilDay(e) + jitter%day
}

// nonceAndJitter fills rnd with a fresh nonce and the jitter of a coarse
// expiry, in one read.
func nonceAndJitter(rnd *[nonceSize + 8]byte) error {
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("failed to generate nonce: %w", err)
	}
	return nil
}

// valueAD is the additional data of a sealed value: hkey || be64(coarse).
func valueAD(hkey []byte, coarse uint64) [hkeySize + 8]byte {
	var ad [hkeySize + 8]byte
	copy(ad[:], hkey)
	binary.BigEndian.PutUint64(ad[hkeySize:], coarse)
	return ad
}

// sealItem returns the stored form of an item:
//
//	be64(coarse) || nonce || XChaCha20-Poly1305(key, nonce,
//	    plaintext = len(collection) || collection || be64(exact) ||
//	                be32(len(value)) || value || zeros to padSize,
//	    AD = hkey || be64(coarse))
//
// The plaintext is built in place, and the AD after the end of the result,
// so that sealing costs one allocation.
func sealItem(aead cipherAEAD, hkey []byte, coarse, exact uint64, collection string, nonce, value []byte) []byte {
	p := padSize(plainFixed + len(collection) + len(value))
	n := valuePrefix + p + tagSize
	buf := make([]byte, n+hkeySize+8)
	ad := buf[n:]
	copy(ad, hkey)
	binary.BigEndian.PutUint64(ad[hkeySize:], coarse)
	out := buf[:valuePrefix+p]
	binary.BigEndian.PutUint64(out, coarse)
	copy(out[8:], nonce)
	putPlain(out[valuePrefix:], exact, collection, value) // the padding is already zero
	return aead.Seal(out[:valuePrefix], out[8:valuePrefix], out[valuePrefix:], ad)
}

// putPlain writes the plaintext of an item, without its padding, at the
// start of pt, and returns its length.
func putPlain(pt []byte, exact uint64, collection string, value []byte) int {
	pt[0] = byte(len(collection))
	off := 1 + copy(pt[1:], collection)
	binary.BigEndian.PutUint64(pt[off:], exact)
	binary.BigEndian.PutUint32(pt[off+8:], uint32(len(value)))
	return off + 12 + copy(pt[off+12:], value)
}

// keepItem returns the form a memory store keeps an item in: the plaintext
// sealItem would seal, without the padding, and without the coarse expiry,
// nonce and tag around it, which a memory store never reads (it has no
// expiry index and encrypts nothing):
//
//	len(collection) || collection || be64(exact) || be32(len(value)) || value
//
// The hkey follows it in the same allocation, within the result's capacity:
// putItem keeps it as the key, which then costs no allocation of its own.
// keptSize gives the size the sealed value would have.
func keepItem(hkey []byte, exact uint64, collection string, value []byte) []byte {
	n := plainFixed + len(collection) + len(value)
	buf := make([]byte, n+hkeySize)
	putPlain(buf, exact, collection, value)
	copy(buf[n:], hkey)
	return buf[:n]
}

// keptSize is the length of the sealed value of an item that a memory
// store keeps in n bytes (keepItem): what it counts the item's value for,
// so that its size is what a file store's would be.
func keptSize(n int) int {
	return valueOverhead + padSize(n)
}

// openKept decodes a value keepItem made. Its slices point into kept. It
// never panics on malformed input.
func openKept(kept []byte) (itemPlain, error) {
	// The length parseHeader checks the header against is the one the
	// sealed value's plaintext would have.
	coll, exact, n, err := parseHeader(kept, padSize(len(kept)))
	if err != nil {
		return itemPlain{}, err
	}
	start := 1 + len(coll) + 12
	if start+n != len(kept) {
		return itemPlain{}, fmt.Errorf("%w: value length does not match", errCorruptValue)
	}
	return itemPlain{collection: coll, exact: exact, value: kept[start:len(kept):len(kept)]}, nil
}

// storedCoarse reads the clear coarse expiry of a stored value.
func storedCoarse(stored []byte) (uint64, bool) {
	if len(stored) < minStored {
		return 0, false
	}
	return binary.BigEndian.Uint64(stored), true
}

// itemPlain is a decoded plaintext; its slices point into the plaintext.
type itemPlain struct {
	collection []byte
	exact      uint64
	value      []byte
}

// parseHeader decodes the start of a plaintext whose full length is
// plainLen: everything but the value. It checks that the value fits and
// that plainLen is the size bucket of what it holds, which also makes it
// reject almost every garbage header (peekItem relies on that).
func parseHeader(h []byte, plainLen int) (coll []byte, exact uint64, n int, err error) {
	if len(h) < 1 {
		return nil, 0, 0, fmt.Errorf("%w: empty plaintext", errCorruptValue)
	}
	l := int(h[0])
	end := 1 + l + 12
	switch {
	case l == 0:
		return nil, 0, 0, fmt.Errorf("%w: empty collection name", errCorruptValue)
	case len(h) < end:
		return nil, 0, 0, fmt.Errorf("%w: header cut short", errCorruptValue)
	}
	coll = h[1 : 1+l]
	exact = binary.BigEndian.Uint64(h[1+l:])
	v := binary.BigEndian.Uint32(h[1+l+8:])
	switch {
	case bytes.IndexByte(coll, 0) >= 0:
		return nil, 0, 0, fmt.Errorf("%w: collection name with NUL", errCorruptValue)
	case exact == 0 || exact > maxExpiry:
		return nil, 0, 0, fmt.Errorf("%w: expiry out of range", errCorruptValue)
	case uint64(v) > uint64(plainLen-end) || padSize(end+int(v)) != plainLen:
		return nil, 0, 0, fmt.Errorf("%w: value length does not match the padding", errCorruptValue)
	}
	return coll, exact, int(v), nil
}

// parsePlain decodes a whole plaintext. The padding must be zero, so that
// every plaintext has exactly one encoding.
func parsePlain(pt []byte) (itemPlain, error) {
	coll, exact, n, err := parseHeader(pt, len(pt))
	if err != nil {
		return itemPlain{}, err
	}
	start := 1 + len(coll) + 12
	for _, b := range pt[start+n:] {
		if b != 0 {
			return itemPlain{}, fmt.Errorf("%w: non-zero padding", errCorruptValue)
		}
	}
	return itemPlain{collection: coll, exact: exact, value: pt[start : start+n : start+n]}, nil
}

// openItem authenticates and decrypts a stored value. The value it returns
// is freshly allocated. It never panics on malformed input.
func openItem(aead cipherAEAD, hkey []byte, stored []byte) (itemPlain, error) {
	coarse, ok := storedCoarse(stored)
	if !ok {
		return itemPlain{}, fmt.Errorf("%w: %d bytes is too short", errCorruptValue, len(stored))
	}
	// One allocation for the plaintext and, after it, the AD.
	n := len(stored) - valueOverhead
	buf := make([]byte, n+hkeySize+8)
	ad := buf[n:]
	copy(ad, hkey)
	binary.BigEndian.PutUint64(ad[hkeySize:], coarse)
	pt, err := aead.Open(buf[:0:n], stored[8:valuePrefix], stored[valuePrefix:], ad)
	if err != nil {
		return itemPlain{}, errCorruptValue
	}
	return parsePlain(pt)
}

// peekItem decrypts only the header of a stored value (collection and exact
// expiry), without authenticating it: Open uses it to build the directory
// of a whole store at a fraction of the cost of opening every value (one
// ChaCha20 block instead of the whole value and its Poly1305 tag). Every
// read that returns a value authenticates it. XChaCha20-Poly1305 encrypts
// the plaintext with the XChaCha20 stream from block counter 1, which is
// what this reproduces (TestPeekMatchesOpen).
// The collection it returns points into buf, which the caller reuses.
func peekItem(key []byte, stored []byte, buf *peekBuf) (coll []byte, exact uint64, ok bool) {
	if len(stored) < minStored {
		return nil, 0, false
	}
	c, err := chacha20.NewUnauthenticatedCipher(key, stored[8:valuePrefix])
	if err != nil {
		return nil, 0, false
	}
	c.SetCounter(1)
	ct := stored[valuePrefix : len(stored)-tagSize]
	c.XORKeyStream(buf[:1], ct[:1])
	n := min(1+int(buf[0])+12, len(ct))
	c.XORKeyStream(buf[1:n], ct[1:n])
	coll, exact, _, err = parseHeader(buf[:n], len(ct))
	if err != nil {
		return nil, 0, false
	}
	return coll, exact, true
}

// peekBuf holds the longest header: a 255-byte collection name.
type peekBuf [1 + 255 + 12]byte

// cipherAEAD is the subset of cipher.AEAD used here.
type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}
