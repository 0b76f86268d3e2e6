package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
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

The passphrase that unlocks your home comes from --passphrase-file, or the
environment variable GRAPEVINE_PASSPHRASE, or a prompt on a terminal. While
your node runs (grapevine up), commands talk to it through its local API
socket in the home instead, and need no passphrase.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&c.home, "home", "", "home directory (default $GRAPEVINE_HOME, else $XDG_DATA_HOME/grapevine)")
	root.PersistentFlags().StringVar(&c.passphraseFile, "passphrase-file", "", "read the passphrase from this file (first line)")
	root.AddCommand(c.initCmd(), c.idCmd(), c.contactsCmd(), c.sendCmd(), c.messagesCmd(),
		c.envelopesCmd(), c.exportCmd(), c.importCmd(), c.peersCmd(), c.statusCmd(), c.clockCmd())
	// The running node's own commands (up.go, demo.go): add them here.
	root.AddCommand(c.upCmd(), c.demoCmd(), c.simCmd())
	root.AddCommand(c.passphraseCmd(), c.wipeCmd())
	root.AddCommand(c.versionCmd(), c.verifyCmd())
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
// on the terminal without echo (twice when confirm is set).
func (c *cli) passphrase(confirm bool) ([]byte, error) {
	if c.passphraseFile != "" {
		b, err := os.ReadFile(c.passphraseFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read passphrase file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return nil, fmt.Errorf("passphrase file %s is empty", c.passphraseFile)
		}
		return []byte(line), nil
	}
	if p, ok := os.LookupEnv("GRAPEVINE_PASSPHRASE"); ok {
		if p == "" {
			return nil, errors.New("GRAPEVINE_PASSPHRASE is set but empty")
		}
		return []byte(p), nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("no passphrase: set GRAPEVINE_PASSPHRASE, use --passphrase-file FILE, or run on a terminal")
	}
	fmt.Fprint(c.stderr, "Passphrase: ")
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return nil, fmt.Errorf("failed to read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("the passphrase must not be empty")
	}
	if confirm {
		fmt.Fprint(c.stderr, "Repeat passphrase: ")
		q, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return nil, fmt.Errorf("failed to read passphrase: %w", err)
		}
		if string(p) != string(q) {
			return nil, errors.New("the passphrases do not match")
		}
	}
	return p, nil
}

// open unlocks the home for one command, in-process.
func (c *cli) open() (*node.Node, error) {
	home, err := c.homeDir()
	if err != nil {
		return nil, err
	}
	if !store.Exists(home) {
		return nil, fmt.Errorf("no grapevine identity in %s: run `grapevine init --name NAME` first", home)
	}
	pass, err := c.passphrase(false)
	if err != nil {
		return nil, err
	}
	n, err := node.Open(home, pass, node.Options{})
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", home, err)
	}
	return n, nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) table(rows [][]string) {
	w := bufio.NewWriter(c.stdout)
	widths := map[int]int{}
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, r := range rows {
		for i, cell := range r {
			if i == len(r)-1 {
				fmt.Fprintln(w, cell)
			} else {
				fmt.Fprintf(w, "%-*s  ", widths[i], cell)
			}
		}
	}
	w.Flush()
}
