package store

import (
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// load builds the directory with one pass over the items, and brings the
// erasure table in line with the database after a crash (SPEC §7, commit
// protocol): a key whose item is gone is dropped, a key whose item is
// sealed under its successor (the commit happened, the key file write
// after it did not) is replaced by it, and a key whose item is sealed
// under the seal key (it stopped being erasable) is dropped. It reports
// whether the table changed, and how many keys it dropped because their
// item is not there (missing).
//
// Items with no key are only peeked at (their header decrypted, not
// authenticated); items with a key are opened in full, as there are few.
func (s *Store) load() (changed bool, missing int, err error) {
	seen := make(map[hkey]bool, len(s.keys))
	err = s.db.view(func(tx kvTx) error {
		b := tx.Bucket(bucketItems)
		if b == nil {
			return errors.New("corrupt store: no items bucket")
		}
		var buf peekBuf
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != hkeySize || v == nil {
				continue
			}
			hk := hkey(k)
			var coll []byte
			var exact uint64
			var ok bool
			if key, erasable := s.keys[hk]; erasable {
				seen[hk] = true
				var fix bool
				coll, exact, ok, fix = s.loadErasable(hk, key, v)
				changed = changed || fix
			} else {
				coll, exact, ok = peekItem(s.sealKey, v, &buf)
			}
			if !ok {
				s.unreadable++
				continue // undecodable: see SPEC §7, "Directory"
			}
			cd := s.dir.colls[string(coll)]
			if cd == nil {
				cd = s.dir.coll(string(coll), true)
			}
			s.dir.set(cd, hk, exact)
		}
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	for hk := range s.keys {
		if !seen[hk] {
			delete(s.keys, hk)
			changed = true
			missing++
		}
	}
	return changed, missing, nil
}

// loadErasable opens an item that has a key in the table: under that key,
// else its successor, else the seal key; fix reports that the table entry
// had to change. An item that opens under none keeps its key.
func (s *Store) loadErasable(hk hkey, key [keySize]byte, stored []byte) (coll []byte, exact uint64, ok, fix bool) {
	next := nextItemKey(key)
	for i, k := range [][]byte{key[:], next[:], nil} {
		var aead cipherAEAD = s.seal
		if k != nil {
			var err error
			if aead, err = chacha20poly1305.NewX(k); err != nil {
				return nil, 0, false, false
			}
		}
		p, err := openItem(aead, hk[:], stored)
		if err != nil {
			continue
		}
		switch i {
		case 1:
			s.keys[hk] = next
		case 2:
			delete(s.keys, hk)
		}
		return p.collection, p.exact, true, i > 0
	}
	return nil, 0, false, false
}
