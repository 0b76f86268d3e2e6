package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// stopWait is how long wipe waits for a running node to stop.
const stopWait = 10 * time.Second

func (c *cli) wipeCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "wipe",
		Short: "Destroy your home: identity, contacts, messages and what it carries",
		Long: `Destroy the store in your home, for good: your identity, your contacts,
your messages and every envelope it carries. It needs no passphrase and
takes well under a second.

The key file, which holds the only copy of the key to everything else, is
overwritten with random bytes and removed; then the database is removed,
and the releases the node kept to share (HOME/releases), which would show
that this device handed Grapevine on.
What it held cannot be read again, with or without the passphrase, short of
a forensic lab recovering old blocks from the disk.

On a terminal it asks you to type WIPE; --yes skips that (for scripts). If
the node is running on this home, it is stopped first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := c.homeDir()
			if err != nil {
				return err
			}
			if !store.Exists(home) {
				return fmt.Errorf("no grapevine store in %s: nothing to wipe", home)
			}
			if !yes {
				answer, err := c.ask(cmd.Context(), fmt.Sprintf("This destroys everything in %s, for good.\nType WIPE to confirm: ", home))
				if err != nil {
					return errors.New("not wiped: confirm on a terminal, or pass --yes")
				}
				if answer != "WIPE" {
					return errors.New("not wiped")
				}
			}
			note := c.stopNode(home)
			if err := store.Wipe(home); err != nil {
				return err
			}
			// What an interrupted init left holds a store too.
			if ents, err := os.ReadDir(home); err == nil {
				for _, e := range ents {
					if e.IsDir() && strings.HasPrefix(e.Name(), initPrefix) {
						dir := filepath.Join(home, e.Name())
						if err := store.Wipe(dir); err != nil {
							return err
						}
						os.RemoveAll(dir)
					}
				}
			}
			if err := os.RemoveAll(filepath.Join(home, shelfDir)); err != nil {
				return fmt.Errorf("failed to remove the shelf of releases: %w", err)
			}
			fmt.Fprintf(c.stdout, "Wiped %s.\n", home)
			if note != "" {
				fmt.Fprintln(c.stderr, note)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// stopNode stops the node running on home, if any, and waits for it to let
// go of the home; it returns what the user should know if that failed. The
// home is wiped either way: the node keeps its keys in memory, but what is
// on disk goes.
func (c *cli) stopNode(home string) string {
	cl, err := api.Dial(home)
	if err != nil {
		return ""
	}
	cl.Close()
	if err := interruptNode(home); err != nil {
		return fmt.Sprintf("The node running on %s could not be stopped (%v): it keeps running without its home. Stop it now (Ctrl-C where it runs).", home, err)
	}
	deadline := time.Now().Add(stopWait)
	for time.Now().Before(deadline) {
		cl, err := api.Dial(home)
		if err != nil {
			break
		}
		cl.Close()
		time.Sleep(50 * time.Millisecond)
	}
	if time.Now().After(deadline) || !waitUnlocked(home, time.Until(deadline)) {
		return fmt.Sprintf("The node running on %s did not stop within %v: it keeps running without its home. Stop it now (Ctrl-C where it runs).", home, stopWait)
	}
	fmt.Fprintf(c.stderr, "Stopped the node running on %s.\n", home)
	return ""
}
