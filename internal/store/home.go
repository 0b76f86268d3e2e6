package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ChangePassphrase wraps the data key under a key derived from
// newPassphrase with a fresh salt, in both slots of the key file; the old
// passphrase stops working and nothing else is rewritten (the data key,
// and so every value, stays as it is). kdf gives the Argon2id parameters
// for the new passphrase; its zero value keeps the current ones.
//
// If the first slot cannot be written, nothing changed and the old
// passphrase still opens the store. If only the second cannot be, the new
// passphrase is in effect but the old wrap may survive in the file until
// the next transaction rewrites it; the error says so.
func (s *Store) ChangePassphrase(newPassphrase []byte, kdf KDFParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kf == nil {
		return errors.New("failed to change passphrase: a memory store has none")
	}
	if err := s.flushKeys(); err != nil {
		return fmt.Errorf("failed to change passphrase: %w", err)
	}
	if kdf == (KDFParams{}) {
		kdf = s.kf.hdr.kdf
	}
	if err := kdf.validate(); err != nil {
		return fmt.Errorf("failed to change passphrase: %w", err)
	}
	hdr := s.kf.hdr
	hdr.kdf = kdf
	for _, b := range [][]byte{hdr.salt[:], hdr.wrapNonce[:]} {
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("failed to change passphrase: %w", err)
		}
	}
	kek := deriveKEK(newPassphrase, hdr.salt[:], kdf)
	defer clear(kek)
	if err := hdr.wrapDEK(kek, s.dek); err != nil {
		return fmt.Errorf("failed to change passphrase: %w", err)
	}
	old := s.kf.hdr
	s.kf.hdr = hdr
	// Two single-slot writes rather than one of both, to tell the two
	// failures apart.
	if err := s.kf.write(s.keys, false); err != nil {
		s.kf.hdr = old
		return fmt.Errorf("failed to change passphrase (the old one still holds): %w", err)
	}
	if err := errors.Join(s.kf.write(s.keys, false), s.kf.scrubTail()); err != nil {
		s.keysDirty = true
		return fmt.Errorf("the new passphrase is in effect, but the old wrapped key is not yet overwritten: %w", err)
	}
	return nil
}

// Wipe destroys the store in dir so that nothing in it can be read again
// without a forensic lab, in well under a second whatever the database's
// size: it overwrites the whole key file with random bytes, fsyncs and
// removes it (the data key exists nowhere else, so every value in the
// database is then undecryptable), then removes the database and any
// temporary file of the store, and fsyncs the directory. It works while
// another process has the store open: the key file is not locked. Files
// already gone are not an error; the directory itself is left in place.
func Wipe(dir string) error {
	var errs []error
	if err := shred(filepath.Join(dir, KeyFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("failed to destroy key file: %w", err))
	}
	errs = append(errs, removeStoreFiles(dir))
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to wipe %s: %w", dir, err)
	}
	return nil
}

// shred overwrites a regular file in place with random bytes, fsyncs and
// removes it. Anything else at path (a symlink, say) is only removed, so
// that Wipe never writes outside the home.
func shred(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		if err := overwriteRandom(path); err != nil {
			return err
		}
	}
	return os.Remove(path)
}

func overwriteRandom(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	buf := make([]byte, min(fi.Size(), 1<<20))
	for off := int64(0); off < fi.Size(); off += int64(len(buf)) {
		n := min(int64(len(buf)), fi.Size()-off)
		if _, err := rand.Read(buf[:n]); err != nil {
			return err
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// isStoreFile reports whether a name in a home is one of the store's files
// or a temporary file of one (a name that starts with a store file's name,
// with or without a leading dot).
func isStoreFile(name string) bool {
	name = strings.TrimPrefix(name, ".")
	for _, f := range []string{FileName, KeyFileName} {
		if name == f || strings.HasPrefix(name, f+".") || strings.HasPrefix(name, f+"-") {
			return true
		}
	}
	return false
}

// removeStoreFiles removes the store's files and their temporary files from
// dir.
func removeStoreFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("failed to list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if isStoreFile(e.Name()) && !e.IsDir() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// syncDir fsyncs a directory, so that files created or removed in it stay
// so after a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	return nil
}
