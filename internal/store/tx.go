package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/crypto/chacha20poly1305"
)

// Tx is one store transaction. It is only valid inside the Update or View
// callback that received it. Expiry decisions inside a Tx use the clock
// reading taken when the transaction began.
type Tx struct {
	tx       kvTx
	items    kvBucket // nil until buckets is called
	index    kvBucket
	s        *Store
	now      uint64 // Unix seconds
	writable bool
	done     bool      // the callback has returned
	undo     []dirUndo // directory changes, oldest first
	// pend holds this transaction's changes to the erasure table, by hkey;
	// nil until an erasable item is touched.
	pend map[hkey]pendKey
	// touched names the collections this transaction put or deleted items
	// in, so a caller keeping a summary of a collection knows when to
	// redo it (Touched). A transaction touches a few: a list, not a map,
	// which would cost an allocation per write transaction.
	touched    []string
	touchedBuf [4]string
}

// touch records a write to collection (Touched).
func (tx *Tx) touch(collection string) {
	if !tx.Touched(collection) {
		if tx.touched == nil {
			tx.touched = tx.touchedBuf[:0]
		}
		tx.touched = append(tx.touched, collection)
	}
}

// Touched reports whether this transaction put or deleted an item of
// collection so far (whether or not the item existed or changed).
func (tx *Tx) Touched(collection string) bool { return slices.Contains(tx.touched, collection) }

// pendKey is an item key a transaction gives an item, or (drop) the
// removal of its key.
type pendKey struct {
	key  [keySize]byte
	drop bool
}

var errTxDone = errors.New("transaction used after its callback returned")

func checkCollection(c string) error {
	switch {
	case c == "":
		return errors.New("empty collection name")
	case len(c) > maxCollectionLen:
		return fmt.Errorf("collection name longer than %d bytes", maxCollectionLen)
	case bytes.IndexByte([]byte(c), 0) >= 0:
		return fmt.Errorf("collection name %q contains NUL", c)
	}
	return nil
}

func (tx *Tx) check(collection string) error {
	if tx.done {
		return errTxDone
	}
	return checkCollection(collection)
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

// indexKey is an expiry index entry: be64(coarse expiry) || hkey.
func indexKey(coarse uint64, hk []byte) []byte {
	k := make([]byte, 8, 8+hkeySize)
	binary.BigEndian.PutUint64(k, coarse)
	return append(k, hk...)
}

// buckets returns the items and expiry buckets, which Create made; a memory
// store has no expiry bucket (index is nil). The transaction keeps them:
// looking a bucket up allocates.
func (tx *Tx) buckets() (items, index kvBucket, err error) {
	if tx.items == nil {
		tx.items = tx.tx.Bucket(bucketItems)
		if !tx.s.memory {
			tx.index = tx.tx.Bucket(bucketExpiry)
		}
		if tx.items == nil || (tx.index == nil && !tx.s.memory) {
			tx.items, tx.index = nil, nil
			return nil, nil, errors.New("corrupt store: a bucket is missing")
		}
	}
	return tx.items, tx.index, nil
}

// Put inserts or overwrites the item key in collection, sealed, with the
// given expiry (whole seconds; sub-second parts are truncated). An expiry at
// or before Now() stores an item that is already invisible.
func (tx *Tx) Put(collection string, key, value []byte, expires time.Time) error {
	if err := tx.check(collection); err != nil {
		return fmt.Errorf("failed to put item: %w", err)
	}
	tx.touch(collection)
	exact, err := expirySeconds(expires)
	if err != nil {
		return fmt.Errorf("failed to put item in %q: %w", collection, err)
	}
	switch {
	case !tx.writable:
		return fmt.Errorf("failed to put item in %q: %w", collection, bolterrors.ErrTxNotWritable)
	case len(value) > maxValueLen:
		return fmt.Errorf("failed to put item in %q: value of %d bytes is too large", collection, len(value))
	}
	items, index, err := tx.buckets()
	if err != nil {
		return fmt.Errorf("failed to put item in %q: %w", collection, err)
	}
	hk := tx.s.hasher.hash(collection, key)
	if tx.s.memory {
		if err := putKept(items, keepItem(hk[:], exact, collection, value)); err != nil {
			return fmt.Errorf("failed to put item in %q: %w", collection, err)
		}
	} else if err := tx.putSealed(items, index, collection, hk, exact, value); err != nil {
		return err
	}
	d := &tx.s.dir
	tx.undo = append(tx.undo, d.set(d.coll(collection, true), hk, exact))
	return nil
}

// putSealed seals the item hk and stores it, and moves its expiry index
// entry.
func (tx *Tx) putSealed(items, index kvBucket, collection string, hk hkey, exact uint64, value []byte) error {
	aead, err := tx.sealFor(collection, hk)
	if err != nil {
		return fmt.Errorf("failed to put item in %q: %w", collection, err)
	}
	var rnd [nonceSize + 8]byte
	if err := nonceAndJitter(&rnd); err != nil {
		return err
	}
	coarse := coarseExpiry(exact, tx.now, binary.BigEndian.Uint64(rnd[nonceSize:]))
	sealed := sealItem(aead, hk[:], coarse, exact, collection, rnd[:nonceSize], value)
	// The old value is read before the Put, which may move it.
	was, replaced := storedCoarse(items.Get(hk[:]))
	if err := items.Put(hk[:], sealed); err != nil {
		return fmt.Errorf("failed to put item in %q: %w", collection, err)
	}
	if err := updateIndex(index, hk, was, replaced, coarse); err != nil {
		return fmt.Errorf("failed to update expiry index for %q: %w", collection, err)
	}
	return nil
}

// putKept stores the value keepItem made, which the caller gives up, in a
// memory store's items bucket, keeping the hkey that follows it as its key
// rather than copying either.
func putKept(items kvBucket, kept []byte) error {
	mb, ok := items.(*memBucket)
	if !ok {
		return errors.New("values kept in plain outside a memory store")
	}
	n := len(kept)
	_, err := mb.putOwned(kept[n:n+hkeySize], kept[:n:n])
	return err
}

// updateIndex moves the expiry index entry of hk from was (if replaced) to
// coarse. A memory store has no index (nil).
func updateIndex(index kvBucket, hk hkey, was uint64, replaced bool, coarse uint64) error {
	if index == nil {
		return nil
	}
	if replaced && was != coarse { // an entry with the same expiry is put again below
		if err := index.Delete(indexKey(was, hk[:])); err != nil {
			return err
		}
	}
	return index.Put(indexKey(coarse, hk[:]), nil)
}

// sealFor returns the cipher for a new value of hk in collection, and
// records the change to the erasure table it implies: an erasable item
// gets a fresh key, or its old key's successor (nextItemKey), or the key
// this transaction gave it already; an item that is no longer erasable
// loses its key.
func (tx *Tx) sealFor(collection string, hk hkey) (cipherAEAD, error) {
	s := tx.s
	if s.keys == nil {
		return s.seal, nil // a memory store
	}
	p, pending := tx.pend[hk]
	cur, inTable := s.keys[hk]
	if !s.erasable[collection] {
		if (pending && !p.drop) || (!pending && inTable) {
			tx.setPend(hk, pendKey{drop: true})
		}
		return s.seal, nil
	}
	var k [keySize]byte
	switch {
	case pending && !p.drop:
		k = p.key
	case inTable:
		k = nextItemKey(cur)
	default:
		if _, err := rand.Read(k[:]); err != nil {
			return nil, fmt.Errorf("failed to generate item key: %w", err)
		}
	}
	tx.setPend(hk, pendKey{key: k})
	return chacha20poly1305.NewX(k[:])
}

func (tx *Tx) setPend(hk hkey, p pendKey) {
	if tx.pend == nil {
		tx.pend = make(map[hkey]pendKey)
	}
	tx.pend[hk] = p
}

// openFor returns the cipher that opens the stored value of hk.
func (tx *Tx) openFor(hk hkey) (cipherAEAD, error) {
	if p, ok := tx.pend[hk]; ok {
		if p.drop {
			return tx.s.seal, nil
		}
		return chacha20poly1305.NewX(p.key[:])
	}
	if k, ok := tx.s.keys[hk]; ok {
		return chacha20poly1305.NewX(k[:])
	}
	return tx.s.seal, nil
}

// open authenticates and decrypts the stored value of hk, which must
// belong to collection.
func (tx *Tx) open(collection string, hk hkey, stored []byte) (itemPlain, error) {
	return tx.openShared(collection, hk, stored, false)
}

// openShared is open, but if shared, a memory store's value is returned
// where it lies rather than copied (see GetShared).
func (tx *Tx) openShared(collection string, hk hkey, stored []byte, shared bool) (itemPlain, error) {
	p, err := tx.decode(hk, stored, shared)
	if err != nil {
		return itemPlain{}, err
	}
	if string(p.collection) != collection {
		return itemPlain{}, fmt.Errorf("%w: stored for another collection", errCorruptValue)
	}
	return p, nil
}

// decode opens the stored value of hk: a memory store's, kept in plain,
// is returned where it lies if shared, and copied otherwise.
func (tx *Tx) decode(hk hkey, stored []byte, shared bool) (itemPlain, error) {
	if tx.s.memory {
		p, err := openKept(stored)
		if err == nil && !shared {
			p.value = bytes.Clone(p.value)
		}
		return p, err
	}
	aead, err := tx.openFor(hk)
	if err != nil {
		return itemPlain{}, err
	}
	return openItem(aead, hk[:], stored)
}

// Get returns a fresh copy of the value stored under key and its expiry.
// ok is false if the item is absent or expired.
func (tx *Tx) Get(collection string, key []byte) (value []byte, expires time.Time, ok bool, err error) {
	return tx.get(collection, key, false)
}

// GetShared is Get for a caller that only reads the value and never
// changes it: a memory store returns its stored value itself, which it
// never changes in place (a Put stores a new one), where Get copies it —
// most of what a simulated node reads is an envelope it forwards as it is.
// A file store decrypts into a fresh copy either way.
func (tx *Tx) GetShared(collection string, key []byte) (value []byte, expires time.Time, ok bool, err error) {
	return tx.get(collection, key, true)
}

func (tx *Tx) get(collection string, key []byte, shared bool) (value []byte, expires time.Time, ok bool, err error) {
	if err := tx.check(collection); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("failed to get item: %w", err)
	}
	hk := tx.s.hasher.hash(collection, key)
	items := tx.items
	if items == nil {
		// Only this bucket: looking one up allocates.
		if items = tx.tx.Bucket(bucketItems); items == nil {
			return nil, time.Time{}, false, errors.New("failed to get item: corrupt store: no items bucket")
		}
	}
	stored := items.Get(hk[:])
	if stored == nil {
		return nil, time.Time{}, false, nil
	}
	// The directory is consulted only now: most lookups of an absent key
	// then touch no map.
	if exp, known := tx.s.dir.colls[collection][hk]; known && exp <= tx.now {
		return nil, time.Time{}, false, nil // expired: no need to decrypt
	}
	p, err := tx.openShared(collection, hk, stored, shared)
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("failed to read item in collection %q: %w", collection, err)
	}
	if p.exact <= tx.now {
		return nil, time.Time{}, false, nil
	}
	return p.value, expiryTime(p.exact), true, nil
}

// Has reports whether a live (unexpired) item is stored under key. It
// consults the directory only, so it decrypts nothing.
func (tx *Tx) Has(collection string, key []byte) (bool, error) {
	if err := tx.check(collection); err != nil {
		return false, fmt.Errorf("failed to look up item: %w", err)
	}
	exp, ok := tx.s.dir.colls[collection][tx.s.hasher.hash(collection, key)]
	return ok && exp > tx.now, nil
}

// Delete removes the item stored under key, if any (expired or not).
func (tx *Tx) Delete(collection string, key []byte) error {
	if err := tx.check(collection); err != nil {
		return fmt.Errorf("failed to delete item: %w", err)
	}
	tx.touch(collection)
	if !tx.writable {
		return fmt.Errorf("failed to delete item from %q: %w", collection, bolterrors.ErrTxNotWritable)
	}
	items, index, err := tx.buckets()
	if err != nil {
		return fmt.Errorf("failed to delete item from %q: %w", collection, err)
	}
	hk := tx.s.hasher.hash(collection, key)
	if err := tx.remove(items, index, hk); err != nil {
		return fmt.Errorf("failed to delete item from %q: %w", collection, err)
	}
	if cd := tx.s.dir.coll(collection, false); cd != nil {
		if u, ok := tx.s.dir.remove(cd, hk); ok {
			tx.undo = append(tx.undo, u)
		}
	}
	return nil
}

// remove deletes the stored value of hk and its index entry (if the store
// has an index), and drops its item key, if it has one. The caller updates
// the directory.
func (tx *Tx) remove(items, index kvBucket, hk hkey) error {
	stored := items.Get(hk[:])
	if stored == nil {
		return nil
	}
	if c, ok := storedCoarse(stored); index != nil && ok {
		if err := index.Delete(indexKey(c, hk[:])); err != nil {
			return err
		}
	}
	if err := items.Delete(hk[:]); err != nil {
		return err
	}
	p, pending := tx.pend[hk]
	if _, inTable := tx.s.keys[hk]; inTable || (pending && !p.drop) {
		tx.setPend(hk, pendKey{drop: true})
	}
	return nil
}

// ForEach calls fn with a fresh copy of every live item in collection, in an
// unspecified (but stable) order. All values are decrypted before the first
// call, so fn may modify the collection. A corrupt value aborts with an
// error before fn is called; an error from fn stops the iteration and is
// returned as is.
func (tx *Tx) ForEach(collection string, fn func(value []byte, expires time.Time) error) error {
	if err := tx.check(collection); err != nil {
		return fmt.Errorf("failed to iterate collection: %w", err)
	}
	cd := tx.s.dir.coll(collection, false)
	if len(cd) == 0 {
		return nil
	}
	items, _, err := tx.buckets()
	if err != nil {
		return fmt.Errorf("failed to iterate collection %q: %w", collection, err)
	}
	var vals []itemPlain
	visit := func(hk hkey, stored []byte) error {
		p, err := tx.open(collection, hk, stored)
		if err != nil {
			return fmt.Errorf("failed to read item in collection %q: %w", collection, err)
		}
		vals = append(vals, p)
		return nil
	}
	if 4*len(cd) >= tx.s.dir.total {
		// Most items are in this collection: walk them all, in hkey order.
		c := items.Cursor()
		for k, stored := c.First(); k != nil; k, stored = c.Next() {
			if len(k) != hkeySize {
				continue
			}
			if exp, ok := cd[hkey(k)]; ok && exp > tx.now {
				if err := visit(hkey(k), stored); err != nil {
					return err
				}
			}
		}
	} else {
		for _, hk := range cd.live(tx.now) {
			stored := items.Get(hk[:])
			if stored == nil {
				return fmt.Errorf("failed to read item in collection %q: %w: missing", collection, errCorruptValue)
			}
			if err := visit(hk, stored); err != nil {
				return err
			}
		}
	}
	for _, p := range vals {
		if err := fn(p.value, expiryTime(p.exact)); err != nil {
			return err
		}
	}
	return nil
}

// Count returns the number of live items in collection.
func (tx *Tx) Count(collection string) (int, error) {
	if err := tx.check(collection); err != nil {
		return 0, fmt.Errorf("failed to count collection: %w", err)
	}
	n := 0
	for _, exp := range tx.s.dir.colls[collection] {
		if exp > tx.now {
			n++
		}
	}
	return n, nil
}

// anyDue reports whether the expiry index holds an entry due now (or a
// malformed one, which sweep drops); in a memory store, whether an item may
// have expired.
func (tx *Tx) anyDue() bool {
	if tx.s.memory {
		return tx.s.dir.nextDue <= tx.now
	}
	ib := tx.tx.Bucket(bucketExpiry)
	if ib == nil {
		return false
	}
	k, _ := ib.Cursor().First()
	return k != nil && (len(k) != 8+hkeySize || binary.BigEndian.Uint64(k) <= tx.now)
}

// sweep walks the expiry index from its first entry while the coarse
// expiry is <= now. An item whose exact expiry has passed is removed; one
// that lives on (its clear expiry was capped at the horizon) is sealed
// again with a new coarse expiry.
func (tx *Tx) sweep() (int, error) {
	items, index, err := tx.buckets()
	if err != nil {
		return 0, err
	}
	if tx.s.memory {
		return tx.sweepExact(items)
	}
	var due [][]byte
	c := index.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == 8+hkeySize && binary.BigEndian.Uint64(k) > tx.now {
			break
		}
		due = append(due, bytes.Clone(k))
	}
	removed := 0
	for _, k := range due {
		if err := index.Delete(k); err != nil {
			return removed, fmt.Errorf("failed to delete expiry index entry: %w", err)
		}
		if len(k) != 8+hkeySize {
			continue // malformed: dropped
		}
		hk := hkey(k[8:])
		stored := items.Get(hk[:])
		if c, ok := storedCoarse(stored); stored == nil || (ok && c != binary.BigEndian.Uint64(k)) {
			continue // a stale entry: the item is gone or has another expiry
		}
		cd, exact, known := tx.s.dir.find(hk)
		if known && exact > tx.now {
			if err := tx.renew(items, index, cd, hk, stored); err != nil {
				return removed, err
			}
			continue
		}
		if err := tx.remove(items, index, hk); err != nil {
			return removed, fmt.Errorf("failed to delete expired item: %w", err)
		}
		if known {
			u, _ := tx.s.dir.remove(cd, hk)
			tx.undo = append(tx.undo, u)
		}
		removed++
	}
	return removed, nil
}

// sweepExact is sweep for a memory store, which has no expiry index: it
// removes every item whose exact expiry has passed, which the directory
// holds, in the order of an index of exact expiries. Looking at every
// expiry costs about what walking the index and deleting its entries did,
// and anyDue spares a node the look while nothing is due.
func (tx *Tx) sweepExact(items kvBucket) (int, error) {
	d := &tx.s.dir
	due, next := d.due(tx.now)
	for _, it := range due {
		if err := tx.remove(items, nil, it.hk); err != nil {
			return 0, fmt.Errorf("failed to delete expired item: %w", err)
		}
		u, _ := d.remove(it.cd, it.hk)
		tx.undo = append(tx.undo, u)
	}
	// Everything at or before now is gone; a rollback lowers it again.
	d.nextDue = next
	return len(due), nil
}

// renew seals a live item again, unchanged but for a new coarse expiry,
// under the key it had.
func (tx *Tx) renew(items, index kvBucket, cd collDir, hk hkey, stored []byte) error {
	aead, err := tx.openFor(hk)
	if err != nil {
		return err
	}
	p, err := openItem(aead, hk[:], stored)
	if err != nil {
		// Unreadable: it can never be returned, so let it go.
		if err := tx.remove(items, index, hk); err != nil {
			return err
		}
		u, _ := tx.s.dir.remove(cd, hk)
		tx.undo = append(tx.undo, u)
		return nil
	}
	var rnd [nonceSize + 8]byte
	if err := nonceAndJitter(&rnd); err != nil {
		return err
	}
	coarse := coarseExpiry(p.exact, tx.now, binary.BigEndian.Uint64(rnd[nonceSize:]))
	sealed := sealItem(aead, hk[:], coarse, p.exact, string(p.collection), rnd[:nonceSize], p.value)
	if err := items.Put(hk[:], sealed); err != nil {
		return fmt.Errorf("failed to renew item: %w", err)
	}
	if err := index.Put(indexKey(coarse, hk[:]), nil); err != nil {
		return fmt.Errorf("failed to renew item: %w", err)
	}
	return nil
}

// beforeCommit runs at the end of a write transaction, before the database
// commit: if it gives new hkeys a key, the key file must hold them (and
// every key it held) before the commit makes values sealed under them
// durable. One slot suffices: the other still holds the committed table,
// and Open takes the newest slot that verifies.
func (tx *Tx) beforeCommit() error {
	s := tx.s
	var union itemKeys
	for hk, p := range tx.pend {
		if _, inTable := s.keys[hk]; p.drop || inTable {
			continue
		}
		if union == nil {
			union = make(itemKeys, len(s.keys)+len(tx.pend))
			for k, v := range s.keys {
				union[k] = v
			}
		}
		union[hk] = p.key
	}
	if union != nil {
		// From here the file may hold keys the database never commits.
		s.keysDirty = true
		if err := s.kf.write(union, false); err != nil {
			return err
		}
	}
	if s.commitHook != nil {
		s.commitHook()
	}
	return nil
}

// afterCommit applies the transaction's changes to the erasure table. If it
// replaced or dropped keys, both slots are rewritten, so that no copy of
// the old keys survives in the file; keys given to new items are already
// in the newest slot. Replaced keys were not written before the commit: a
// crash in between leaves the old key, from which Open derives the new
// one.
func (tx *Tx) afterCommit() error {
	s := tx.s
	if len(tx.pend) == 0 {
		return nil
	}
	erase := false
	for hk, p := range tx.pend {
		_, inTable := s.keys[hk]
		switch {
		case p.drop && inTable:
			delete(s.keys, hk)
			erase = true
		case p.drop:
		default:
			erase = erase || inTable
			s.keys[hk] = p.key
		}
	}
	if !erase {
		s.keysDirty = false
		return nil
	}
	s.keysDirty = true
	if err := s.kf.write(s.keys, true); err != nil {
		return fmt.Errorf("the transaction is committed, but the keys it replaced are not yet erased: %w", err)
	}
	s.keysDirty = false
	return nil
}
