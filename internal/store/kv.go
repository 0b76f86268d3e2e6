package store

import (
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
	return wrap(name, b)
}

func (t *boltTx) CreateBucket(name string) (kvBucket, error) {
	b, err := (*bolt.Tx)(t).CreateBucket([]byte(name))
	if err != nil {
		return nil, err
	}
	return wrap(name, b), nil
}

func (t *boltTx) CreateBucketIfNotExists(name string) (kvBucket, error) {
	b, err := (*bolt.Tx)(t).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, err
	}
	return wrap(name, b), nil
}

// wrap adapts a top-level bucket: the items bucket keeps large values
// apart (boltItems), the others are bbolt's as they are.
func wrap(name string, b *bolt.Bucket) kvBucket {
	if name == bucketItems {
		return (*boltItems)(b)
	}
	return (*boltBucket)(b)
}

func (b *boltBucket) Get(key []byte) []byte       { return (*bolt.Bucket)(b).Get(key) }
func (b *boltBucket) Put(key, value []byte) error { return (*bolt.Bucket)(b).Put(key, value) }
func (b *boltBucket) Delete(key []byte) error     { return (*bolt.Bucket)(b).Delete(key) }
func (b *boltBucket) Cursor() kvCursor            { return (*boltCursor)((*bolt.Bucket)(b).Cursor()) }

func (c *boltCursor) First() ([]byte, []byte) { return (*bolt.Cursor)(c).First() }
func (c *boltCursor) Next() ([]byte, []byte)  { return (*bolt.Cursor)(c).Next() }

// LargeValue is the size from which a stored item is kept in a bucket of
// its own, under its key in the items bucket, holding the one pair key →
// value (SPEC §7, "Database"). bbolt stores values inside leaf pages and
// never splits a leaf of four elements or fewer, so 32 KiB values (a
// file's chunks) share leaves two to four at a time, and adding one
// rewrites its neighbours whole: 5,000 of them added a hundred per
// transaction made 3.8 times their size in writes, and 1.2 times in
// buckets of their own. Smaller values stay in the shared leaves.
const LargeValue = 16 << 10

// largeFrom is LargeValue; BenchmarkLargeValues sets it out of reach to
// measure the layout before it, side by side.
var largeFrom = LargeValue

// boltItems is the items bucket: a value of LargeValue bytes or more lives
// in a nested bucket of its own, under the same key, and is read, replaced,
// deleted and iterated as if it were stored in place. No value stored in
// place is empty, so a nil value from bbolt means a nested bucket.
type boltItems bolt.Bucket

func (b *boltItems) Get(key []byte) []byte {
	bb := (*bolt.Bucket)(b)
	if v := bb.Get(key); v != nil {
		return v
	}
	if nb := bb.Bucket(key); nb != nil {
		return nb.Get(key)
	}
	return nil
}

func (b *boltItems) Put(key, value []byte) error {
	bb := (*bolt.Bucket)(b)
	if len(value) < largeFrom {
		err := bb.Put(key, value)
		if errors.Is(err, berrors.ErrIncompatibleValue) { // a large value was there
			if err := bb.DeleteBucket(key); err != nil {
				return err
			}
			return bb.Put(key, value)
		}
		return err
	}
	nb := bb.Bucket(key)
	if nb == nil {
		if err := bb.Delete(key); err != nil { // a smaller value stored in place
			return err
		}
		var err error
		if nb, err = bb.CreateBucket(key); err != nil {
			return err
		}
	}
	return nb.Put(key, value)
}

func (b *boltItems) Delete(key []byte) error {
	bb := (*bolt.Bucket)(b)
	err := bb.Delete(key)
	if errors.Is(err, berrors.ErrIncompatibleValue) {
		return bb.DeleteBucket(key)
	}
	return err
}

func (b *boltItems) Cursor() kvCursor { return (*boltItemsCursor)((*bolt.Bucket)(b).Cursor()) }

// boltItemsCursor walks the items bucket, reading a large value from its
// nested bucket.
type boltItemsCursor bolt.Cursor

func (c *boltItemsCursor) First() ([]byte, []byte) { return c.value((*bolt.Cursor)(c).First()) }
func (c *boltItemsCursor) Next() ([]byte, []byte)  { return c.value((*bolt.Cursor)(c).Next()) }

func (c *boltItemsCursor) value(k, v []byte) ([]byte, []byte) {
	if k != nil && v == nil {
		if nb := (*bolt.Cursor)(c).Bucket().Bucket(k); nb != nil {
			v = nb.Get(k)
		}
	}
	return k, v
}
