package store

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// The Tx code talks to its backend through the small interfaces below, so
// that the same sealing, key hashing and expiry index run on the bbolt file
// and on the in-memory tree (memory.go). They are the subset of bbolt the
// store uses, with bbolt's semantics: keys iterate in bytewise order, Get
// returns nil for an absent key, returned slices are only valid for the
// life of the transaction and must not be modified, writes in a read-only
// transaction fail.

// kvDB is a backend: a set of named buckets with transactions over them.
type kvDB interface {
	// update runs fn in a read-write transaction that is committed if fn
	// returns nil and rolled back otherwise (or if fn panics).
	update(fn func(kvTx) error) error
	// view runs fn in a read-only transaction.
	view(fn func(kvTx) error) error
	// size is what Store.FileSize reports.
	size() (int64, error)
	// releaseMemory is what Store.ReleaseMemory does.
	releaseMemory()
	close() error
}

// kvTx is one transaction's view of the top-level buckets.
type kvTx interface {
	// Bucket returns the named bucket, or a nil kvBucket if it is absent.
	// Names are strings, not slices: a slice passed through an interface
	// escapes, so every collection name would be copied to the heap.
	Bucket(name string) kvBucket
	CreateBucket(name string) (kvBucket, error)
	CreateBucketIfNotExists(name string) (kvBucket, error)
}

// kvBucket is an ordered map from non-empty keys to values.
type kvBucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() kvCursor
}

// kvCursor walks a bucket in key order. A nil key means the end.
type kvCursor interface {
	First() (key, value []byte)
	Next() (key, value []byte)
}

// boltDB is the file backend. The adapter types below are the bbolt types
// themselves under another name, so wrapping costs no allocation: a pointer
// converts to an interface as is.
type boltDB struct {
	db   *bolt.DB
	path string
}

type (
	boltTx     bolt.Tx
	boltBucket bolt.Bucket
	boltCursor bolt.Cursor
)

// update and view run bbolt under guard: a damaged page is an error naming
// the file, never a panic.
func (d *boltDB) update(fn func(kvTx) error) error {
	return guard(d.path, func() error {
		return d.db.Update(func(tx *bolt.Tx) error { return fn((*boltTx)(tx)) })
	})
}

func (d *boltDB) view(fn func(kvTx) error) error {
	return guard(d.path, func() error {
		return d.db.View(func(tx *bolt.Tx) error { return fn((*boltTx)(tx)) })
	})
}

func (d *boltDB) size() (int64, error) {
	fi, err := os.Stat(d.path)
	if err != nil {
		return 0, fmt.Errorf("failed to stat store file: %w", err)
	}
	return fi.Size(), nil
}

func (d *boltDB) close() error { return d.db.Close() }

func (t *boltTx) Bucket(name string) kvBucket {
	b := (*bolt.Tx)(t).Bucket([]byte(name))
	if b == nil {
		// A nil *boltBucket in an interface would not compare equal to nil.
		return nil
	}
	return (*boltBucket)(b)
}

func (t *boltTx) CreateBucket(name string) (kvBucket, error) {
	b, err := (*bolt.Tx)(t).CreateBucket([]byte(name))
	if err != nil {
		return nil, err
	}
	return (*boltBucket)(b), nil
}

func (t *boltTx) CreateBucketIfNotExists(name string) (kvBucket, error) {
	b, err := (*bolt.Tx)(t).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, err
	}
	return (*boltBucket)(b), nil
}

func (b *boltBucket) Get(key []byte) []byte       { return (*bolt.Bucket)(b).Get(key) }
func (b *boltBucket) Put(key, value []byte) error { return (*bolt.Bucket)(b).Put(key, value) }
func (b *boltBucket) Delete(key []byte) error     { return (*bolt.Bucket)(b).Delete(key) }
func (b *boltBucket) Cursor() kvCursor            { return (*boltCursor)((*bolt.Bucket)(b).Cursor()) }

func (c *boltCursor) First() ([]byte, []byte) { return (*bolt.Cursor)(c).First() }
func (c *boltCursor) Next() ([]byte, []byte)  { return (*bolt.Cursor)(c).Next() }
