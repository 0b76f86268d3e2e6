package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

func (c *cli) passphraseCmd() *cobra.Command {
	var newFile string
	cmd := &cobra.Command{
		Use:   "passphrase",
		Short: "Change the passphrase that unlocks your home",
		Long: `Change the passphrase that unlocks your home. The current passphrase comes
from --passphrase-file, GRAPEVINE_PASSPHRASE or a prompt, as for every
command; the new one from --new-passphrase-file, or a prompt on a terminal
(asked twice).

Afterwards the old passphrase no longer opens this home. A copy of the home
taken before the change still opens with the old one.

Stop the node first: the passphrase cannot be changed while it runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := c.homeDir()
			if err != nil {
				return err
			}
			if cl, err := api.Dial(home); err == nil {
				cl.Close()
				return fmt.Errorf("the node is running on %s: stop it first (Ctrl-C where it runs), then change the passphrase", home)
			}
			if !store.Exists(home) {
				return fmt.Errorf("no grapevine identity in %s: run `grapevine init --name NAME` first", home)
			}
			old, err := c.passphrase(cmd.Context(), false)
			if err != nil {
				return err
			}
			st, err := store.Open(home, old, store.Options{})
			if errors.Is(err, store.ErrInUse) {
				return fmt.Errorf("%s is in use by a running grapevine node: stop it first, then change the passphrase", home)
			}
			if err != nil {
				return fmt.Errorf("failed to open %s: %w", home, err)
			}
			defer st.Close()
			newPass, err := c.newPassphrase(cmd.Context(), newFile)
			if err != nil {
				return err
			}
			if bytes.Equal(newPass, old) {
				return errors.New("the new passphrase is the current one")
			}
			if err := st.ChangePassphrase(newPass, store.KDFParams{}); err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Changed the passphrase of %s. The old one no longer opens it.\n", home)
			return nil
		},
	}
	cmd.Flags().StringVar(&newFile, "new-passphrase-file", "", "read the new passphrase from this file (first line)")
	return cmd
}

// newPassphrase reads the new passphrase from path, or else asks twice on
// the terminal.
func (c *cli) newPassphrase(ctx context.Context, path string) ([]byte, error) {
	if path != "" {
		p, err := readPassphraseFile(path)
		if err == nil {
			c.warnWeak(p)
		}
		return p, err
	}
	f, ok := c.terminal()
	if !ok {
		return nil, errors.New("no new passphrase: use --new-passphrase-file FILE, or run on a terminal")
	}
	var got [2][]byte
	for i, prompt := range []string{"New passphrase: ", "Repeat new passphrase: "} {
		p, err := c.readSecret(ctx, f, prompt)
		if err != nil {
			return nil, err
		}
		got[i] = p
	}
	switch {
	case len(got[0]) == 0:
		return nil, errors.New("the passphrase must not be empty")
	case !bytes.Equal(got[0], got[1]):
		return nil, errors.New("the passphrases do not match")
	}
	c.warnWeak(got[0])
	return got[0], nil
}

// readPassphraseFile returns the first line of a file, as --passphrase-file
// is read.
func readPassphraseFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read passphrase file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return []byte(line), nil
}
