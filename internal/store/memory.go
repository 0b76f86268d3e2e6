package store

import (
	"crypto/rand"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// CreateMemory makes a store held only in memory, for the simulator and for
// tests: no file, no passphrase, no KDF, a fresh random data key. Keys are
// still hashed, all items kept in one bucket, by the same code as a file
// store, so a node behaves the same on either. But values are not
// encrypted: sealing protects a store at rest, and nothing a memory store
// holds ever rests anywhere but in the memory of the process that holds its
// keys; a simulator running a thousand nodes would spend a tenth of its
// time encrypting and decrypting. A value is kept as its plaintext, without
// padding, clear expiry, nonce or tag (keepItem): 224 bytes with its hkey
// for a 182-byte envelope instead of 320, 363 heap bytes an item instead of
// 459 (BenchmarkMemoryHeapPerItem); it is counted as the sealed value would
// be (keptSize). There is no key file: Options.Erasable is ignored, since
// nothing outlives Close. opts.KDF and opts.LockTimeout are ignored too.
// Sweep removes an item at its exact expiry rather than up to two days
// later: there is no disk to hide expiries from. And it has no expiry index: the
// directory holds every item's exact expiry already, and Sweep works from
// it (sweepExact), which saves an index entry and its tree slot an item —
// 178 of the 328 bytes an item cost beyond its value (BenchmarkMemoryHeapPerItem).
//
// FileSize reports the bytes of keys and values a file store would hold for
// the same items (there is no file): sealed values, and an index entry an
// item. ReleaseMemory does nothing.
func CreateMemory(opts Options) (*Store, error) {
	dek := make([]byte, keySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("failed to generate store keys: %w", err)
	}
	opts.Erasable = nil
	s, _, err := newStore(dek, opts)
	if err != nil {
		return nil, err
	}
	clear(s.dek)
	s.dek = nil
	clear(s.sealKey)
	s.seal, s.sealKey = nil, nil
	s.memory = true
	db := newMemDB()
	db.indexEntry = 8 + hkeySize
	db.valueSize = keptSize
	// The items bucket of a new file store: no meta record (there is no key
	// file to match), no expiry index.
	if err := db.update(func(tx kvTx) error {
		_, err := tx.CreateBucket(bucketItems)
		return err
	}); err != nil {
		return nil, fmt.Errorf("failed to create memory store: %w", err)
	}
	s.db = db
	return s, nil
}

// memDB is the in-memory backend: one memTree per bucket. Like bbolt it
// allows many readers or one writer at a time. A read-write transaction
// applies its changes as it goes and logs how to undo each one; rollback
// replays the log backwards.
type memDB struct {
	mu sync.RWMutex
	// buckets is only ever looked up by name, never iterated, so Go's map
	// order cannot leak into anything. nil once closed.
	buckets map[string]*memTree
	// undo is the undo log's storage, lent to one write transaction at a
	// time, so that a small transaction does not regrow it from nothing.
	undo []memUndo
	// indexEntry is what size counts for each item for the expiry index
	// entry a file store would hold (a store's memDB has none).
	indexEntry int64
	// valueSize is what size counts for a value of n bytes (memTree); nil
	// counts n. A store's memDB counts a value as the sealed one it
	// stands for (keptSize).
	valueSize func(n int) int
}

func newMemDB() *memDB {
	return &memDB{buckets: make(map[string]*memTree)}
}

func (d *memDB) update(fn func(kvTx) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buckets == nil {
		return bolterrors.ErrDatabaseNotOpen
	}
	tx := &memTx{db: d, writable: true, undo: d.undo[:0]}
	committed := false
	defer func() {
		// Also runs when fn panics, before the lock is released.
		if !committed {
			tx.rollback()
		}
		tx.closed = true
		if cap(tx.undo) <= maxKeptUndo {
			clear(tx.undo) // let go of the keys and values it points to
			d.undo = tx.undo[:0]
		}
		tx.undo = nil
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	return nil
}

func (d *memDB) view(fn func(kvTx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.buckets == nil {
		return bolterrors.ErrDatabaseNotOpen
	}
	tx := &memTx{db: d}
	defer func() { tx.closed = true }()
	return fn(tx)
}

// size is the total length of the keys and values in every bucket (values
// as valueSize counts them), plus indexEntry for each item. The sum does not depend on the map's iteration
// order.
func (d *memDB) size() (int64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var n int64
	for _, t := range d.buckets {
		n += t.bytes
	}
	if items := d.buckets[bucketItems]; items != nil {
		n += int64(items.n) * d.indexEntry
	}
	return n, nil
}

// releaseMemory does nothing: there are no mapped file pages to give back.
func (d *memDB) releaseMemory() {}

// close drops every bucket, leaving them to the garbage collector.
func (d *memDB) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buckets = nil
	return nil
}

// memTx is one transaction. undo lists the changes of a read-write
// transaction, oldest first.
type memTx struct {
	db       *memDB
	writable bool
	closed   bool
	undo     []memUndo
}

// memUndo reverses one change: either the creation of bucket name, or a
// put or delete of key in tree, which held val before if existed.
type memUndo struct {
	name    string // non-empty: drop this newly created bucket
	tree    *memTree
	key     []byte
	val     []byte
	existed bool
}

func (tx *memTx) rollback() {
	for i := len(tx.undo) - 1; i >= 0; i-- {
		u := tx.undo[i]
		switch {
		case u.name != "":
			delete(tx.db.buckets, u.name)
		case u.existed:
			u.tree.put(u.key, u.val)
		default:
			u.tree.delete(u.key)
		}
	}
}

// checkWrite returns the error bbolt gives for a write it refuses.
func (tx *memTx) checkWrite() error {
	switch {
	case tx.closed:
		return bolterrors.ErrTxClosed
	case !tx.writable:
		return bolterrors.ErrTxNotWritable
	}
	return nil
}

func (tx *memTx) Bucket(name string) kvBucket {
	if tx.closed {
		return nil
	}
	t := tx.db.buckets[name]
	if t == nil {
		return nil
	}
	return &memBucket{tx: tx, tree: t}
}

func (tx *memTx) CreateBucket(name string) (kvBucket, error) {
	if err := tx.checkWrite(); err != nil {
		return nil, err
	}
	if len(name) == 0 {
		return nil, bolterrors.ErrBucketNameRequired
	}
	if tx.db.buckets[name] != nil {
		return nil, bolterrors.ErrBucketExists
	}
	return tx.create(name), nil
}

func (tx *memTx) CreateBucketIfNotExists(name string) (kvBucket, error) {
	if err := tx.checkWrite(); err != nil {
		return nil, err
	}
	if len(name) == 0 {
		return nil, bolterrors.ErrBucketNameRequired
	}
	if t := tx.db.buckets[name]; t != nil {
		return &memBucket{tx: tx, tree: t}, nil
	}
	return tx.create(name), nil
}

func (tx *memTx) create(name string) *memBucket {
	t := &memTree{valueSize: tx.db.valueSize}
	tx.db.buckets[name] = t
	tx.undo = append(tx.undo, memUndo{name: name})
	return &memBucket{tx: tx, tree: t}
}

// memBucket is a bucket as seen from one transaction, which decides whether
// it may be written.
type memBucket struct {
	tx   *memTx
	tree *memTree
}

func (b *memBucket) Get(key []byte) []byte {
	if b.tx.closed {
		return nil
	}
	v, _ := b.tree.find(key)
	return v
}

// Put copies key and value, as bbolt does, so the caller may reuse them.
func (b *memBucket) Put(key, value []byte) error {
	if err := b.checkPut(key, value); err != nil {
		return err
	}
	// One allocation for both; the value is never nil, so that Get tells
	// an empty value from an absent key.
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	b.put(buf[:len(key):len(key)], buf[len(key):])
	return nil
}

// putOwned is Put for a key and a value the caller gives up and never
// changes again, kept as they are rather than copied (the store's own
// writes: a value is made fresh for each Put). It returns the value it
// replaced, nil if none.
func (b *memBucket) putOwned(key, value []byte) (old []byte, err error) {
	if err := b.checkPut(key, value); err != nil {
		return nil, err
	}
	if value == nil {
		value = []byte{}
	}
	return b.put(key[:len(key):len(key)], value), nil
}

// checkPut returns the error bbolt gives for a Put it refuses.
func (b *memBucket) checkPut(key, value []byte) error {
	if err := b.tx.checkWrite(); err != nil {
		return err
	}
	switch {
	case len(key) == 0:
		return bolterrors.ErrKeyRequired
	case len(key) > bolt.MaxKeySize:
		return bolterrors.ErrKeyTooLarge
	case len(value) > bolt.MaxValueSize:
		return bolterrors.ErrValueTooLarge
	}
	return nil
}

func (b *memBucket) put(key, value []byte) (old []byte) {
	oldKey, old, existed := b.tree.put(key, value)
	if !existed {
		oldKey = key // what the undo deletes
	}
	b.tx.undo = append(b.tx.undo, memUndo{tree: b.tree, key: oldKey, val: old, existed: existed})
	return old
}

func (b *memBucket) Delete(key []byte) error {
	if err := b.tx.checkWrite(); err != nil {
		return err
	}
	if k, v, ok := b.tree.delete(key); ok {
		b.tx.undo = append(b.tx.undo, memUndo{tree: b.tree, key: k, val: v, existed: true})
	}
	return nil
}

func (b *memBucket) Cursor() kvCursor {
	if b.tx.closed {
		return &memCursor{tree: &memTree{}}
	}
	return &memCursor{tree: b.tree}
}
