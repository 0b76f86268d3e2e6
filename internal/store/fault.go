package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// ErrCorrupt is wrapped by every error that means a file of the store is
// damaged: a page of the database that does not parse, a meta record that is
// wrong, a key file in which no slot verifies. Check says what is intact;
// Repair saves it into a new store.
var ErrCorrupt = errors.New("the store is damaged")

// CorruptError says which file is damaged and how.
type CorruptError struct {
	File   string // the damaged file
	Detail string // what was found
}

func (e *CorruptError) Error() string { return fmt.Sprintf("%s is damaged: %s", e.File, e.Detail) }

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// guard runs fn, which works on the database file at path through bbolt, and
// turns a panic that bbolt raises on a damaged page — or a fault reading the
// file's memory map beyond a damaged page's bounds — into a *CorruptError
// naming the file. A panic that did not start in bbolt is not the file's
// fault and goes on.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true) // a bad page pointer faults: make it a panic here
	defer debug.SetPanicOnFault(old)
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if !fromBolt() {
			panic(r)
		}
		err = &CorruptError{File: path, Detail: fmt.Sprintf("reading it failed (%v)", r)}
	}()
	return fn()
}

// fromBolt reports whether the panic being recovered was raised in bbolt (or
// in the runtime, on bbolt's behalf: an index out of range, a fault).
func fromBolt() bool {
	pc := make([]uintptr, 64)
	n := runtime.Callers(3, pc) // skip Callers, fromBolt, the deferred func
	frames := runtime.CallersFrames(pc[:n])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic" || strings.HasPrefix(f.Function, "runtime.panic") || f.Function == "runtime.sigpanic":
			panicking = true
		case panicking && strings.HasPrefix(f.Function, "runtime."):
		case panicking:
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// Warnings says what Open found wrong that did not stop it: a damaged meta
// page of the database (its last transaction may be lost), items that cannot
// be read. Check and Repair say more.
func (s *Store) Warnings() []string { return s.warnings }

// ErrFilesGone is wrapped by CheckFiles when a file of the open store was
// removed or replaced.
var ErrFilesGone = errors.New("the store's files were removed or replaced")

// fileIDs notes which files the store opened, to tell later whether the
// names still lead to them.
func fileIDs(dbPath string, kf *keyFile) ([2]os.FileInfo, error) {
	var ids [2]os.FileInfo
	var err error
	if ids[0], err = os.Stat(dbPath); err != nil {
		return ids, err
	}
	ids[1], err = kf.f.Stat()
	return ids, err
}

// CheckFiles reports an error wrapping ErrFilesGone if the database or the
// key file the store opened is no longer at its name — deleted, or replaced
// by another file — while the store is open: whatever it writes from then on
// is lost when it closes. A memory store has no files.
func (s *Store) CheckFiles() error {
	if s.kf == nil || s.ids[0] == nil {
		return nil
	}
	paths := [2]string{s.db.(*boltDB).path, s.kf.path}
	for i, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w: %s was deleted while the store was open", ErrFilesGone, p)
		case err != nil:
			return fmt.Errorf("%w: %s cannot be checked: %v", ErrFilesGone, p, err)
		case !os.SameFile(fi, s.ids[i]):
			return fmt.Errorf("%w: %s was replaced by another file while the store was open", ErrFilesGone, p)
		}
	}
	return nil
}
