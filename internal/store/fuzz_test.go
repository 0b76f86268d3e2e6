package store

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// fuzzSlot is a valid slot with one table entry, for seeds.
func fuzzSlot(f *testing.F) (slot []byte, table cipherAEAD) {
	sk, err := subkeys(detBytes("fuzz dek", keySize))
	if err != nil {
		f.Fatal(err)
	}
	table, err = chacha20poly1305.NewX(sk.table)
	if err != nil {
		f.Fatal(err)
	}
	sl := &keySlot{size: slotMinSize, seq: 3, kdf: TestKDF()}
	copy(sl.salt[:], detBytes("fuzz salt", saltSize))
	if err := sl.wrapDEK(detBytes("fuzz kek", keySize), detBytes("fuzz dek", keySize)); err != nil {
		f.Fatal(err)
	}
	sl.sealTable(table, itemKeys{hkey(detBytes("fuzz hkey", hkeySize)): [keySize]byte(detBytes("fuzz item key", keySize))})
	return sl.marshal(), table
}

// FuzzScanKeyFile feeds whole key files to the parser Open uses: it must
// never panic, and a slot it accepts must be exactly what marshal writes
// for the fields it decoded.
func FuzzScanKeyFile(f *testing.F) {
	slot, table := fuzzSlot(f)
	f.Add(append(bytes.Clone(slot), slot...))
	f.Add(slot)
	f.Add(slot[:slotMinSize-1])
	f.Add([]byte(keyMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		best, other, lay, err := scanKeyFile(b)
		if err != nil {
			return
		}
		for _, sl := range []*keySlot{best, other} {
			if sl == nil {
				continue
			}
			out := sl.marshal()
			if !bytes.Contains(b, out) {
				t.Fatalf("accepted a slot that does not re-encode to its bytes")
			}
			if err := sl.kdf.validate(); err != nil {
				t.Fatalf("accepted KDF parameters that do not validate: %v", err)
			}
			_, _ = sl.openTable(table) // must not panic either
		}
		if other != nil && other.seq > best.seq || !lay.pos[0].valid && !lay.pos[1].valid || lay.size != best.size {
			t.Fatalf("inconsistent layout %+v for newest seq %d", lay, best.seq)
		}
	})
}

// FuzzParseTable feeds table plaintexts: an accepted one re-encodes to
// itself (one encoding per table).
func FuzzParseTable(f *testing.F) {
	f.Add(marshalTable(itemKeys{}, 100))
	f.Add(marshalTable(itemKeys{{1}: {2}, {3}: {4}}, 4+2*tableEntrySize))
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseTable(b)
		if err != nil {
			return
		}
		if out := marshalTable(keys, len(b)); !bytes.Equal(out, b) {
			t.Fatalf("table does not re-encode to itself:\n in %x\nout %x", b, out)
		}
	})
}

// FuzzOpenValue feeds stored values to the functions that read them. Only a
// genuine sealed value may open (resealing it with its nonce and clear
// expiry reproduces it), and the header peek, which is not authenticated,
// must agree with a full open whenever that succeeds, and never panic.
func FuzzOpenValue(f *testing.F) {
	sk, err := subkeys(detBytes("fuzz dek", keySize))
	if err != nil {
		f.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(sk.seal)
	if err != nil {
		f.Fatal(err)
	}
	hk := hashKey(sk.index, "inbox", []byte("key"))
	good := sealItem(aead, hk, 1<<33+day, 1<<33, "inbox", detBytes("fuzz value nonce", nonceSize), []byte("hello"))
	long := sealItem(aead, hk, 1<<33+day, 1<<33, string(bytes.Repeat([]byte("c"), 255)), detBytes("n", nonceSize), nil)
	f.Add(good)
	f.Add(long)
	f.Add(good[:minStored])
	f.Add(good[:minStored-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf peekBuf
		coll, exact, peeked := peekItem(sk.seal, b, &buf)
		p, err := openItem(aead, hk, b)
		if err != nil {
			return
		}
		if !peeked || !bytes.Equal(coll, p.collection) || exact != p.exact {
			t.Fatalf("peek %q %d %v disagrees with open %q %d", coll, exact, peeked, p.collection, p.exact)
		}
		coarse := binary.BigEndian.Uint64(b)
		if again := sealItem(aead, hk, coarse, p.exact, string(p.collection), b[8:valuePrefix], p.value); !bytes.Equal(again, b) {
			t.Fatalf("opened a value that does not reseal to itself: %x", b)
		}
	})
}

// FuzzParsePlain feeds plaintexts (what a value decrypts to): an accepted
// one is exactly what sealItem would have built.
func FuzzParsePlain(f *testing.F) {
	mk := func(coll string, exact uint64, v []byte) []byte {
		n := padSize(plainFixed + len(coll) + len(v))
		pt := make([]byte, n)
		pt[0] = byte(len(coll))
		off := 1 + copy(pt[1:], coll)
		binary.BigEndian.PutUint64(pt[off:], exact)
		binary.BigEndian.PutUint32(pt[off+8:], uint32(len(v)))
		copy(pt[off+12:], v)
		return pt
	}
	f.Add(mk("contacts", 1<<40, []byte("x")))
	f.Add(mk("e", 1, make([]byte, 51)))
	f.Add(mk("e", 1, make([]byte, 52)))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePlain(b)
		if err != nil {
			return
		}
		if out := mk(string(p.collection), p.exact, p.value); !bytes.Equal(out, b) {
			t.Fatalf("plaintext does not re-encode to itself:\n in %x\nout %x", b, out)
		}
	})
}

// FuzzOpenKept feeds values as a memory store keeps them: an accepted one is
// exactly what keepItem would have built.
func FuzzOpenKept(f *testing.F) {
	hk := detBytes("hkey", hkeySize)
	f.Add(keepItem(hk, 1<<40, "contacts", []byte("x")))
	f.Add(keepItem(hk, 1, "e", make([]byte, 51)))
	f.Add(keepItem(hk, 1, string(bytes.Repeat([]byte("c"), 255)), nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := openKept(b)
		if err != nil {
			return
		}
		if out := keepItem(hk, p.exact, string(p.collection), p.value); !bytes.Equal(out, b) {
			t.Fatalf("kept value does not re-encode to itself:\n in %x\nout %x", b, out)
		}
	})
}

// FuzzRawDB: the reader that Check and Repair use on damaged databases never
// panics, whatever the file holds.
func FuzzRawDB(f *testing.F) {
	dir := f.TempDir()
	s, err := Create(dir, []byte("pw"), Options{KDF: TestKDF()})
	if err != nil {
		f.Fatal(err)
	}
	s.Update(func(tx *Tx) error {
		if err := tx.Put("c", []byte("k"), []byte("v"), Forever); err != nil {
			return err
		}
		return tx.Put("c", []byte("big"), make([]byte, LargeValue), Forever) // in a bucket of its own
	})
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:4096+100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		metas, ps := readMetas(data)
		if ps == 0 {
			ps = 4096
		}
		rf := &rawFile{data: data, pageSize: ps}
		for _, m := range metas {
			if !m.fields {
				continue
			}
			var r CheckReport
			r.Colls = map[string]int{}
			walkTree(rf, m, [storeIDSize]byte{}, &r, func(hkey, []byte) (string, bool) { return "", true })
		}
		rf.scanLeaves(nil, func(leafPair) {})
		precheckFile(bytes.NewReader(data), int64(len(data)), FileName)
	})
}

// FuzzMemTree runs the operations data spells on a memTree and on a sorted
// slice: puts and deletes of single keys and of runs of 64 (which grow and
// shrink the tree by levels quickly), and lookups. Every result must agree,
// the B-tree invariants hold after each change of shape, and the iteration
// order must agree at the end.
func FuzzMemTree(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(bytes.Repeat([]byte{2, 1, 2, 9, 3, 1, 0, 5}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m modelTree
		for len(data) >= 2 {
			op, k := data[0], []byte{data[1] & 0x3f}
			data = data[2:]
			run := func(fn func([]byte)) {
				for i := range 64 {
					fn([]byte{k[0], byte(i * int(op>>3|1))})
				}
			}
			switch op % 5 {
			case 0:
				m.put(t, k, []byte{op})
			case 1:
				m.delete(t, k)
			case 2:
				run(func(k []byte) { m.put(t, k, []byte{op}) })
			case 3:
				run(func(k []byte) { m.delete(t, k) })
			default:
				m.find(t, k)
			}
			if op%5 == 2 || op%5 == 3 || m.tr.n < 2*btMaxItems {
				checkTree(t, &m.tr) // after each change of shape, and in small trees after every step
			}
		}
		checkTree(t, &m.tr)
		m.check(t)
	})
}
