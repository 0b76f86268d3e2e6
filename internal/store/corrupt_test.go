package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

var corruptPass = []byte("corruption trials")

// corruptFixture is a home with items in three collections (two erasable),
// written in several transactions, so that the items bucket spans a branch
// page and many leaves; and, per item, its value.
type corruptFixture struct {
	dir   string
	items map[string][]byte // collection + "/" + key → value
	hk    map[hkey]string   // hkey → collection + "/" + key
}

func newCorruptFixture(t *testing.T) *corruptFixture {
	t.Helper()
	f := &corruptFixture{dir: t.TempDir(), items: map[string][]byte{}, hk: map[hkey]string{}}
	opts := Options{KDF: TestKDF(), Erasable: []string{"self", "contacts"}}
	s, err := Create(f.dir, corruptPass, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	put := func(tx *Tx, coll string, i int) error {
		key := fmt.Appendf(nil, "%s-%04d", coll, i)
		val := make([]byte, 40+rng.IntN(400))
		if coll == "envelopes" && i%100 == 7 { // a file's chunk: in a bucket of its own (LargeValue)
			val = make([]byte, LargeValue+rng.IntN(LargeValue))
		}
		for j := range val {
			val[j] = byte(rng.Uint32())
		}
		f.items[coll+"/"+string(key)] = val
		f.hk[s.hasher.hash(coll, key)] = coll + "/" + string(key)
		return tx.Put(coll, key, val, time.Now().Add(time.Duration(1+rng.IntN(90))*24*time.Hour))
	}
	for batch := range 6 {
		err := s.Update(func(tx *Tx) error {
			for i := range 60 {
				if err := put(tx, "envelopes", batch*60+i); err != nil {
					return err
				}
			}
			for i := range 4 {
				if err := put(tx, "contacts", batch*4+i); err != nil {
					return err
				}
			}
			if batch == 0 {
				return put(tx, "self", 0)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// layout is where the items of the fixture's database are: for each meta
// page's tree, the leaf page of every item; and the tree's other pages.
type layout struct {
	pageSize int
	metas    [2]rawMeta
	newest   int                // index of the newest meta
	leafOf   [2]map[hkey]uint64 // per meta
	branches []uint64           // branch pages of the newest tree
	freelist uint64
	// spans says how many pages a leaf takes beyond its first (the
	// overflow of a large item's own leaf, LargeValue).
	spans map[uint64]uint64
}

// intact says whether none of the pages of the leaf at p is lost.
func (l layout) intact(p uint64, lost map[uint64]bool) bool {
	for q := p; q <= p+l.spans[p]; q++ {
		if lost[q] {
			return false
		}
	}
	return true
}

func readLayout(t *testing.T, data []byte) layout {
	t.Helper()
	var l layout
	l.metas, l.pageSize = readMetas(data)
	if !l.metas[0].valid || !l.metas[1].valid {
		t.Fatal("the fixture's meta pages do not verify")
	}
	if l.metas[1].txid > l.metas[0].txid {
		l.newest = 1
	}
	f := &rawFile{data: data, pageSize: l.pageSize}
	for i, m := range l.metas {
		seen := map[uint64]bool{0: true, 1: true}
		fail := func(s string) { t.Fatalf("fixture tree: %s", s) }
		var items []byte
		f.walk(m.root, nil, seen, func(kv leafPair) {
			if string(kv.key) == bucketItems {
				items = kv.value
			}
		}, fail)
		root, inline, ok := bucketRoot(items)
		if !ok || root == 0 {
			t.Fatal("fixture: the items bucket is inline or missing")
		}
		itemPages := map[uint64]bool{}
		f.walk(root, inline, itemPages, func(leafPair) {}, fail)
		l.leafOf[i] = map[hkey]uint64{}
		if l.spans == nil {
			l.spans = map[uint64]uint64{}
		}
		for p := range itemPages {
			pg, _ := f.page(p)
			switch binary.LittleEndian.Uint16(pg[8:]) {
			case pageLeaf:
				pairs, _ := leafPairs(pg)
				for _, kv := range pairs {
					l.leafOf[i][hkey(kv.key)] = p
					if !kv.bucket {
						continue
					}
					// A large item: its value is on its own leaf.
					nested, _, _ := bucketRoot(kv.value)
					l.leafOf[i][hkey(kv.key)] = nested
					np, _ := f.page(nested)
					l.spans[nested] = uint64(binary.LittleEndian.Uint32(np[12:]))
				}
			case pageBranch:
				if i == l.newest {
					l.branches = append(l.branches, p)
				}
			}
		}
	}
	l.freelist = l.metas[l.newest].freelist
	return l
}

// damage is one way of damaging a home: it changes the files and says
// which database pages it destroyed and which meta page's tree survives.
type damage struct {
	name string
	// apply damages the copy of the home in dir.
	apply func(t *testing.T, dir string)
	// lost are the database pages destroyed; survivor is the meta whose
	// tree the store falls back to (-1: the newest).
	lost     func(l layout, size int) map[uint64]bool
	survivor int
	// keyLost: the key file has no intact slot; nothing can be opened.
	keyLost bool
}

func pages(ids ...uint64) func(layout, int) map[uint64]bool {
	return func(layout, int) map[uint64]bool {
		m := map[uint64]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
}

func zeroPage(dir string, ps int, id uint64) error {
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(make([]byte, ps), int64(id)*int64(ps))
	return err
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruption damages a home in many ways — zeroed pages (leaves, a
// branch, the root, the freelist, each meta page, both), truncation, random
// bytes at random places, a flipped bit in the newest meta page, and the key
// file zeroed, cut or overwritten — and checks each time that opening it,
// reading everything, Check and Repair never panic; that every failure is a
// clear error wrapping ErrCorrupt and naming the file; and that Repair saves
// every item whose page was not destroyed, each with its own value, into a
// store that opens.
func TestCorruption(t *testing.T) {
	fx := newCorruptFixture(t)
	orig, err := os.ReadFile(filepath.Join(fx.dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	l := readLayout(t, orig)
	ps := l.pageSize
	leaves := slices.Sorted(func(yield func(uint64) bool) {
		seen := map[uint64]bool{}
		for _, p := range l.leafOf[l.newest] {
			if !seen[p] {
				seen[p] = true
				if !yield(p) {
					return
				}
			}
		}
	})
	if len(leaves) < 8 || len(l.branches) == 0 {
		t.Fatalf("fixture: %d item leaves, %d branch pages; want a real tree", len(leaves), len(l.branches))
	}
	newest, older := uint64(l.newest), uint64(1-l.newest)
	root := l.metas[l.newest].root

	var cases []damage
	for _, p := range []uint64{leaves[0], leaves[len(leaves)/2], leaves[len(leaves)-1]} {
		cases = append(cases, damage{name: fmt.Sprintf("leaf page %d zeroed", p), survivor: -1, lost: pages(p),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, p) }})
	}
	cases = append(cases,
		damage{name: "two leaves zeroed", survivor: -1, lost: pages(leaves[1], leaves[3]),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, leaves[1]); zeroPage(dir, ps, leaves[3]) }},
		damage{name: "a branch page zeroed", survivor: -1, lost: pages(l.branches[0]),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, l.branches[0]) }},
		damage{name: "the root page zeroed", survivor: -1, lost: pages(root),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, root) }},
		damage{name: "the freelist page zeroed", survivor: -1, lost: pages(l.freelist),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, l.freelist) }},
		damage{name: "the newest meta page zeroed", survivor: int(older), lost: pages(newest),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, newest) }},
		damage{name: "the older meta page zeroed", survivor: -1, lost: pages(older),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, older) }},
		damage{name: "both meta pages zeroed", survivor: -1, lost: pages(0, 1),
			apply: func(t *testing.T, dir string) { zeroPage(dir, ps, 0); zeroPage(dir, ps, 1) }},
		damage{name: "one bit of the newest meta page flipped", survivor: int(older), lost: pages(newest),
			apply: func(t *testing.T, dir string) {
				path := filepath.Join(dir, FileName)
				b, _ := os.ReadFile(path)
				writeAt(t, path, int64(newest)*int64(ps)+pageHeader+17, []byte{b[int(newest)*ps+pageHeader+17] ^ 0x01})
			}},
		damage{name: "one bit of the newest meta page's checksum flipped", survivor: -1, lost: pages(),
			apply: func(t *testing.T, dir string) {
				path := filepath.Join(dir, FileName)
				b, _ := os.ReadFile(path)
				off := int(newest)*ps + pageHeader + 60
				writeAt(t, path, int64(off), []byte{b[off] ^ 0x10})
			}},
	)
	for _, size := range []int{8 << 10, 12 << 10, 16 << 10, len(orig) / 2, len(orig) - ps} {
		cases = append(cases, damage{name: fmt.Sprintf("truncated to %d bytes", size), survivor: -1,
			lost: func(l layout, n int) map[uint64]bool {
				m := map[uint64]bool{}
				for p := uint64(size / ps); p < uint64(n/ps)+1; p++ {
					m[p] = true
				}
				return m
			},
			apply: func(t *testing.T, dir string) { os.Truncate(filepath.Join(dir, FileName), int64(size)) }})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10 {
		off := int64(2*ps + rng.IntN(len(orig)-2*ps-16))
		junk := make([]byte, 16)
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		first, last := uint64(off)/uint64(ps), uint64(off+15)/uint64(ps)
		cases = append(cases, damage{name: fmt.Sprintf("16 random bytes at %d (#%d)", off, i), survivor: -1, lost: pages(first, last),
			apply: func(t *testing.T, dir string) { writeAt(t, filepath.Join(dir, FileName), off, junk) }})
	}
	keyFile := func(fn func(t *testing.T, path string)) func(*testing.T, string) {
		return func(t *testing.T, dir string) { fn(t, filepath.Join(dir, KeyFileName)) }
	}
	cases = append(cases,
		damage{name: "key file: slot A zeroed", survivor: -1, lost: pages(),
			apply: keyFile(func(t *testing.T, p string) { writeAt(t, p, 0, make([]byte, slotMinSize)) })},
		damage{name: "key file: random bytes in slot B", survivor: -1, lost: pages(),
			apply: keyFile(func(t *testing.T, p string) { writeAt(t, p, slotMinSize+200, bytes.Repeat([]byte{0xa5}, 64)) })},
		damage{name: "key file: both slots zeroed", keyLost: true,
			apply: keyFile(func(t *testing.T, p string) { writeAt(t, p, 0, make([]byte, 2*slotMinSize)) })},
		damage{name: "key file: cut to 100 bytes", keyLost: true,
			apply: keyFile(func(t *testing.T, p string) { os.Truncate(p, 100) })},
	)

	opts := Options{Erasable: []string{"self", "contacts"}, LockTimeout: time.Second}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyHome(t, fx.dir)
			c.apply(t, dir)

			// Open, and read everything if it opens: errors, never panics.
			s, err := Open(dir, corruptPass, opts)
			if err != nil {
				checkClear(t, "Open", err)
			} else {
				s.View(func(tx *Tx) error {
					for _, coll := range []string{"envelopes", "contacts", "self"} {
						tx.ForEach(coll, func([]byte, time.Time) error { return nil })
					}
					for key := range fx.items {
						coll, k, _ := strings.Cut(key, "/")
						if _, _, _, err := tx.Get(coll, []byte(k)); err != nil && !strings.Contains(err.Error(), "corrupt") {
							t.Errorf("Get %s: %v", key, err)
						}
					}
					return nil
				})
				s.Close()
			}

			rep, err := Check(dir, corruptPass)
			if c.keyLost {
				if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), KeyFileName) {
					t.Errorf("Check with no intact key slot: %v", err)
				}
				if _, err := Repair(dir, corruptPass, time.Now()); err == nil || !strings.Contains(err.Error(), "restore it from a backup") {
					t.Errorf("Repair with no intact key slot: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if len(c.lost(l, len(orig))) > 0 && rep.OK() && !strings.HasPrefix(c.name, "the older meta") && !strings.HasPrefix(c.name, "the freelist") {
				// Damage to a free or unused page may go unseen; damage to
				// the tree may not.
				if _, onTree := c.lost(l, len(orig))[root]; onTree {
					t.Errorf("Check found nothing wrong: %+v", rep)
				}
			}

			rrep, err := Repair(dir, corruptPass, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if _, err := os.Stat(rrep.KeptDB); rrep.KeptDB != "" && err != nil {
				t.Errorf("the damaged database was not kept: %v", err)
			}
			s, err = Open(dir, corruptPass, opts)
			if err != nil {
				t.Fatalf("Open after Repair: %v", err)
			}
			defer s.Close()

			// Every item whose page survived is there, with its value;
			// nothing is there with another value.
			survivor := l.newest
			if c.survivor >= 0 {
				survivor = c.survivor
			}
			lost := c.lost(l, len(orig))
			// An erasable item needs its key, which only the key file holds:
			// if the slot that held it is damaged, the item is lost with it.
			keysNow := tableOf(t, dir)
			want, got := 0, 0
			s.View(func(tx *Tx) error {
				for hk, key := range fx.hk {
					coll, k, _ := strings.Cut(key, "/")
					v, _, ok, err := tx.Get(coll, []byte(k))
					if err != nil {
						t.Errorf("Get %s after Repair: %v", key, err)
						continue
					}
					if ok {
						got++
						if !bytes.Equal(v, fx.items[key]) {
							t.Errorf("%s after Repair holds another value", key)
						}
					}
					_, hasKey := keysNow[hk]
					if p, onTree := l.leafOf[survivor][hk]; onTree && l.intact(p, lost) && (hasKey || coll == "envelopes") {
						want++
						if !ok {
							t.Errorf("%s (on intact page %d) was not saved", key, p)
						}
					}
				}
				return nil
			})
			t.Logf("%d of %d items saved (%d expected at least); check: %d pages with problems, scanned %v", got, len(fx.items), want, len(rep.Pages), rep.Scanned)
		})
	}
}

// checkClear fails unless err is a clear corruption error naming a file.
func checkClear(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s: %v does not wrap ErrCorrupt", what, err)
	}
	if !strings.Contains(err.Error(), FileName) && !strings.Contains(err.Error(), KeyFileName) {
		t.Errorf("%s: %q names no file", what, err)
	}
}

// tableOf is the erasure table of the home in dir, as Open reads it.
func tableOf(t *testing.T, dir string) itemKeys {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	best, _, _, err := scanKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	kek := deriveKEK(corruptPass, best.salt[:], best.kdf)
	dek, err := best.unwrapDEK(kek)
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := subkeys(dek)
	table, _ := chacha20poly1305.NewX(sk.table)
	keys, err := best.openTable(table)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestRolledBackRefused: when the newest meta page is damaged and the key
// file holds keys of items the database no longer has, Open refuses and
// writes nothing (dropping those keys would lose the last transaction for
// good); Repair, which finds that page whole but for its checksum, brings
// everything back.
func TestRolledBackRefused(t *testing.T) {
	fx := newCorruptFixture(t)
	dir := copyHome(t, fx.dir)
	path := filepath.Join(dir, FileName)
	b, _ := os.ReadFile(path)
	l := readLayout(t, b)
	off := l.newest*l.pageSize + pageHeader + 60 // in the checksum
	writeAt(t, path, int64(off), []byte{b[off] ^ 0x01})
	keyBefore, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	_, err := Open(dir, corruptPass, Options{Erasable: []string{"self", "contacts"}})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "newest meta page is damaged") || !strings.Contains(err.Error(), "Nothing was written") {
		t.Fatalf("Open of a rolled-back store: %v", err)
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(dir, KeyFileName)); !bytes.Equal(keyBefore, keyAfter) {
		t.Error("the refused Open changed the key file")
	}
	rep, err := Repair(dir, corruptPass, time.Now())
	if err != nil || rep.Items != len(fx.items) {
		t.Fatalf("Repair: %d items, %v; want %d", rep.Items, err, len(fx.items))
	}
	s, err := Open(dir, corruptPass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("warnings after repair: %v", w)
	}
	s.Close()
}

// TestRepairHealthy: Repair of an intact store keeps exactly its items —
// nothing deleted comes back from freed pages — and Check finds it OK.
func TestRepairHealthy(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, corruptPass, Options{KDF: TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(48 * time.Hour)
	for i := range 200 {
		s.Update(func(tx *Tx) error {
			return tx.Put("messages", fmt.Append(nil, i), bytes.Repeat([]byte{byte(i)}, 100), exp)
		})
	}
	for i := range 100 {
		s.Update(func(tx *Tx) error { return tx.Delete("messages", fmt.Append(nil, i)) })
	}
	s.Close()
	rep, err := Check(dir, corruptPass)
	if err != nil || !rep.OK() || rep.Items != 100 {
		t.Fatalf("Check of a healthy store: %+v, %v", rep, err)
	}
	if _, err := Repair(dir, corruptPass, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, corruptPass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(func(tx *Tx) error {
		if n, _ := tx.Count("messages"); n != 100 {
			t.Errorf("%d messages after Repair, want 100", n)
		}
		return nil
	})
}

// TestFilesGone: a store notices its files deleted or replaced under it.
func TestFilesGone(t *testing.T) {
	for _, what := range []string{"delete db", "replace db", "delete key"} {
		dir := t.TempDir()
		s, err := Create(dir, corruptPass, Options{KDF: TestKDF()})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(dir, corruptPass, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckFiles(); err != nil {
			t.Fatalf("CheckFiles of an intact store: %v", err)
		}
		switch what {
		case "delete db":
			os.Remove(filepath.Join(dir, FileName))
		case "replace db":
			b, _ := os.ReadFile(filepath.Join(dir, FileName))
			os.Remove(filepath.Join(dir, FileName))
			os.WriteFile(filepath.Join(dir, FileName), b, 0o600)
		case "delete key":
			os.Remove(filepath.Join(dir, KeyFileName))
		}
		if err := s.CheckFiles(); !errors.Is(err, ErrFilesGone) {
			t.Errorf("%s: CheckFiles = %v", what, err)
		}
		s.Close()
	}
}
