package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Tx is one store transaction. It is only valid inside the Update or View
// callback that received it. Expiry decisions inside a Tx use the clock
// reading taken when the transaction began.
type Tx struct {
	tx  kvTx
	s   *Store
	now uint64 // Unix seconds
}

func checkCollection(c string) error {
	switch {
	case c == "":
		return errors.New("empty collection name")
	case len(c) > maxCollectionLen:
		return fmt.Errorf("collection name longer than %d bytes", maxCollectionLen)
	case c == bucketMeta || c == bucketExpiry:
		return fmt.Errorf("collection name %q is reserved", c)
	case bytes.IndexByte([]byte(c), 0) >= 0:
		return fmt.Errorf("collection name %q contains NUL", c)
	}
	return nil
}

func expirySeconds(t time.Time) (uint64, error) {
	u := t.Unix()
	if u <= 0 {
		return 0, fmt.Errorf("expiry %v is not after the Unix epoch (use store.Forever for items that never expire)", t)
	}
	return uint64(u), nil
}

func expiryTime(sec uint64) time.Time {
	return time.Unix(int64(sec), 0).UTC()
}

func indexKey(exp uint64, hkey []byte, collection string) []byte {
	k := make([]byte, 0, 8+hkeySize+len(collection))
	k = binary.BigEndian.AppendUint64(k, exp)
	k = append(k, hkey...)
	return append(k, collection...)
}

// Put inserts or overwrites the item key in collection, sealed, with the
// given expiry (whole seconds; sub-second parts are truncated). An expiry at
// or before Now() stores an item that is already invisible.
func (tx *Tx) Put(collection string, key, value []byte, expires time.Time) error {
	if err := checkCollection(collection); err != nil {
		return fmt.Errorf("failed to put item: %w", err)
	}
	exp, err := expirySeconds(expires)
	if err != nil {
		return fmt.Errorf("failed to put item in %q: %w", collection, err)
	}
	b, err := tx.tx.CreateBucketIfNotExists(collection)
	if err != nil {
		return fmt.Errorf("failed to create collection %q: %w", collection, err)
	}
	ib, err := tx.tx.CreateBucketIfNotExists(bucketExpiry)
	if err != nil {
		return fmt.Errorf("failed to create expiry index: %w", err)
	}
	hk := tx.s.hasher.hash(collection, key)
	if old := b.Get(hk); old != nil {
		if oldExp, ok := storedExpiry(old); ok {
			if err := ib.Delete(indexKey(oldExp, hk, collection)); err != nil {
				return fmt.Errorf("failed to update expiry index for %q: %w", collection, err)
			}
		}
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("failed to generate nonce: %w", err)
	}
	sealed := sealValue(tx.s.seal, collection, hk, exp, nonce, value)
	if err := b.Put(hk, sealed); err != nil {
		return fmt.Errorf("failed to put item in %q: %w", collection, err)
	}
	if err := ib.Put(indexKey(exp, hk, collection), nil); err != nil {
		return fmt.Errorf("failed to update expiry index for %q: %w", collection, err)
	}
	return nil
}

// Get returns a fresh copy of the value stored under key and its expiry.
// ok is false if the item is absent or expired.
func (tx *Tx) Get(collection string, key []byte) (value []byte, expires time.Time, ok bool, err error) {
	if err := checkCollection(collection); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("failed to get item: %w", err)
	}
	b := tx.tx.Bucket(collection)
	if b == nil {
		return nil, time.Time{}, false, nil
	}
	hk := tx.s.hasher.hash(collection, key)
	stored := b.Get(hk)
	if stored == nil {
		return nil, time.Time{}, false, nil
	}
	exp, good := storedExpiry(stored)
	if good && exp <= tx.now {
		return nil, time.Time{}, false, nil
	}
	v, exp, err := openValue(tx.s.seal, collection, hk, stored)
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("failed to read item in collection %q: %w", collection, err)
	}
	return v, expiryTime(exp), true, nil
}

// Has reports whether a live (unexpired) item is stored under key. It does
// not decrypt the value.
func (tx *Tx) Has(collection string, key []byte) (bool, error) {
	if err := checkCollection(collection); err != nil {
		return false, fmt.Errorf("failed to look up item: %w", err)
	}
	b := tx.tx.Bucket(collection)
	if b == nil {
		return false, nil
	}
	stored := b.Get(tx.s.hasher.hash(collection, key))
	if stored == nil {
		return false, nil
	}
	exp, good := storedExpiry(stored)
	if !good {
		return false, fmt.Errorf("failed to look up item in collection %q: %w", collection, errCorruptValue)
	}
	return exp > tx.now, nil
}

// Delete removes the item stored under key, if any (expired or not).
func (tx *Tx) Delete(collection string, key []byte) error {
	if err := checkCollection(collection); err != nil {
		return fmt.Errorf("failed to delete item: %w", err)
	}
	b := tx.tx.Bucket(collection)
	if b == nil {
		return nil
	}
	hk := tx.s.hasher.hash(collection, key)
	stored := b.Get(hk)
	if stored == nil {
		return nil
	}
	if exp, ok := storedExpiry(stored); ok {
		if ib := tx.tx.Bucket(bucketExpiry); ib != nil {
			if err := ib.Delete(indexKey(exp, hk, collection)); err != nil {
				return fmt.Errorf("failed to delete item from %q: %w", collection, err)
			}
		}
	}
	if err := b.Delete(hk); err != nil {
		return fmt.Errorf("failed to delete item from %q: %w", collection, err)
	}
	return nil
}

// ForEach calls fn with a fresh copy of every live item in collection, in an
// unspecified (but stable) order. All values are decrypted before the first
// call, so fn may modify the collection. A corrupt value aborts with an
// error before fn is called; an error from fn stops the iteration and is
// returned as is.
func (tx *Tx) ForEach(collection string, fn func(value []byte, expires time.Time) error) error {
	if err := checkCollection(collection); err != nil {
		return fmt.Errorf("failed to iterate collection: %w", err)
	}
	b := tx.tx.Bucket(collection)
	if b == nil {
		return nil
	}
	type item struct {
		v   []byte
		exp uint64
	}
	var items []item
	c := b.Cursor()
	for k, stored := c.First(); k != nil; k, stored = c.Next() {
		if stored == nil {
			continue // nested bucket: never created by this package
		}
		if exp, ok := storedExpiry(stored); ok && exp <= tx.now {
			continue
		}
		v, exp, err := openValue(tx.s.seal, collection, k, stored)
		if err != nil {
			return fmt.Errorf("failed to read item in collection %q: %w", collection, err)
		}
		items = append(items, item{v, exp})
	}
	for _, it := range items {
		if err := fn(it.v, expiryTime(it.exp)); err != nil {
			return err
		}
	}
	return nil
}

// Count returns the number of live items in collection.
func (tx *Tx) Count(collection string) (int, error) {
	if err := checkCollection(collection); err != nil {
		return 0, fmt.Errorf("failed to count collection: %w", err)
	}
	b := tx.tx.Bucket(collection)
	if b == nil {
		return 0, nil
	}
	n := 0
	c := b.Cursor()
	for k, stored := c.First(); k != nil; k, stored = c.Next() {
		if stored == nil {
			continue
		}
		exp, ok := storedExpiry(stored)
		if !ok {
			return 0, fmt.Errorf("failed to count collection %q: %w", collection, errCorruptValue)
		}
		if exp > tx.now {
			n++
		}
	}
	return n, nil
}

// sweep deletes every item whose expiry is <= tx.now using the expiry index.
// anyDue reports whether the expiry index holds an entry due now (or a
// malformed one, which sweep drops).
func (tx *Tx) anyDue() bool {
	ib := tx.tx.Bucket(bucketExpiry)
	if ib == nil {
		return false
	}
	k, _ := ib.Cursor().First()
	return k != nil && (len(k) < 8+hkeySize || binary.BigEndian.Uint64(k) <= tx.now)
}

func (tx *Tx) sweep() (int, error) {
	ib := tx.tx.Bucket(bucketExpiry)
	if ib == nil {
		return 0, nil
	}
	var due [][]byte
	c := ib.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) < 8+hkeySize {
			// Malformed index entry: drop it.
			due = append(due, append([]byte(nil), k...))
			continue
		}
		if binary.BigEndian.Uint64(k) > tx.now {
			break
		}
		due = append(due, append([]byte(nil), k...))
	}
	removed := 0
	for _, k := range due {
		if len(k) > 8+hkeySize {
			exp := binary.BigEndian.Uint64(k)
			hk := k[8 : 8+hkeySize]
			coll := k[8+hkeySize:]
			if b := tx.tx.Bucket(string(coll)); b != nil && string(coll) != bucketMeta && string(coll) != bucketExpiry {
				// Only delete the item if it still carries this expiry.
				if stored := b.Get(hk); stored != nil {
					if e, ok := storedExpiry(stored); !ok || e == exp {
						if err := b.Delete(hk); err != nil {
							return removed, fmt.Errorf("failed to delete expired item from %q: %w", coll, err)
						}
						removed++
					}
				}
			}
		}
		if err := ib.Delete(k); err != nil {
			return removed, fmt.Errorf("failed to delete expiry index entry: %w", err)
		}
	}
	return removed, nil
}
