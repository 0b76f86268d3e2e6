package store

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// On-disk constants. See SPEC-store.md.
const (
	metaMagic = "grapevine-store-v1"

	keySize   = 32 // KEK, DEK, seal key, index key
	saltSize  = 16
	nonceSize = chacha20poly1305.NonceSizeX // 24
	tagSize   = chacha20poly1305.Overhead   // 16
	hkeySize  = 16

	// Meta record layout (all integers big-endian):
	//   [0,18)   magic "grapevine-store-v1"
	//   [18,22)  Argon2id time (iterations), uint32
	//   [22,26)  Argon2id memory in KiB, uint32
	//   [26,27)  Argon2id threads (lanes), uint8
	//   [27,43)  salt, 16 bytes
	//   [43,67)  wrap nonce, 24 bytes
	//   [67,115) wrapped DEK: XChaCha20-Poly1305 ciphertext (32) || tag (16)
	// The AEAD additional data is bytes [0,43).
	metaOffTime    = len(metaMagic)         // 18
	metaOffMemory  = metaOffTime + 4        // 22
	metaOffThreads = metaOffMemory + 4      // 26
	metaOffSalt    = metaOffThreads + 1     // 27
	metaOffNonce   = metaOffSalt + saltSize // 43
	metaOffWrapped = metaOffNonce + nonceSize
	metaSize       = metaOffWrapped + keySize + tagSize // 115
	metaADLen      = metaOffNonce                       // 43

	// Stored value layout: be64 expiry || nonce(24) || ciphertext||tag.
	valueOverhead = 8 + nonceSize + tagSize // 48

	sealInfo  = "grapevine store seal v1"
	indexInfo = "grapevine store index v1"

	// KDF parameter bounds accepted by Create and by the meta parser, so a
	// corrupt or hostile meta record cannot make Open allocate unbounded
	// memory or spin forever.
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 * 1024 * 1024 // 4 GiB
)

var (
	errCorruptMeta  = errors.New("corrupt store meta record")
	errCorruptValue = errors.New("corrupt or undecryptable value")
)

// meta is the decoded plaintext meta record.
type meta struct {
	KDF     KDFParams
	Salt    [saltSize]byte
	Nonce   [nonceSize]byte
	Wrapped [keySize + tagSize]byte
}

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

// marshalMeta encodes m in the fixed 115-byte layout.
func marshalMeta(m *meta) []byte {
	b := make([]byte, metaSize)
	copy(b, metaMagic)
	binary.BigEndian.PutUint32(b[metaOffTime:], m.KDF.Time)
	binary.BigEndian.PutUint32(b[metaOffMemory:], m.KDF.MemoryKiB)
	b[metaOffThreads] = m.KDF.Threads
	copy(b[metaOffSalt:], m.Salt[:])
	copy(b[metaOffNonce:], m.Nonce[:])
	copy(b[metaOffWrapped:], m.Wrapped[:])
	return b
}

// parseMeta decodes a meta record. It never panics; it rejects anything that
// is not exactly a v1 record with KDF parameters in range.
func parseMeta(b []byte) (*meta, error) {
	if len(b) != metaSize {
		return nil, fmt.Errorf("%w: length %d, want %d", errCorruptMeta, len(b), metaSize)
	}
	if string(b[:len(metaMagic)]) != metaMagic {
		return nil, fmt.Errorf("%w: bad magic", errCorruptMeta)
	}
	m := &meta{KDF: KDFParams{
		Time:      binary.BigEndian.Uint32(b[metaOffTime:]),
		MemoryKiB: binary.BigEndian.Uint32(b[metaOffMemory:]),
		Threads:   b[metaOffThreads],
	}}
	if err := m.KDF.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptMeta, err)
	}
	copy(m.Salt[:], b[metaOffSalt:])
	copy(m.Nonce[:], b[metaOffNonce:])
	copy(m.Wrapped[:], b[metaOffWrapped:])
	return m, nil
}

// deriveKEK derives the key-encryption key from the passphrase.
func deriveKEK(passphrase, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, keySize)
}

// newMeta builds the meta record wrapping dek under kek with explicit salt
// and nonce (deterministic, for test vectors).
func newMeta(kek, dek []byte, p KDFParams, salt [saltSize]byte, nonce [nonceSize]byte) (*meta, error) {
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	m := &meta{KDF: p, Salt: salt, Nonce: nonce}
	ad := marshalMeta(m)[:metaADLen]
	ct := aead.Seal(nil, nonce[:], dek, ad)
	copy(m.Wrapped[:], ct)
	return m, nil
}

// unwrapDEK opens the wrapped data key. Any failure means the passphrase
// (or the record) is wrong.
func unwrapDEK(kek []byte, m *meta) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	ad := marshalMeta(m)[:metaADLen]
	dek, err := aead.Open(nil, m.Nonce[:], m.Wrapped[:], ad)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return dek, nil
}

// subkeys derives the value-sealing key and the key-hashing key from the DEK.
func subkeys(dek []byte) (seal, index []byte, err error) {
	seal, err = hkdf.Key(sha256.New, dek, nil, sealInfo, keySize)
	if err != nil {
		return nil, nil, err
	}
	index, err = hkdf.Key(sha256.New, dek, nil, indexInfo, keySize)
	if err != nil {
		return nil, nil, err
	}
	return seal, index, nil
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

// hash returns hashKey(indexKey, collection, key), freshly allocated.
func (kh *keyHasher) hash(collection string, key []byte) []byte {
	st := kh.pool.Get().(*keyHashState)
	st.mac.Reset()
	st.buf = append(append(append(st.buf[:0], collection...), 0), key...)
	st.mac.Write(st.buf)
	out := make([]byte, hkeySize)
	copy(out, st.mac.Sum(st.sum[:0]))
	if cap(st.buf) <= maxPooledKeyBuf {
		kh.pool.Put(st)
	}
	return out
}

// valueAD returns collection || 0x00 || hkey || be64(expiry).
func valueAD(collection string, hkey []byte, exp uint64) []byte {
	ad := make([]byte, 0, len(collection)+1+len(hkey)+8)
	ad = append(ad, collection...)
	ad = append(ad, 0)
	ad = append(ad, hkey...)
	return binary.BigEndian.AppendUint64(ad, exp)
}

// sealValue returns be64(exp) || nonce || XChaCha20-Poly1305(seal, nonce, value, AD).
func sealValue(aead cipherAEAD, collection string, hkey []byte, exp uint64, nonce []byte, value []byte) []byte {
	out := make([]byte, 8, valueOverhead+len(value))
	binary.BigEndian.PutUint64(out, exp)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, value, valueAD(collection, hkey, exp))
}

// storedExpiry reads the plaintext expiry prefix of a stored value.
func storedExpiry(stored []byte) (uint64, bool) {
	if len(stored) < valueOverhead {
		return 0, false
	}
	return binary.BigEndian.Uint64(stored), true
}

// openValue authenticates and decrypts a stored value. The returned slice is
// freshly allocated. It never panics on malformed input.
func openValue(aead cipherAEAD, collection string, hkey []byte, stored []byte) ([]byte, uint64, error) {
	exp, ok := storedExpiry(stored)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short", errCorruptValue, len(stored))
	}
	nonce := stored[8 : 8+nonceSize]
	pt, err := aead.Open(nil, nonce, stored[8+nonceSize:], valueAD(collection, hkey, exp))
	if err != nil {
		return nil, 0, errCorruptValue
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, exp, nil
}

// cipherAEAD is the subset of cipher.AEAD used here.
type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}
