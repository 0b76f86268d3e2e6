package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
	"github.com/grapevine-mesh/grapevine/internal/termtext"
)

// cli holds what every command shares: streams and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	home           string
	passphraseFile string
}

func newRoot(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "grapevine",
		Short: "An offline-first, end-to-end encrypted, delay-tolerant mesh messenger",
		Long: `Grapevine carries sealed envelopes between devices, store-and-forward, over
whatever link exists — the local network, an address on the internet, a bundle
file on a USB stick — until each reaches its recipient. No server, no account,
no phone number. Start with ` + "`grapevine up`" + ` (or ` + "`grapevine demo`" + ` for a first look).

The passphrase that unlocks your home is asked on the terminal, or read
from --passphrase-file (scripts may also set GRAPEVINE_PASSPHRASE). While
your node runs (grapevine up), commands talk to it through its local API
socket in the home instead, and need no passphrase.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&c.home, "home", "", "home directory (default $GRAPEVINE_HOME, else $XDG_DATA_HOME/grapevine)")
	root.PersistentFlags().StringVar(&c.passphraseFile, "passphrase-file", "", "read the passphrase from this file (first line)")
	root.AddCommand(c.initCmd(), c.idCmd(), c.contactsCmd(), c.sendCmd(), c.messagesCmd(), c.groupsCmd(), c.channelsCmd(), c.nearbyCmd(), c.announceCmd(),
		c.envelopesCmd(), c.exportCmd(), c.importCmd(), c.peersCmd(), c.statusCmd(), c.clockCmd(), c.settingsCmd())
	// The running node's own commands (up.go, demo.go): add them here.
	root.AddCommand(c.upCmd(), c.demoCmd(), c.simCmd())
	root.AddCommand(c.passphraseCmd(), c.wipeCmd())
	root.AddCommand(c.uiCmd(), c.chatCmd()) // ui.go, chat.go
	root.AddCommand(c.versionCmd(), c.verifyCmd(), c.shareCmd())
	root.AddCommand(c.saveCmd()) // files.go
	root.AddCommand(c.checkCmd(), c.repairCmd())
	root.Version = readBuildInfo().String()
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}

// homeDir resolves --home, then $GRAPEVINE_HOME, then the XDG data directory.
func (c *cli) homeDir() (string, error) {
	if c.home != "" {
		return c.home, nil
	}
	if h := os.Getenv("GRAPEVINE_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "grapevine"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("cannot find a home directory: use --home or set GRAPEVINE_HOME")
	}
	return filepath.Join(h, ".local", "share", "grapevine"), nil
}

// passphrase reads --passphrase-file, else $GRAPEVINE_PASSPHRASE, else asks
// on the terminal without echo (twice when confirm is set; then a weak one
// earns a warning). Ctrl-C at the prompt gives up.
func (c *cli) passphrase(ctx context.Context, confirm bool) ([]byte, error) {
	var p []byte
	if c.passphraseFile != "" {
		b, err := readPassphraseFile(c.passphraseFile)
		if err != nil {
			return nil, err
		}
		p = b
	} else if env, ok := os.LookupEnv("GRAPEVINE_PASSPHRASE"); ok {
		if env == "" {
			return nil, errors.New("GRAPEVINE_PASSPHRASE is set but empty")
		}
		p = []byte(env)
	} else {
		f, ok := c.terminal()
		if !ok {
			return nil, errors.New("no passphrase: run on a terminal to type it, or use --passphrase-file FILE (or GRAPEVINE_PASSPHRASE in scripts)")
		}
		var err error
		if p, err = c.readSecret(ctx, f, "Passphrase: "); err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, errors.New("the passphrase must not be empty")
		}
		if confirm {
			q, err := c.readSecret(ctx, f, "Repeat passphrase: ")
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(p, q) {
				return nil, errors.New("the passphrases do not match")
			}
		}
	}
	if confirm {
		c.warnWeak(p)
	}
	return p, nil
}

// open unlocks the home for one command, in-process.
func (c *cli) open(ctx context.Context) (*node.Node, error) {
	home, err := c.homeDir()
	if err != nil {
		return nil, err
	}
	if err := c.checkHome(home); err != nil {
		return nil, err
	}
	if !store.Exists(home) {
		return nil, fmt.Errorf("no grapevine identity in %s: run `grapevine init --name NAME` first", home)
	}
	pass, err := c.passphrase(ctx, false)
	if err != nil {
		return nil, err
	}
	return c.openNode(home, pass, 0)
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows as aligned columns: cells rendered safely, aligned by
// the width they take on a terminal (termtext.Table).
func (c *cli) table(rows [][]string) {
	io.WriteString(c.stdout, termtext.Table(rows))
}
