package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// CheckReport is what Check found.
type CheckReport struct {
	DB, KeyFile string // the files checked
	// KeySlots says, for slot A and slot B of the key file, "ok (seq N)" or
	// what is wrong with it.
	KeySlots [2]string
	// Meta says, for the database's two meta pages, "ok (transaction N)"
	// or what is wrong with it.
	Meta [2]string
	// Pages lists the pages of the database that could not be read: a
	// damaged page, a reference outside the file, a loop.
	Pages []string
	// Scanned is set when the tree could not be read whole and every page
	// of the file was searched for items instead.
	Scanned bool
	Items   int            // items found that authenticate
	Colls   map[string]int // of them, per collection
	// Damaged lists the hkeys (hex) of items that are in the tree but do
	// not authenticate under any key the store has.
	Damaged []string
	// Ambiguous counts items found (by a scan) in two intact versions; the
	// one with the later clear expiry is taken.
	Ambiguous int
	// MetaRecord says what is wrong with the database's meta record and
	// buckets, if anything.
	MetaRecord string
}

// OK reports whether nothing is wrong.
func (r *CheckReport) OK() bool {
	return len(r.Pages) == 0 && !r.Scanned && len(r.Damaged) == 0 && r.MetaRecord == "" &&
		isOK(r.Meta[0]) && isOK(r.Meta[1]) && isOK(r.KeySlots[0]) && isOK(r.KeySlots[1])
}

func isOK(s string) bool { return len(s) >= 2 && s[:2] == "ok" }

// Check reads the whole store in dir without changing it: both slots of the
// key file, both meta pages of the database, every page of its tree
// (parsed with bounds checks, never by bbolt, so that no damage can crash
// it), and every item, which must authenticate under its key. It needs the
// passphrase to open the items. A store that a running node holds is
// refused with ErrInUse. The error is non-nil only when nothing could be
// checked (no store, a wrong passphrase, a key file with no intact slot);
// damage is in the report.
func Check(dir string, passphrase []byte) (*CheckReport, error) {
	r, _, err := salvage(dir, passphrase, false)
	return r, err
}

// salvaged is what salvage found: every item that authenticates, as stored.
type salvaged struct {
	items map[hkey][]byte
	id    [storeIDSize]byte
	keys  itemKeys
	lock  *bolt.DB // holds the database's lock; nil if it could not be opened
}

// salvage reads the store in dir as Check describes and returns every item
// that authenticates. With exclusive, it holds the database's lock for
// writing (Repair) until the caller closes sv.lock.
func salvage(dir string, passphrase []byte, exclusive bool) (*CheckReport, *salvaged, error) {
	dbPath, keyPath := filepath.Join(dir, FileName), filepath.Join(dir, KeyFileName)
	r := &CheckReport{DB: dbPath, KeyFile: keyPath, Colls: map[string]int{}}
	if !Exists(dir) {
		return r, nil, ErrNotInitialized
	}

	// The key file: without an intact slot and the passphrase, nothing
	// can be opened.
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return r, nil, fmt.Errorf("cannot read the key file: %w", err)
	}
	best, _, lay, err := scanKeyFile(kb)
	for i := range 2 {
		switch {
		case lay.pos[i].valid:
			r.KeySlots[i] = fmt.Sprintf("ok (seq %d)", lay.pos[i].seq)
		default:
			r.KeySlots[i] = "does not verify (torn or damaged)"
		}
	}
	if err != nil {
		return r, nil, &CorruptError{File: keyPath, Detail: "no slot of it verifies: without it nothing in " + FileName + " can be read; restore it from a backup"}
	}
	kek := deriveKEK(passphrase, best.salt[:], best.kdf)
	dek, err := best.unwrapDEK(kek)
	clear(kek)
	if err != nil {
		return r, nil, err
	}
	sk, err := subkeys(dek)
	clear(dek)
	if err != nil {
		return r, nil, err
	}
	defer clear(sk.table)
	defer clear(sk.index)
	seal, err := chacha20poly1305.NewX(sk.seal)
	if err != nil {
		return r, nil, err
	}
	table, err := chacha20poly1305.NewX(sk.table)
	if err != nil {
		return r, nil, err
	}
	keys, err := best.openTable(table)
	if err != nil {
		return r, nil, &CorruptError{File: keyPath, Detail: fmt.Sprintf("its table does not open (%v)", err)}
	}
	sv := &salvaged{items: map[hkey][]byte{}, id: best.id, keys: keys}

	// The lock, if bbolt can take it (it cannot on a file whose meta pages
	// are both damaged: then no node can run on it either).
	lock, _, lerr := openBoltWith(dbPath, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: !exclusive})
	if errors.Is(lerr, ErrInUse) {
		return r, nil, ErrInUse
	}
	sv.lock = lock
	release := func() {
		if lock != nil {
			lock.Close()
		}
	}

	data, err := os.ReadFile(dbPath)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
		r.Meta = [2]string{"missing: " + FileName + " is not there", "missing"}
	}
	if err != nil {
		release()
		return r, nil, fmt.Errorf("cannot read %s: %w", dbPath, err)
	}

	// verify opens a stored value under its key, its key's successor or
	// the seal key, and returns its collection.
	verify := func(hk hkey, stored []byte) (string, bool) {
		candidates := []cipherAEAD{seal}
		if k, ok := keys[hk]; ok {
			a, _ := chacha20poly1305.NewX(k[:])
			next := nextItemKey(k)
			b, _ := chacha20poly1305.NewX(next[:])
			candidates = []cipherAEAD{a, b, seal}
		}
		for _, a := range candidates {
			if p, err := openItem(a, hk[:], stored); err == nil {
				return string(p.collection), true
			}
		}
		return "", false
	}

	metas, pageSize := readMetas(data)
	for i, m := range metas {
		switch {
		case data == nil:
		case m.valid:
			r.Meta[i] = fmt.Sprintf("ok (transaction %d)", m.txid)
		default:
			r.Meta[i] = "damaged: " + m.problem
		}
	}
	if data != nil && metas[0].valid != metas[1].valid {
		r.Meta[boolIndex(!metas[0].valid)] += " — if it was the newer one, the last change written before it was damaged is lost"
	}
	f := &rawFile{data: data, pageSize: pageSize}
	meta, haveMeta := newestMeta(metas)
	// A meta page with one flipped bit: if it is one transaction newer
	// than the intact one and its tree reads cleanly, it is the newest
	// state, and nothing is lost.
	for i, m := range metas {
		if haveMeta && pageSize > 0 && !m.valid && m.fields && m.txid == meta.txid+1 && m.pageSize == pageSize {
			probe := &CheckReport{Colls: map[string]int{}}
			if ok, _ := walkTree(f, m, best.id, probe, func(hkey, []byte) (string, bool) { return "", true }); ok && probe.MetaRecord == "" {
				meta = m
				r.Meta[i] = fmt.Sprintf("its checksum does not match, but it is whole: transaction %d is taken from it", m.txid)
			}
		}
	}
	walked := false
	var free map[uint64]bool
	if haveMeta && pageSize > 0 {
		walked, free = walkTree(f, meta, best.id, r, func(hk hkey, v []byte) (string, bool) {
			coll, ok := verify(hk, v)
			if ok {
				sv.items[hk] = bytes.Clone(v)
			}
			return coll, ok
		})
	}
	if !walked && data != nil && pageSize == 0 {
		// No meta page tells the page size: try the common ones, keep the
		// one under which most leaves parse.
		bestCount := -1
		for _, ps := range []int{4096, 16384, 65536, 8192, 2048, 1024, 32768} {
			n := 0
			(&rawFile{data: data, pageSize: ps}).scanLeaves(nil, func(kv leafPair) {
				if len(kv.key) == hkeySize {
					n++
				}
			})
			if n > bestCount {
				bestCount, f.pageSize = n, ps
			}
		}
	}
	if !walked && data != nil && f.pageSize > 0 {
		// The tree cannot be trusted whole: search every page that is not
		// known to be free for items that authenticate.
		r.Scanned = true
		found := map[hkey][]byte{}
		f.scanLeaves(free, func(kv leafPair) {
			if len(kv.key) != hkeySize || kv.bucket || len(kv.value) < minStored {
				return
			}
			hk := hkey(kv.key)
			if _, ok := sv.items[hk]; ok {
				return
			}
			if _, ok := verify(hk, kv.value); !ok {
				return
			}
			if prev, ok := found[hk]; ok {
				if bytes.Equal(prev, kv.value) {
					return
				}
				r.Ambiguous++
				pc, _ := storedCoarse(prev)
				nc, _ := storedCoarse(kv.value)
				if nc <= pc {
					return
				}
			}
			found[hk] = bytes.Clone(kv.value)
		})
		for hk, v := range found {
			sv.items[hk] = v
			coll, _ := verify(hk, v)
			r.Colls[coll]++
			r.Damaged = slices.DeleteFunc(r.Damaged, func(h string) bool { return h == hex.EncodeToString(hk[:]) })
		}
	}
	r.Items = len(sv.items)
	if !exclusive {
		release()
		sv.lock = nil
	}
	return r, sv, nil
}

// walkTree walks the tree of meta: the meta record, the items (each given
// to item, which says whether it authenticates and its collection), the
// expiry index and the freelist, noting problems in r. It reports whether
// the whole tree could be read, and the free pages if the freelist could.
func walkTree(f *rawFile, meta rawMeta, id [storeIDSize]byte, r *CheckReport, item func(hkey, []byte) (string, bool)) (ok bool, free map[uint64]bool) {
	ok = true
	seen := map[uint64]bool{0: true, 1: true}
	bad := func(s string) { r.Pages = append(r.Pages, s); ok = false }
	var itemsRoot, expiryRoot, metaRoot *leafPair
	f.walk(meta.root, nil, seen, func(kv leafPair) {
		switch string(kv.key) {
		case bucketItems:
			itemsRoot = &kv
		case bucketExpiry:
			expiryRoot = &kv
		case bucketMeta:
			metaRoot = &kv
		}
	}, bad)
	r.MetaRecord = checkMetaRecord(f, metaRoot, id, seen, bad)
	if itemsRoot == nil || !itemsRoot.bucket || expiryRoot == nil || !expiryRoot.bucket {
		r.MetaRecord = joinProblems(r.MetaRecord, "the items or expiry bucket is missing")
		ok = false
	}
	if itemsRoot != nil && itemsRoot.bucket {
		if root, inline, found := bucketRoot(itemsRoot.value); found {
			var each func(kv leafPair)
			each = func(kv leafPair) {
				if len(kv.key) != hkeySize {
					bad(fmt.Sprintf("an item with a key of %d bytes", len(kv.key)))
					return
				}
				if kv.bucket { // a large value, in a bucket of its own (LargeValue)
					checkLarge(f, kv, seen, bad, each)
					return
				}
				coll, authentic := item(hkey(kv.key), kv.value)
				if !authentic {
					r.Damaged = append(r.Damaged, hex.EncodeToString(kv.key))
					return
				}
				r.Colls[coll]++
			}
			f.walk(root, inline, seen, each, bad)
		}
	}
	if expiryRoot != nil && expiryRoot.bucket {
		if root, inline, found := bucketRoot(expiryRoot.value); found {
			f.walk(root, inline, seen, func(leafPair) {}, bad)
		}
	}
	fl, err := f.freePages(meta.freelist)
	if err != nil {
		r.Pages = append(r.Pages, "the freelist: "+err.Error())
		return ok, nil
	}
	for p := range fl {
		if seen[p] {
			r.Pages = append(r.Pages, fmt.Sprintf("page %d is both in use and free", p))
		}
	}
	return ok, fl
}

// checkLarge walks the bucket of a large item (LargeValue), which must hold
// exactly one value, under the item's own key, and hands it to each.
func checkLarge(f *rawFile, kv leafPair, seen map[uint64]bool, bad func(string), each func(leafPair)) {
	root, inline, ok := bucketRoot(kv.value)
	if !ok {
		bad(fmt.Sprintf("the bucket of item %x is cut short", kv.key))
		return
	}
	var pairs []leafPair
	f.walk(root, inline, seen, func(in leafPair) { pairs = append(pairs, in) }, bad)
	if len(pairs) != 1 || pairs[0].bucket || !bytes.Equal(pairs[0].key, kv.key) {
		bad(fmt.Sprintf("the bucket of item %x holds %d entries, not its value alone", kv.key, len(pairs)))
		return
	}
	each(pairs[0])
}

// checkMetaRecord checks the meta bucket's record against the key file's id.
func checkMetaRecord(f *rawFile, metaRoot *leafPair, id [storeIDSize]byte, seen map[uint64]bool, bad func(string)) string {
	if metaRoot == nil || !metaRoot.bucket {
		return "the meta bucket is missing"
	}
	root, inline, ok := bucketRoot(metaRoot.value)
	if !ok {
		return "the meta bucket is cut short"
	}
	var rec []byte
	f.walk(root, inline, seen, func(kv leafPair) {
		if string(kv.key) == metaKey {
			rec = kv.value
		}
	}, bad)
	switch {
	case rec == nil:
		return "the meta record is missing"
	case len(rec) != metaSize || string(rec[:len(storeMagic)]) != storeMagic:
		return "the meta record is not that of a grapevine store of this version"
	case !bytes.Equal(rec[len(storeMagic):], id[:]):
		return "the meta record names another store than the key file does"
	}
	return ""
}

func joinProblems(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
