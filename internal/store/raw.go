package store

// A reader of bbolt's file format that checks every bound and never trusts a
// page id: Check and Repair use it on files that bbolt itself may not be able
// to read. It reads what bbolt v1.x writes (little-endian, as on every
// platform Grapevine is built for):
//
//	page:    id u64, flags u16, count u16, overflow u32, then the body
//	meta:    magic u32 (0xED0CDAED), version u32 (2), page size u32, flags u32,
//	         root bucket (root page u64, sequence u64), freelist page u64,
//	         high water page u64, txid u64, FNV-1a 64 of the 56 bytes before
//	branch:  count × (pos u32, key size u32, page u64), pos from the element
//	leaf:    count × (flags u32, pos u32, key size u32, value size u32); flag 1
//	         marks a bucket, whose value is (root page u64, sequence u64) and,
//	         if the root is 0, an inline page
//	freelist: count × page u64 (a count of 0xFFFF means the first u64 is it)

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

const (
	pageHeader    = 16
	branchElem    = 16
	leafElem      = 16
	pageBranch    = 0x01
	pageLeaf      = 0x02
	pageMeta      = 0x04
	pageFreelist  = 0x10
	leafBucket    = 0x01
	boltMagic     = 0xED0CDAED
	boltVersion   = 2
	metaBodySize  = 64
	maxTreeDepth  = 64
	noFreelistPID = 0xffffffffffffffff
)

// rawMeta is one of the two meta pages.
type rawMeta struct {
	valid   bool
	problem string
	// fields is set when the magic and version are right: then the fields
	// below are read even if the checksum does not match (a flipped bit).
	fields   bool
	pageSize int
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark
	txid     uint64
}

// parseMeta reads the meta page that starts at off.
func parseMeta(data []byte, off int) rawMeta {
	if off+pageHeader+metaBodySize > len(data) {
		return rawMeta{problem: "the file is too short to hold it"}
	}
	p := data[off:]
	if binary.LittleEndian.Uint16(p[8:]) != pageMeta {
		return rawMeta{problem: "it is not marked as a meta page"}
	}
	m := p[pageHeader : pageHeader+metaBodySize]
	le := binary.LittleEndian
	switch {
	case le.Uint32(m[0:]) != boltMagic:
		return rawMeta{problem: "its magic number is wrong"}
	case le.Uint32(m[4:]) != boltVersion:
		return rawMeta{problem: fmt.Sprintf("its version is %d, not %d", le.Uint32(m[4:]), boltVersion)}
	}
	h := fnv.New64a()
	h.Write(m[:56])
	meta := rawMeta{valid: true, fields: true, pageSize: int(le.Uint32(m[8:])), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if h.Sum64() != le.Uint64(m[56:]) {
		meta.valid, meta.problem = false, "its checksum does not match"
	}
	return meta
}

// readMetas reads both meta pages: page 0 at offset 0, page 1 at the page
// size that page 0 (or, if it is damaged, a common page size) gives.
func readMetas(data []byte) (metas [2]rawMeta, pageSize int) {
	metas[0] = parseMeta(data, 0)
	sizes := []int{4096, 16384, 65536, 8192, 2048, 1024, 32768}
	if metas[0].valid && validPageSize(metas[0].pageSize) {
		sizes = append([]int{metas[0].pageSize}, sizes...)
	}
	for _, ps := range sizes {
		if m := parseMeta(data, ps); m.valid && m.pageSize == ps {
			metas[1] = m
			break
		}
	}
	if !metas[1].valid {
		metas[1] = parseMeta(data, sizes[0])
	}
	switch {
	case metas[0].valid && validPageSize(metas[0].pageSize):
		pageSize = metas[0].pageSize
	case metas[1].valid && validPageSize(metas[1].pageSize):
		pageSize = metas[1].pageSize
	}
	return metas, pageSize
}

func validPageSize(n int) bool { return n >= 512 && n <= 1<<20 && n&(n-1) == 0 }

// newestMeta is the meta page bbolt uses: the valid one with the higher txid.
func newestMeta(metas [2]rawMeta) (rawMeta, bool) {
	switch {
	case metas[0].valid && metas[1].valid:
		if metas[1].txid > metas[0].txid {
			return metas[1], true
		}
		return metas[0], true
	case metas[0].valid:
		return metas[0], true
	case metas[1].valid:
		return metas[1], true
	}
	return rawMeta{}, false
}

// rawFile is a database file read into memory.
type rawFile struct {
	data     []byte
	pageSize int
}

// page returns the bytes of page id with its overflow, or why it cannot.
func (f *rawFile) page(id uint64) ([]byte, error) {
	if id > uint64(len(f.data)/f.pageSize) {
		return nil, fmt.Errorf("page %d lies beyond the end of the file", id)
	}
	off := int(id) * f.pageSize
	if off+pageHeader > len(f.data) {
		return nil, fmt.Errorf("page %d lies beyond the end of the file", id)
	}
	p := f.data[off:]
	if got := binary.LittleEndian.Uint64(p); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	span := (1 + int(binary.LittleEndian.Uint32(p[12:]))) * f.pageSize
	if span <= 0 || off+span > len(f.data) {
		return nil, fmt.Errorf("page %d runs beyond the end of the file", id)
	}
	return p[:span], nil
}

// leafPair is one key and value of a leaf.
type leafPair struct {
	key, value []byte
	bucket     bool
}

// leafPairs parses the elements of a leaf page (or an inline page).
func leafPairs(p []byte) ([]leafPair, error) {
	if len(p) < pageHeader {
		return nil, fmt.Errorf("a page of %d bytes", len(p))
	}
	n := int(binary.LittleEndian.Uint16(p[10:]))
	if pageHeader+n*leafElem > len(p) {
		return nil, fmt.Errorf("%d elements do not fit in the page", n)
	}
	pairs := make([]leafPair, 0, n)
	for i := range n {
		e := pageHeader + i*leafElem
		le := binary.LittleEndian
		flags, pos := le.Uint32(p[e:]), int(le.Uint32(p[e+4:]))
		ks, vs := int(le.Uint32(p[e+8:])), int(le.Uint32(p[e+12:]))
		start := e + pos
		if pos < 0 || ks < 0 || vs < 0 || start < e || start+ks+vs > len(p) || start+ks+vs < start {
			return pairs, fmt.Errorf("element %d points outside the page", i)
		}
		pairs = append(pairs, leafPair{key: p[start : start+ks], value: p[start+ks : start+ks+vs], bucket: flags&leafBucket != 0})
	}
	return pairs, nil
}

// walk visits the tree rooted at page root (or, for an inline bucket, the
// page inline): fn gets every key and value of its leaves. Problems (a page
// that does not parse, a loop) are reported through bad and the walk goes on
// with what it can read. Every page visited is added to seen.
func (f *rawFile) walk(root uint64, inline []byte, seen map[uint64]bool, fn func(leafPair), bad func(string)) {
	var visit func(id uint64, p []byte, depth int)
	visit = func(id uint64, p []byte, depth int) {
		if depth > maxTreeDepth {
			bad(fmt.Sprintf("page %d: the tree is deeper than %d levels", id, maxTreeDepth))
			return
		}
		flags := binary.LittleEndian.Uint16(p[8:])
		switch {
		case flags&pageLeaf != 0:
			pairs, err := leafPairs(p)
			if err != nil {
				bad(fmt.Sprintf("page %d: %v", id, err))
			}
			for _, kv := range pairs {
				fn(kv)
			}
		case flags&pageBranch != 0:
			n := int(binary.LittleEndian.Uint16(p[10:]))
			if pageHeader+n*branchElem > len(p) {
				bad(fmt.Sprintf("page %d: %d elements do not fit in the page", id, n))
				return
			}
			for i := range n {
				child := binary.LittleEndian.Uint64(p[pageHeader+i*branchElem+8:])
				if seen[child] {
					bad(fmt.Sprintf("page %d: page %d is referenced twice", id, child))
					continue
				}
				cp, err := f.page(child)
				if err != nil {
					bad(fmt.Sprintf("page %d: %v", id, err))
					continue
				}
				seen[child] = true
				visit(child, cp, depth+1)
			}
		default:
			bad(fmt.Sprintf("page %d is neither a branch nor a leaf (flags %#x)", id, flags))
		}
	}
	if root == 0 {
		if len(inline) < pageHeader {
			bad("an inline bucket is cut short")
			return
		}
		visit(0, inline, 0)
		return
	}
	p, err := f.page(root)
	if err != nil {
		bad(err.Error())
		return
	}
	seen[root] = true
	visit(root, p, 0)
}

// bucketRoot reads a bucket's value: its root page, or 0 and its inline page.
func bucketRoot(v []byte) (root uint64, inline []byte, ok bool) {
	if len(v) < 16 {
		return 0, nil, false
	}
	root = binary.LittleEndian.Uint64(v)
	if root == 0 {
		inline = v[16:]
	}
	return root, inline, true
}

// freePages reads the freelist page id.
func (f *rawFile) freePages(id uint64) (map[uint64]bool, error) {
	if id == noFreelistPID {
		return nil, fmt.Errorf("the freelist is not stored")
	}
	p, err := f.page(id)
	if err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint16(p[8:]) != pageFreelist {
		return nil, fmt.Errorf("page %d is not a freelist", id)
	}
	n, idx := int(binary.LittleEndian.Uint16(p[10:])), pageHeader
	if n == 0xFFFF {
		if len(p) < pageHeader+8 {
			return nil, fmt.Errorf("freelist page %d is cut short", id)
		}
		c := binary.LittleEndian.Uint64(p[pageHeader:])
		if c > uint64(len(p)) {
			return nil, fmt.Errorf("freelist page %d claims %d pages", id, c)
		}
		n, idx = int(c), pageHeader+8
	}
	if idx+n*8 > len(p) {
		return nil, fmt.Errorf("freelist page %d claims %d pages", id, n)
	}
	free := make(map[uint64]bool, n)
	for i := range n {
		free[binary.LittleEndian.Uint64(p[idx+i*8:])] = true
	}
	return free, nil
}

// scanLeaves visits every page of the file that parses as a leaf (and the
// inline pages of buckets in them), whatever references it, except the pages
// in skip: the last resort when the tree cannot be walked.
func (f *rawFile) scanLeaves(skip map[uint64]bool, fn func(leafPair)) {
	pages := len(f.data) / f.pageSize
	for id := 2; id < pages; id++ {
		if skip[uint64(id)] {
			continue
		}
		p := f.data[id*f.pageSize : (id+1)*f.pageSize]
		if binary.LittleEndian.Uint64(p) != uint64(id) || binary.LittleEndian.Uint16(p[8:]) != pageLeaf {
			continue
		}
		if ov := int(binary.LittleEndian.Uint32(p[12:])); ov > 0 && (id+1+ov)*f.pageSize <= len(f.data) {
			p = f.data[id*f.pageSize : (id+1+ov)*f.pageSize]
		}
		pairs, _ := leafPairs(p)
		for _, kv := range pairs {
			fn(kv)
			if kv.bucket {
				if root, inline, ok := bucketRoot(kv.value); ok && root == 0 {
					if ip, _ := leafPairs(inline); ip != nil {
						for _, ikv := range ip {
							fn(ikv)
						}
					}
				}
			}
		}
	}
}

// precheck reads the meta pages, the freelist and the root page of the
// database at path as bbolt will on Open, and refuses what would make bbolt
// panic there: a panic halfway through bbolt's Open leaves the file mapped,
// and with it the lock held, until the process exits. It returns the meta
// pages it read.
func precheck(path string) (metas [2]rawMeta, err error) {
	f, err := os.Open(path)
	if err != nil {
		return metas, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return metas, err
	}
	return precheckFile(f, fi.Size(), path)
}

// precheckFile is precheck of the file f of size bytes.
func precheckFile(f io.ReaderAt, size int64, path string) (metas [2]rawMeta, err error) {
	head := make([]byte, min(size, 2*65536+pageHeader+metaBodySize))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return metas, err
	}
	metas, ps := readMetas(head)
	meta, ok := newestMeta(metas)
	if !ok || ps == 0 {
		return metas, nil // bbolt says so itself, without panicking
	}
	corrupt := func(detail string) error { return &CorruptError{File: path, Detail: detail} }
	readPage := func(id uint64, what string) ([]byte, error) {
		off := int64(id) * int64(ps)
		if id < 2 || off < 0 || off+int64(ps) > size {
			return nil, corrupt(fmt.Sprintf("its %s (page %d) lies outside the file (%d bytes)", what, id, size))
		}
		p := make([]byte, ps)
		if _, err := f.ReadAt(p, off); err != nil {
			return nil, err
		}
		if binary.LittleEndian.Uint64(p) != id {
			return nil, corrupt(fmt.Sprintf("its %s (page %d) is damaged", what, id))
		}
		if span := (1 + int64(binary.LittleEndian.Uint32(p[12:]))) * int64(ps); off+span > size {
			return nil, corrupt(fmt.Sprintf("its %s (page %d) runs beyond the end of the file", what, id))
		}
		return p, nil
	}
	if meta.freelist != noFreelistPID {
		p, err := readPage(meta.freelist, "freelist")
		if err != nil {
			return metas, err
		}
		if binary.LittleEndian.Uint16(p[8:]) != pageFreelist {
			return metas, corrupt(fmt.Sprintf("its freelist (page %d) is damaged", meta.freelist))
		}
	}
	p, err := readPage(meta.root, "root page")
	if err != nil {
		return metas, err
	}
	if fl := binary.LittleEndian.Uint16(p[8:]); fl != pageLeaf && fl != pageBranch {
		return metas, corrupt(fmt.Sprintf("its root page (page %d) is damaged", meta.root))
	}
	return metas, nil
}
