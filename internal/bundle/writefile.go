package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// CreateOptions say how Create treats what is already at the path.
type CreateOptions struct {
	// Replace lets Create replace a regular file at the path. Without it, a
	// path where anything exists fails with an error wrapping fs.ErrExist.
	// Nothing but a regular file is ever replaced: not a directory, a
	// device, a pipe, a socket or a symbolic link.
	Replace bool
	// Now names a bundle written into a directory (default time.Now).
	Now func() time.Time
}

// tempPrefix and tempSuffix name Create's temporary files, so that those of
// a writer that was killed can be recognised and removed.
const (
	tempPrefix = ".grapevine-export-"
	tempSuffix = ".tmp"
	// StaleTemp is how old (since its last write) a temporary file must be
	// for Create to take it for the leftover of a killed writer and remove
	// it. A live writer writes far more often.
	StaleTemp = 15 * time.Minute
)

// Create writes a new bundle at path, atomically, and returns the path it
// wrote. If path is a directory (a USB stick's mount point, say), the bundle
// goes into it under a new name, grapevine-YYYYMMDD-HHMMSS.gvb (with -2, -3,
// … if that exists). add is called once with a function put that appends one
// envelope. put fails for an invalid envelope (empty or larger than
// MaxEnvelope); once a put has failed, every later put fails and Create fails
// even if add returns nil, so a bundle never silently lacks an envelope. put
// may not be used after add returns.
//
// The bundle is written to a temporary file in the target directory
// (.grapevine-export-*.tmp), fsynced and closed, then put in place — with a
// hard link that fails if the name was taken meanwhile, or, where the file
// system has no hard links (FAT on a USB stick), a rename after checking the
// name is free — and the directory is fsynced. On any error (including one
// from add or put) the temporary file is removed and whatever was at path is
// untouched. Temporary files that an earlier, killed writer left in the
// directory (unwritten for StaleTemp) are removed first. The file has mode
// 0600.
func Create(path string, o CreateOptions, add func(put func(envelope []byte) error) error) (written string, count int, err error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	fi, statErr := os.Stat(path)
	intoDir := statErr == nil && fi.IsDir()
	dir, base := filepath.Split(path)
	if intoDir {
		dir, base = path, ""
	} else if base == "" || base == "." || base == ".." {
		return "", 0, fmt.Errorf("%q names no file: give a file name or a directory", path)
	}
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", 0, fmt.Errorf("cannot write into %s: %w", dir, err)
	} else if !fi.IsDir() {
		return "", 0, fmt.Errorf("cannot write into %s: not a directory", dir)
	}
	if !intoDir {
		if err := replaceable(path, o.Replace); err != nil {
			return "", 0, err
		}
	}
	removeStaleTemps(dir, now())

	f, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return "", 0, fmt.Errorf("failed to create a file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close() // error irrelevant: the file goes
		}
		os.Remove(tmp) // gone already once linked and removed, or renamed
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return "", 0, fmt.Errorf("failed to restrict %s: %w", tmp, err)
	}

	w, err := NewWriter(f)
	if err != nil {
		return "", 0, err
	}
	done := false
	var putErr error
	put := func(envelope []byte) error {
		if done {
			return errors.New("bundle: put called after add returned")
		}
		if putErr != nil {
			return putErr
		}
		putErr = w.Add(envelope)
		return putErr
	}
	err = add(put)
	done = true
	if err != nil {
		return "", 0, err
	}
	if putErr != nil {
		// add ignored a failed put: do not write a bundle that silently
		// lacks an envelope.
		return "", 0, putErr
	}
	if err := w.Close(); err != nil {
		return "", 0, fmt.Errorf("failed to write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("failed to write %s: %w", tmp, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", 0, fmt.Errorf("failed to write %s: %w", tmp, err)
	}

	if intoDir {
		stamp := now().Format("20060102-150405")
		for i := 1; ; i++ {
			name := "grapevine-" + stamp + ".gvb"
			if i > 1 {
				name = fmt.Sprintf("grapevine-%s-%d.gvb", stamp, i)
			}
			path = filepath.Join(dir, name)
			err = place(tmp, path, false)
			if !errors.Is(err, fs.ErrExist) || i == 1000 {
				break
			}
		}
	} else {
		err = place(tmp, path, o.Replace)
	}
	if err != nil {
		return "", 0, err
	}
	if err := syncDir(dir); err != nil {
		return path, w.Count(), fmt.Errorf("%s is written but its directory could not be synced: %w", path, err)
	}
	return path, w.Count(), nil
}

// WriteFile writes a bundle to path as Create does, replacing a regular
// file there. It returns the number of envelopes written.
func WriteFile(path string, add func(put func(envelope []byte) error) error) (count int, err error) {
	_, count, err = Create(path, CreateOptions{Replace: true}, add)
	return count, err
}

// replaceable checks what is at path: nothing, or a regular file if
// replace is set.
func replaceable(path string, replace bool) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("cannot check %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return &ExistsError{Path: path, What: kind(fi.Mode())}
	case !replace:
		return &ExistsError{Path: path}
	}
	return nil
}

// ExistsError is what Create returns for a path it will not write over: a
// file, without CreateOptions.Replace, or anything but a regular file. It
// wraps fs.ErrExist.
type ExistsError struct {
	Path string
	What string // "a device", "a directory", …; empty for a regular file
}

func (e *ExistsError) Error() string {
	if e.What != "" {
		return fmt.Sprintf("%s is %s, not a regular file: it is never replaced", e.Path, e.What)
	}
	return fmt.Sprintf("%s exists and is not replaced unless asked", e.Path)
}

func (e *ExistsError) Unwrap() error { return fs.ErrExist }

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// place puts the finished temporary file tmp at path. Without replace, a
// hard link claims the name only if it is free; on a file system without
// hard links, a rename follows a check (a writer that takes the name in
// between is overwritten: nothing else writes bundles there at that moment
// in practice). With replace, a rename replaces a regular file.
func place(tmp, path string, replace bool) error {
	if replace {
		if err := replaceable(path, true); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("failed to put the bundle in place: %w", err)
		}
		return nil
	}
	err := os.Link(tmp, path)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return replaceable(path, false)
	}
	// No hard links here (FAT, some network file systems): check, then rename.
	if err := replaceable(path, false); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to put the bundle in place: %w", err)
	}
	return nil
}

// removeStaleTemps removes temporary files of killed writers in dir.
func removeStaleTemps(dir string, now time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, tempPrefix) || !strings.HasSuffix(name, tempSuffix) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > StaleTemp {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

// syncDir fsyncs a directory so a rename in it is durable. Windows cannot
// open directories for syncing; there it is a no-op.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
