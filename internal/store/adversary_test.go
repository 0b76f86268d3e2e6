package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// erasableOpts is testOpts with contacts erasable, as the node has it.
func erasableOpts(clock *fakeClock) Options {
	o := testOpts(clock)
	o.Erasable = []string{"contacts", "prekeys"}
	return o
}

// keyFileTables decodes both slots of the key file in dir with the table
// key of s, and returns every (hkey, key) pair either holds.
func keyFileTables(t *testing.T, s *Store, dir string) []itemKeys {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	best, other, _, err := scanKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []itemKeys
	for _, sl := range []*keySlot{best, other} {
		if sl == nil {
			continue
		}
		keys, err := sl.openTable(s.kf.aead)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, keys)
	}
	return out
}

// TestErasedValuesStayUnreadable attacks the erasure claim: after an
// erasable item is overwritten or deleted, its old sealed value may still
// lie on a freed page of the database, but neither the DEK's subkeys nor
// any key of the key file (in either slot), nor any key derived from them,
// opens it. A non-erasable item, for contrast, stays readable on its freed
// page under the seal key: that is what erasability is for.
func TestErasedValuesStayUnreadable(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(nil))
	names := []string{"alice", "bob", "carol", "dave"}
	// A big value, so that the database's pages are its own.
	val := func(name string, gen int) []byte {
		return []byte(fmt.Sprintf("%s gen %d ", name, gen) + strings.Repeat("chain key ", 150))
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, n := range names {
			if err := tx.Put("contacts", []byte(n), val(n, 0), Forever); err != nil {
				return err
			}
			if err := tx.Put("envelopes", []byte(n), val(n, 0), Forever); err != nil {
				return err
			}
		}
		return nil
	})
	type old struct {
		coll, name string
		sealed     []byte
	}
	var olds []old
	record := func(coll, name string) {
		v, err := rawItem(s, coll, []byte(name))
		if err != nil || v == nil {
			t.Fatalf("raw %s/%s: %v", coll, name, err)
		}
		olds = append(olds, old{coll, name, v})
	}
	// Overwrite alice and bob (twice, in two transactions), delete carol;
	// the same for the non-erasable envelopes.
	for gen := 1; gen <= 2; gen++ {
		for _, coll := range []string{"contacts", "envelopes"} {
			record(coll, "alice")
			record(coll, "bob")
		}
		mustUpdate(t, s, func(tx *Tx) error {
			for _, coll := range []string{"contacts", "envelopes"} {
				for _, n := range []string{"alice", "bob"} {
					if err := tx.Put(coll, []byte(n), val(n, gen), Forever); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	for _, coll := range []string{"contacts", "envelopes"} {
		record(coll, "carol")
	}
	mustUpdate(t, s, func(tx *Tx) error {
		return errorsJoin(tx.Delete("contacts", []byte("carol")), tx.Delete("envelopes", []byte("carol")))
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The attacker has a copy of both files and, at worst, the passphrase.
	cp := copyHome(t, dir)
	raw, err := os.ReadFile(filepath.Join(cp, FileName))
	if err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cp, erasableOpts(nil))
	defer s.Close()
	var keys [][]byte
	sk, err := subkeys(s.dek)
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, s.dek, sk.seal, sk.index, sk.table)
	for _, tab := range keyFileTables(t, s, cp) {
		for _, k := range tab {
			next := nextItemKey(k)
			keys = append(keys, bytes.Clone(k[:]), next[:])
		}
	}
	found := map[string]int{}
	for _, o := range olds {
		// Look for the old value's nonce and ciphertext (its clear coarse
		// expiry is shared with others).
		if !bytes.Contains(raw, o.sealed[8:]) {
			continue
		}
		found[o.coll]++
		hk := s.hasher.hash(o.coll, []byte(o.name))
		opened := false
		for _, k := range keys {
			aead, err := chacha20poly1305.NewX(k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := openItem(aead, hk[:], o.sealed); err == nil {
				opened = true
			}
		}
		switch {
		case o.coll == "contacts" && opened:
			t.Errorf("an erased value of %s/%s, still on disk, opens with a key the home holds", o.coll, o.name)
		case o.coll == "envelopes" && !opened:
			t.Errorf("old non-erasable value of %s/%s does not open under the seal key (the contrast is gone)", o.coll, o.name)
		}
	}
	// The test means something only if old values are really there.
	if found["contacts"] == 0 || found["envelopes"] == 0 {
		t.Fatalf("old values found on disk: %v; the attack checks nothing", found)
	}
	t.Logf("old sealed values left on freed pages: %v of %d each", found, len(olds)/2)
	// And the current values are what they should be.
	if v, ok := getString(t, s, "contacts", "alice"); !ok || v != string(val("alice", 2)) {
		t.Fatalf("alice = %.20q %v", v, ok)
	}
	if _, ok := getString(t, s, "contacts", "carol"); ok {
		t.Fatal("carol survived her deletion")
	}
	// The key file holds one key per live erasable item, in both slots.
	for i, tab := range keyFileTables(t, s, cp) {
		if len(tab) != 3 {
			t.Fatalf("slot %d holds %d keys, want 3 (alice, bob, dave)", i, len(tab))
		}
	}
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestCopyRevealsLittle attacks what a copy of the home shows without the
// passphrase. It decodes both files as an attacker would and checks that
// there are no collection names, no per-collection counts, no exact
// expiries and no exact sizes: only the total item count, a size bucket per
// value and a coarse expiry per item.
func TestCopyRevealsLittle(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{t: t0}
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(clock))
	var exacts []uint64
	wantSizes := map[int]bool{}
	put := func(tx *Tx, coll string, i int, size int, exp time.Time) error {
		exacts = append(exacts, uint64(exp.Unix()))
		wantSizes[valueOverhead+padSize(plainFixed+len(coll)+size)] = true
		return tx.Put(coll, []byte(fmt.Sprintf("%s-%d", coll, i)), bytes.Repeat([]byte{'v'}, size), exp)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for i := range 3 {
			if err := put(tx, "contacts", i, 100+i, Forever); err != nil {
				return err
			}
		}
		for i := range 7 {
			if err := put(tx, "blocked", i, 40, t0.Add(365*24*time.Hour)); err != nil {
				return err
			}
		}
		for i := range 40 {
			// Sizes 54 to 288, expiries scattered to the second over the
			// rest of the day (so that no clear expiry, always in a later
			// day, can equal one by chance).
			if err := put(tx, "envelopes", i, 54+i*6, t0.Add(time.Duration(3600+i*1601)*time.Second)); err != nil {
				return err
			}
		}
		return nil
	})
	s.Close()
	cp := copyHome(t, dir)
	keyRaw, err := os.ReadFile(filepath.Join(cp, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	dbRaw, err := os.ReadFile(filepath.Join(cp, FileName))
	if err != nil {
		t.Fatal(err)
	}

	// Neither file holds a collection name, nor any exact expiry.
	for _, name := range []string{"contacts", "blocked", "envelopes"} {
		if bytes.Contains(dbRaw, []byte(name)) || bytes.Contains(keyRaw, []byte(name)) {
			t.Errorf("a file holds the collection name %q", name)
		}
	}
	for _, e := range exacts {
		// (Forever is a constant: nothing to hide, and its bytes are
		// mostly zeros, which pages are full of.)
		if e != uint64(Forever.Unix()) && bytes.Contains(dbRaw, binary.BigEndian.AppendUint64(nil, e)) {
			t.Errorf("the database holds the exact expiry %d", e)
		}
	}
	// The key file's size does not depend on how many items are erasable,
	// and its sequence number does not count its writes from 1.
	if len(keyRaw) != 2*slotMinSize {
		t.Errorf("key file of %d bytes", len(keyRaw))
	}
	sl, _, _, err := scanKeyFile(keyRaw)
	if err != nil {
		t.Fatal(err)
	}
	if sl.seq < 1<<32 {
		t.Errorf("key file sequence number %d", sl.seq)
	}

	// Decode the database as an attacker would: bucket names, item count,
	// value sizes and clear expiries.
	db, err := bolt.Open(filepath.Join(cp, FileName), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var buckets []string
	var storedSizes []int
	var coarse []uint64
	err = db.View(func(tx *bolt.Tx) error {
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			buckets = append(buckets, string(name))
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketItems)).ForEach(func(k, v []byte) error {
			storedSizes = append(storedSizes, len(v))
			coarse = append(coarse, binary.BigEndian.Uint64(v))
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketExpiry)).ForEach(func(k, v []byte) error {
			if len(k) != 8+hkeySize || len(v) != 0 {
				return fmt.Errorf("index entry %x = %x", k, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{bucketExpiry, bucketItems, bucketMeta}; !slices.Equal(buckets, want) {
		t.Errorf("buckets %q, want %q", buckets, want)
	}
	// What is countable is the total only.
	if len(storedSizes) != 50 {
		t.Errorf("%d items, want 50", len(storedSizes))
	}
	// Sizes: only buckets. 50 values of 42 distinct lengths show as the
	// size buckets of their plaintexts, and nothing finer.
	distinct := map[int]bool{}
	for _, n := range storedSizes {
		if p := n - valueOverhead; padSize(p) != p {
			t.Errorf("stored size %d is not a size bucket plus %d", n, valueOverhead)
		}
		distinct[n] = true
	}
	if !maps.Equal(distinct, wantSizes) || len(distinct) > 6 {
		t.Errorf("stored sizes %v, want the buckets %v", distinct, wantSizes)
	}
	// Expiries: every clear expiry lies within the horizon and two days
	// (contacts kept forever and the blocked list kept a year look like
	// any item due in two months), and none is an exact expiry.
	now := uint64(t0.Unix())
	for _, c := range coarse {
		if c > ceilDay(now+horizon)+day || c <= now {
			t.Errorf("clear expiry %d beyond the horizon", c)
		}
		if slices.Contains(exacts, c) {
			t.Errorf("clear expiry %d is an exact expiry", c)
		}
	}
	// Each envelope's clear expiry is at or after its exact one and less
	// than two days later: sweeping by it never removes a live item.
	sorted := slices.Sorted(slices.Values(coarse))
	envExacts := slices.Sorted(slices.Values(exacts[10:]))
	for i, e := range envExacts {
		// The i-th smallest coarse expiry of the envelopes cannot be below
		// the i-th smallest exact one.
		if sorted[i] < e {
			t.Errorf("%d-th clear expiry %d before the exact %d", i, sorted[i], e)
		}
	}
}
