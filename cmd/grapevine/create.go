package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// A new identity is made in a directory of its own inside the home,
// .grapevine-init-*, and moved into the home only once it is complete (a
// file named "complete" says so), so that a process killed halfway leaves a
// home that init and up both accept: recoverInit, run by every command that
// uses the home, finishes a complete one and removes an incomplete one.
const (
	initPrefix   = ".grapevine-init-"
	initComplete = "complete"
	// initStale is how old an incomplete one must be to be taken for the
	// leftover of a killed process rather than an init at work.
	initStale = time.Minute
)

// create makes a new identity in home and opens it. The name (asked on the
// terminal if empty and ask is set) is checked before the passphrase is
// asked; the passphrase is asked twice, and a weak one earns a warning.
func (c *cli) create(ctx context.Context, home, name string, cfg node.Config, ask bool) (*node.Node, error) {
	if name == "" && ask {
		var err error
		if name, err = c.ask(ctx, "Your name (what contacts see when you add them): "); err != nil {
			if errors.Is(err, errInterrupted) {
				return nil, err
			}
			return nil, fmt.Errorf("no identity in %s and no --name: give one with --name NAME, or run on a terminal to be asked", home)
		}
	}
	if _, err := keys.NormalizeName(name); err != nil {
		return nil, fmt.Errorf("invalid name %q: %w", name, err)
	}
	pass, err := c.passphrase(ctx, true)
	if err != nil {
		return nil, err
	}
	if err := createAtomically(home, pass, name, cfg); err != nil {
		return nil, err
	}
	return c.openNode(home, pass, 0)
}

// createAtomically builds the store in a directory inside home and moves
// its two files into home once complete.
func createAtomically(home string, pass []byte, name string, cfg node.Config) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("failed to create %s: %w", home, err)
	}
	if store.Exists(home) {
		return fmt.Errorf("%s already holds a grapevine identity", home)
	}
	tmp, err := os.MkdirTemp(home, initPrefix+"*")
	if err != nil {
		return fmt.Errorf("failed to create identity: %w", err)
	}
	defer os.RemoveAll(tmp) // empty once moved; a failure leaves nothing
	n, err := node.Init(tmp, pass, name, cfg, node.Options{})
	if err != nil {
		return fmt.Errorf("failed to create identity: %w", err)
	}
	if err := n.Close(); err != nil {
		return fmt.Errorf("failed to create identity: %w", err)
	}
	if err := writeSynced(filepath.Join(tmp, initComplete)); err != nil {
		return fmt.Errorf("failed to create identity: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("failed to create identity: %w", err)
	}
	return finishInit(home, tmp)
}

// finishInit moves the store files of a complete init directory into home
// (those not moved yet), syncs home and removes the directory.
func finishInit(home, tmp string) error {
	for _, name := range []string{store.KeyFileName, store.FileName} {
		from, to := filepath.Join(tmp, name), filepath.Join(home, name)
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue // moved already
		}
		if _, err := os.Lstat(to); err == nil {
			return fmt.Errorf("%s holds %s already: the identity made in %s is left there", home, name, tmp)
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("failed to move the new identity into %s: %w", home, err)
		}
	}
	if err := syncDir(home); err != nil {
		return fmt.Errorf("failed to create identity: %w", err)
	}
	return os.RemoveAll(tmp)
}

// recoverInit finishes or removes what an init killed halfway left in home.
func (c *cli) recoverInit(home string) error {
	ents, err := os.ReadDir(home)
	if err != nil {
		return nil // no home yet, or checkHome says why
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), initPrefix) {
			continue
		}
		tmp := filepath.Join(home, e.Name())
		if _, err := os.Stat(filepath.Join(tmp, initComplete)); err == nil {
			if err := finishInit(home, tmp); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "Note: finished creating the identity that an interrupted init left in %s.\n", home)
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > initStale {
			store.Wipe(tmp) // it holds keys: destroy them as wipe would
			os.RemoveAll(tmp)
		}
	}
	return nil
}

// openNode opens the store of home as a node, waiting at most lock for
// another process that holds it (0: the default).
func (c *cli) openNode(home string, pass []byte, lock time.Duration) (*node.Node, error) {
	n, err := node.Open(home, pass, node.Options{LockTimeout: lock})
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return nil, fmt.Errorf("failed to open %s: %w\n`grapevine check` shows what is intact; `grapevine repair` saves it into a new store and keeps the damaged files", home, err)
	case errors.Is(err, store.ErrInUse):
		return nil, fmt.Errorf("failed to open %s: %w", home, err)
	case err != nil:
		return nil, fmt.Errorf("failed to open %s: %w", home, err)
	}
	for _, w := range n.StoreWarnings() {
		fmt.Fprintf(c.stderr, "WARNING: %s. `grapevine check` says more.\n", w)
	}
	c.giveShelf(n, home) // share_mesh.go
	return n, nil
}

// writeSynced creates an empty file and syncs it.
func writeSynced(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory, so that renames in it are durable (not on
// Windows, which cannot open directories).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !isWindows() {
		return err
	}
	return nil
}
