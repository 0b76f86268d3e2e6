package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile writes a bundle to path atomically. add is called once with a
// function put that appends one envelope. put fails for an invalid
// envelope (empty or larger than MaxEnvelope); once a put has failed, every
// later put fails and WriteFile fails even if add returns nil, so a bundle
// never silently lacks an envelope. put may not be used after add returns.
//
// The bundle is written to a temporary file in the same directory as path,
// fsynced, closed, renamed over path and the directory is fsynced. On any
// error (including an error from add or put) the temporary file is removed
// and an existing file at path is left untouched. The file has mode 0600.
// count is the number of envelopes written.
func WriteFile(path string, add func(put func(envelope []byte) error) error) (count int, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return 0, fmt.Errorf("bundle: %q: no file name", path)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("bundle: creating temporary file: %w", err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close() // may already be closed; error irrelevant
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return 0, fmt.Errorf("bundle: %w", err)
	}

	w, err := NewWriter(f)
	if err != nil {
		return 0, err
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
		return 0, err
	}
	if putErr != nil {
		// add ignored a failed put: do not write a bundle that silently
		// lacks an envelope.
		return 0, putErr
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("bundle: syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("bundle: closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("bundle: %w", err)
	}
	renamed = true
	// The rename is done: from here the new file is in place, so do not
	// remove tmp (it no longer exists) on a directory-sync error.
	if err := syncDir(dir); err != nil {
		return w.Count(), fmt.Errorf("bundle: %s written but directory sync failed: %w", path, err)
	}
	return w.Count(), nil
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
