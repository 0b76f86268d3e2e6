package store

import (
	"bytes"
	"cmp"
	"math"
	"slices"
)

// hkey is an item's key on disk.
type hkey = [hkeySize]byte

// directory tells which items belong to which collection, and each item's
// exact expiry, neither of which the disk shows in clear: all items share
// one bucket and carry only a coarse expiry. Open builds it with one pass
// over the items; every write transaction keeps it up to date and undoes
// its changes if it rolls back. Store.mu guards it: readers share it,
// a writer has it alone.
type directory struct {
	// colls is only ever looked up by name or walked to find one hkey,
	// never to produce output, so map order cannot leak into anything.
	colls map[string]collDir
	total int // items in all collections
	// nextDue is never after the earliest exact expiry in colls, so that a
	// memory store's Sweep, which works from the directory, knows when
	// there is nothing to do without looking (anyDue). set and undo lower
	// it; only sweepExact, which looks at every expiry, raises it.
	nextDue uint64
}

// collDir maps the hkeys of one collection to their exact expiries (Unix
// seconds).
type collDir map[hkey]uint64

// dirUndo reverses one change to a collection.
type dirUndo struct {
	cd      collDir
	hk      hkey
	exp     uint64
	existed bool
}

func newDirectory() directory {
	return directory{colls: make(map[string]collDir), nextDue: math.MaxUint64}
}

// coll returns the collection's map, creating it if asked to.
func (d *directory) coll(name string, create bool) collDir {
	cd := d.colls[name]
	if cd == nil && create {
		cd = make(collDir)
		d.colls[name] = cd
	}
	return cd
}

// set records that hk is in cd with expiry exp, and returns how to undo it.
func (d *directory) set(cd collDir, hk hkey, exp uint64) dirUndo {
	old, existed := cd[hk]
	cd[hk] = exp
	if !existed {
		d.total++
	}
	d.nextDue = min(d.nextDue, exp)
	return dirUndo{cd: cd, hk: hk, exp: old, existed: existed}
}

// remove drops hk from cd, and returns how to undo it.
func (d *directory) remove(cd collDir, hk hkey) (dirUndo, bool) {
	old, existed := cd[hk]
	if !existed {
		return dirUndo{}, false
	}
	delete(cd, hk)
	d.total--
	return dirUndo{cd: cd, hk: hk, exp: old, existed: true}, true
}

// find returns the collection holding hk, if any. It walks the collections:
// a node has a handful, and only Sweep needs this.
func (d *directory) find(hk hkey) (collDir, uint64, bool) {
	for _, cd := range d.colls {
		if exp, ok := cd[hk]; ok {
			return cd, exp, true
		}
	}
	return nil, 0, false
}

// undo replays changes backwards.
func (d *directory) undo(log []dirUndo) {
	for i := len(log) - 1; i >= 0; i-- {
		u := log[i]
		_, present := u.cd[u.hk]
		switch {
		case u.existed:
			u.cd[u.hk] = u.exp
			if !present {
				d.total++
			}
			d.nextDue = min(d.nextDue, u.exp)
		case present:
			delete(u.cd, u.hk)
			d.total--
		}
	}
}

// live returns the hkeys in cd whose expiry is after now, in hkey order
// (the order of the items on disk, so ForEach's order is stable).
func (cd collDir) live(now uint64) []hkey {
	out := make([]hkey, 0, len(cd))
	for hk, exp := range cd {
		if exp > now {
			out = append(out, hk)
		}
	}
	slices.SortFunc(out, func(a, b hkey) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// dueItem is an item whose exact expiry has passed, as sweepExact finds it.
type dueItem struct {
	exp uint64
	hk  hkey
	cd  collDir
}

// due returns the items whose exact expiry is at or before now, ordered by
// expiry and then hkey (the order of a file store's expiry index, and one
// that map order cannot change), and the earliest expiry of the others.
func (d *directory) due(now uint64) (due []dueItem, next uint64) {
	next = math.MaxUint64
	for _, cd := range d.colls {
		for hk, exp := range cd {
			if exp <= now {
				due = append(due, dueItem{exp, hk, cd})
			} else {
				next = min(next, exp)
			}
		}
	}
	slices.SortFunc(due, func(a, b dueItem) int {
		if c := cmp.Compare(a.exp, b.exp); c != 0 {
			return c
		}
		return bytes.Compare(a.hk[:], b.hk[:])
	})
	return due, next
}
