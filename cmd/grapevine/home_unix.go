//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/grapevine-mesh/grapevine/internal/store"
)

// checkHome refuses a home that someone else controls — owned by another
// user, or writable by group or others, who could then replace its files or
// its API socket — and makes one that others can only read owner-only (its
// files are sealed, but names and sizes are nobody's business), saying so.
// A home that does not exist yet is fine: it is created 0700.
func (c *cli) checkHome(home string) error {
	fi, err := os.Stat(home)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // it is created 0700
	}
	if err != nil {
		return fmt.Errorf("cannot use the home %s: %w", home, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the home %s is not a directory", home)
	}
	uid := os.Geteuid()
	if err := ownedBy(home, fi, uid); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("the home %s can be written by others (mode %04o): they could replace its files or its socket, so grapevine will not use it. "+
			"If you trust what is in it, make it yours alone: chmod 700 %s", home, perm, home)
	} else if perm&0o077 != 0 {
		if err := os.Chmod(home, perm&0o700); err != nil {
			return fmt.Errorf("the home %s can be read by others (mode %04o) and could not be restricted: %w", home, perm, err)
		}
		fmt.Fprintf(c.stderr, "Note: the home %s could be read by others (mode %04o); it is now yours alone (%04o).\n", home, perm, perm&0o700)
	}
	for _, name := range []string{store.FileName, store.KeyFileName} {
		p := filepath.Join(home, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot check %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (it is %v): grapevine will not use it", p, fi.Mode().Type())
		}
		if err := ownedBy(p, fi, uid); err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("%s can be read or written by others (mode %04o) and could not be restricted: %w", p, perm, err)
			}
			fmt.Fprintf(c.stderr, "Note: %s was mode %04o; it is now 0600.\n", p, perm)
		}
	}
	return c.recoverInit(home)
}

func ownedBy(path string, fi fs.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == uid {
		return nil
	}
	return fmt.Errorf("%s belongs to user %d, not to you (user %d): grapevine will not use a home another user controls. "+
		"Use a home of your own (--home), or run as its owner (sudo -u)", path, st.Uid, uid)
}

func isWindows() bool { return false }
