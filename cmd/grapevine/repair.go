package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// offline checks that no node runs on the home and that it holds a store,
// for the commands that work on the files themselves.
func (c *cli) offline(what string) (string, error) {
	home, err := c.homeDir()
	if err != nil {
		return "", err
	}
	if err := c.checkHome(home); err != nil {
		return "", err
	}
	if cl, err := api.Dial(home); err == nil {
		cl.Close()
		return "", fmt.Errorf("the node is running on %s: stop it first (Ctrl-C where it runs), then %s", home, what)
	}
	if !store.Exists(home) {
		return "", fmt.Errorf("no grapevine store in %s", home)
	}
	return home, nil
}

func (c *cli) checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check the store for damage: every page and every sealed item",
		Long: `Read the whole store without changing it: both slots of the key file, both
meta pages of the database, every page of its tree, and every item, which must
open under its key. It needs the passphrase, and the node stopped.

If something is damaged, grapevine repair saves what is intact into a new
store and keeps the damaged files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := c.offline("check it")
			if err != nil {
				return err
			}
			pass, err := c.passphrase(cmd.Context(), false)
			if err != nil {
				return err
			}
			rep, err := store.Check(home, pass)
			if rep != nil {
				c.printCheck(rep)
			}
			switch {
			case errors.Is(err, store.ErrInUse):
				return fmt.Errorf("%s is in use by another grapevine process: stop it first", home)
			case err != nil:
				return err
			case !rep.OK():
				return errors.New("the store is damaged: `grapevine repair` saves what is intact into a new store and keeps the damaged files")
			}
			fmt.Fprintln(c.stdout, "The store is intact.")
			return nil
		},
	}
}

func (c *cli) printCheck(r *store.CheckReport) {
	rows := [][]string{
		{"key file:", r.KeyFile},
		{"  slot A:", r.KeySlots[0]},
		{"  slot B:", r.KeySlots[1]},
		{"database:", r.DB},
		{"  meta page 0:", r.Meta[0]},
		{"  meta page 1:", r.Meta[1]},
	}
	if r.MetaRecord != "" {
		rows = append(rows, []string{"  meta record:", r.MetaRecord})
	}
	pages := "ok"
	if len(r.Pages) > 0 {
		pages = fmt.Sprintf("%d problems", len(r.Pages))
	}
	rows = append(rows, []string{"  pages:", pages})
	for _, p := range r.Pages[:min(len(r.Pages), 20)] {
		rows = append(rows, []string{"", p})
	}
	if len(r.Pages) > 20 {
		rows = append(rows, []string{"", fmt.Sprintf("… and %d more", len(r.Pages)-20)})
	}
	items := fmt.Sprintf("%d intact", r.Items)
	if len(r.Damaged) > 0 {
		items += fmt.Sprintf(", %d damaged (they do not open under their keys)", len(r.Damaged))
	}
	if r.Scanned {
		items += " (the tree is damaged: found by searching every page)"
	}
	if r.Ambiguous > 0 {
		items += fmt.Sprintf(", %d found in two versions (the later taken)", r.Ambiguous)
	}
	rows = append(rows, []string{"  items:", items})
	for _, coll := range slices.Sorted(mapKeys(r.Colls)) {
		rows = append(rows, []string{"", fmt.Sprintf("%s: %d", coll, r.Colls[coll])})
	}
	c.table(rows)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (c *cli) repairCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "repair",
		Short: "Save every intact item of a damaged store into a new one (the old files are kept)",
		Long: `Save every item of the store that is intact — that opens under its key — into a
new database, and keep the damaged one beside it as grapevine.db.damaged-TIME
(with a copy of the key file, grapevine.key.damaged-TIME, which opens it).
Items on damaged pages are lost; so is everything if no slot of the key file
is intact (restore it from a backup). It needs the passphrase, and the node
stopped. grapevine wipe removes the kept files too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := c.offline("repair it")
			if err != nil {
				return err
			}
			pass, err := c.passphrase(cmd.Context(), false)
			if err != nil {
				return err
			}
			rep, err := store.Repair(home, pass, time.Now())
			if err != nil {
				if rep != nil && rep.KeyFile != "" {
					c.printCheck(&rep.CheckReport)
				}
				if errors.Is(err, store.ErrInUse) {
					return fmt.Errorf("%s is in use by another grapevine process: stop it first", home)
				}
				return fmt.Errorf("failed to repair %s: %w", home, err)
			}
			c.printCheck(&rep.CheckReport)
			fmt.Fprintf(c.stdout, "Saved %d intact items into a new %s.\n", rep.Items, store.FileName)
			if rep.KeptDB != "" {
				fmt.Fprintf(c.stdout, "The damaged files are kept: %s and %s.\n", rep.KeptDB, rep.KeptKey)
			}
			// Open it as a node would: that also brings the key file in line.
			n, err := c.open(cmd.Context())
			if err != nil {
				return fmt.Errorf("the repaired store does not open: %w", err)
			}
			return n.Close()
		},
	}
}
