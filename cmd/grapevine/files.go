package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// fileFlags are send's flags for a file.
type fileFlags struct {
	path   string
	asFile bool
}

func (c *cli) sendFile(ctx context.Context, to, caption string, f fileFlags, group bool) error {
	o := node.SendFileOptions{AsFile: f.asFile, Caption: caption}
	return c.withNode(ctx, func(n api.Core) error {
		toGroup := group
		if !toGroup {
			var err error
			if toGroup, err = isGroup(ctx, n, to); err != nil {
				return err
			}
		}
		var id, where string
		var a *node.Attachment
		if toGroup {
			m, err := n.SendGroupFile(ctx, to, f.path, o)
			if err != nil {
				return err
			}
			id, where, a = m.ID, "group "+safe(to), m.Attachment
		} else {
			m, err := n.SendFile(ctx, to, f.path, o)
			if err != nil {
				return notAGroup(err)
			}
			id, where, a = m.ID, safe(m.Contact), m.Attachment
		}
		fmt.Fprintf(c.stdout, "Queued %s to %s: %s (%s, %s) in %d chunks\n", shortID(id), where,
			safe(a.Name), safe(a.MediaType), byteSize(a.Size), a.Chunks)
		return nil
	})
}

// printAttachment shows a message's file: its name, type and size, and how
// far it has come, with a bar.
func (c *cli) printAttachment(m node.Message) {
	a := m.Attachment
	name := a.Name
	if name == "" {
		name = "(no name)"
	}
	fmt.Fprintf(c.stdout, "    file %s (%s, %s) id %s\n", safe(name), safe(a.MediaType), byteSize(a.Size), shortID(m.ID))
	switch {
	case a.Refused != "":
		fmt.Fprintf(c.stdout, "    not fetched: %s\n", safe(a.Refused))
	case m.Direction == "out" && m.Contact == "": // a group's: no receipts
		fmt.Fprintf(c.stdout, "    in %d chunks, carried until they expire\n", a.Chunks)
	case m.Direction == "out":
		fmt.Fprintf(c.stdout, "    %s %d of %d chunks delivered\n", bar(a.Have, a.Chunks), a.Have, a.Chunks)
	case a.Complete:
		fmt.Fprintf(c.stdout, "    %s complete: grapevine save %s PATH\n", bar(a.Have, a.Chunks), shortID(m.ID))
	default:
		fmt.Fprintf(c.stdout, "    %s %s\n", bar(a.Have, a.Chunks), a.Progress())
	}
}

// bar draws k of n as 20 cells.
func bar(k, n int) string {
	const cells = 20
	full := cells
	if n > 0 {
		full = k * cells / n
	}
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", cells-full) + "]"
}

// byteSize says a size in bytes, KiB or MiB.
func byteSize(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", b)
}

func (c *cli) saveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save MESSAGE-ID PATH",
		Short: "Save a file that was sent to you",
		Long: `Write the file of a message (the start of its ID, as grapevine messages shows
it) to PATH, which must not exist. The file is written only once all of it has
arrived and its every byte is checked against what the sender sealed: until
then its bytes stay sealed in your home, like your messages. A photo arrives
re-encoded by the sender's node unless it was sent --as-file; nothing here
opens or runs the file.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				id, err := findAttachment(cmd.Context(), n, args[0])
				if err != nil {
					return err
				}
				a, err := n.SaveAttachment(cmd.Context(), id, args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Saved %s (%s) to %s\n", safe(a.Name), byteSize(a.Size), safe(args[1]))
				return nil
			})
		},
	}
}

// findAttachment resolves the start of a message's ID among those carrying
// a file.
func findAttachment(ctx context.Context, n api.Core, prefix string) (string, error) {
	ms, err := n.Attachments(ctx, "")
	if err != nil {
		return "", err
	}
	var found []string
	add := func(id, dir string) {
		if dir == "in" && strings.HasPrefix(id, strings.ToLower(prefix)) {
			found = append(found, id)
		}
	}
	for _, m := range ms {
		add(m.ID, m.Direction)
	}
	gs, err := n.Groups(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range gs {
		posts, err := n.GroupMessages(ctx, g.ID)
		if err != nil {
			return "", err
		}
		for _, p := range posts {
			if p.Attachment != nil {
				add(p.ID, p.Direction)
			}
		}
	}
	switch {
	case prefix == "" || len(found) == 0:
		return "", fmt.Errorf("no file was sent to you in a message whose ID starts with %q: grapevine messages shows them", prefix)
	case len(found) > 1:
		return "", fmt.Errorf("%d messages with files have IDs starting with %q: give more of the ID", len(found), prefix)
	}
	return found[0], nil
}
