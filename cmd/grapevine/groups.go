package main

// Private groups (SPEC §15) on the command line: grapevine groups ...,
// send --group, messages GROUP.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/termtext"
)

// groupList is what `groups --json` prints.
type groupList struct {
	Groups      []node.RoomConversation `json:"groups"`
	Invitations []node.RoomInvitation   `json:"invitations"`
}

func (c *cli) groupsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "groups [--json]",
		Short: "List your private groups and invitations; create and change groups",
		Long: `List the private groups you are in, newest activity first, with their posts and
the newest post's time and writer; then the invitations you received.

A group is end-to-end encrypted among its members: each post is one envelope,
which relays carry without learning the group, its members or the writer.
An admin invites contacts (groups add); each invitee joins (groups join), and
the admin's node then adds them and hands every member the group's new keys
over their pairwise sessions: every member must be an active contact of the
admin who makes a change. Removing a member gives the group new keys that
the removed member never receives.

A group is named by its name or the start of its ID (4 characters or more);
a contact by its name or the start of its fingerprint. remove and admin also
take a member who is not your contact by the start of its fingerprint, as
groups show lists it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				gs, err := n.Groups(cmd.Context())
				if err != nil {
					return err
				}
				inv, err := n.GroupInvitations(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					l := groupList{Groups: gs, Invitations: inv}
					if l.Groups == nil {
						l.Groups = []node.RoomConversation{}
					}
					if l.Invitations == nil {
						l.Invitations = []node.RoomInvitation{}
					}
					return c.printJSON(l)
				}
				if len(gs) == 0 && len(inv) == 0 {
					fmt.Fprintln(c.stdout, "No groups yet: start one with `grapevine groups create NAME`.")
					return nil
				}
				if len(gs) > 0 {
					rows := [][]string{{"NAME", "ID", "MEMBERS", "EPOCH", "ROLE", "POSTS", "LAST"}}
					for _, g := range gs {
						role := "member"
						if g.Admin {
							role = "admin"
						}
						last := "-"
						if g.Last != nil {
							last = g.Last.Time.Local().Format("2006-01-02 15:04") + " " + g.Last.Sender
						}
						rows = append(rows, []string{g.Name, g.ID[:8], fmt.Sprint(len(g.Members)), fmt.Sprint(g.Epoch), role,
							fmt.Sprint(g.Posts), last})
					}
					c.table(rows)
				}
				if len(inv) > 0 {
					if len(gs) > 0 {
						fmt.Fprintln(c.stdout)
					}
					fmt.Fprintln(c.stdout, "Invitations (join with `grapevine groups join GROUP`):")
					rows := [][]string{}
					for _, i := range inv {
						rows = append(rows, []string{"  " + i.Name, i.Room[:8], "from " + i.From})
					}
					c.table(rows)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {groups: [{id, name, epoch, admin, members: [{name, fingerprint, admin}], posts, last}], invitations: [{room, name, from}]}; groups newest activity first")

	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Start a private group, with you as its only member and admin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				g, err := n.CreateGroup(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Created group %s (%s); invite contacts with `grapevine groups add %s CONTACT...`\n",
						safe(g.Name), g.ID[:8], g.ID[:8])
				}
				return err
			})
		},
	}
	add := &cobra.Command{
		Use:   "add GROUP CONTACT...",
		Short: "Invite contacts into a group you administer",
		Long: `Invite contacts into a group you administer. Each must be an active contact.
An invitee's node lists the invitation (grapevine groups); once they join
(grapevine groups join GROUP), your node adds them and gives every member the
group's new keys. Contacts already in the group are refused.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				var errs []error
				for _, who := range args[1:] {
					if err := n.InviteToGroup(cmd.Context(), args[0], who); err != nil {
						errs = append(errs, fmt.Errorf("failed to invite %s: %w", who, err))
						continue
					}
					fmt.Fprintf(c.stdout, "Invited %s to %s; they join with `grapevine groups join`\n", safe(who), safe(args[0]))
				}
				return errors.Join(errs...)
			})
		},
	}
	join := &cobra.Command{
		Use:   "join GROUP",
		Short: "Join a group you were invited to",
		Long: `Join a group you were invited to (grapevine groups lists invitations). Your
node answers the admin who invited you; the group appears here once their
node has added you and its keys have come back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				err := n.JoinGroup(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Asked to join %s; it appears in `grapevine groups` once the admin's node adds you\n", safe(args[0]))
				}
				return err
			})
		},
	}
	simple := func(use, short string, nargs int, do func(ctx context.Context, n api.Core, args []string) error, done string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(nargs),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.withNode(cmd.Context(), func(n api.Core) error {
					if err := do(cmd.Context(), n, args); err != nil {
						return err
					}
					safeArgs := make([]any, len(args))
					for i, a := range args {
						safeArgs[i] = safe(a)
					}
					fmt.Fprintf(c.stdout, done+"\n", safeArgs...)
					return nil
				})
			},
		}
	}
	remove := simple("remove GROUP MEMBER", "Remove a member from a group you administer (the group gets new keys)", 2,
		func(ctx context.Context, n api.Core, a []string) error { return n.RemoveFromGroup(ctx, a[0], a[1]) },
		"Removed %[2]s from %[1]s: the others get new keys, which %[2]s never receives")
	leave := simple("leave GROUP", "Leave a group: an admin who is your contact records it; your copy is deleted at once", 1,
		func(ctx context.Context, n api.Core, a []string) error { return n.LeaveGroup(ctx, a[0]) },
		"Left %s")
	rename := simple("rename GROUP NEW-NAME", "Rename a group you administer (every member sees the new name)", 2,
		func(ctx context.Context, n api.Core, a []string) error { return n.RenameGroup(ctx, a[0], a[1]) },
		"Renamed %s to %s")
	admin := simple("admin GROUP MEMBER", "Make a member an admin of a group you administer", 2,
		func(ctx context.Context, n api.Core, a []string) error { return n.MakeGroupAdmin(ctx, a[0], a[1]) },
		"Made %[2]s an admin of %[1]s")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show GROUP [--json]",
		Short: "Show a group: its members, admins and epoch",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				g, err := n.Group(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if showJSON {
					return c.printJSON(g)
				}
				role := "member"
				if g.Admin {
					role = "admin"
				}
				c.table([][]string{{"Group:", g.Name}, {"ID:", g.ID}, {"Epoch:", fmt.Sprint(g.Epoch)}, {"You:", role}})
				fmt.Fprintln(c.stdout)
				rows := [][]string{{"MEMBER", "ROLE", "FINGERPRINT"}}
				for _, m := range g.Members {
					r := "member"
					if m.Admin {
						r = "admin"
					}
					rows = append(rows, []string{m.Name, r, m.Fingerprint})
				}
				c.table(rows)
				return nil
			})
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print {id, name, epoch, admin, members: [{name, fingerprint, admin}]}")
	cmd.AddCommand(create, add, join, remove, leave, rename, admin, show)
	return cmd
}

// isGroup decides whether ref names a group rather than a contact, for send
// and messages without --group: a group if no contact answers to ref and a
// group does. A name both answer to is refused, so that nothing meant for
// one contact goes to a whole group or the other way round.
func isGroup(ctx context.Context, n api.Core, ref string) (bool, error) {
	gs, err := n.Groups(ctx)
	if err != nil {
		return false, err
	}
	key, id := keys.NameKey(strings.TrimSpace(ref)), strings.ToLower(strings.TrimSpace(ref))
	var group bool
	for _, g := range gs {
		if keys.NameKey(g.Name) == key || (len(id) >= 4 && strings.HasPrefix(g.ID, id)) {
			group = true
		}
	}
	if !group {
		return false, nil
	}
	cs, err := n.Contacts(ctx)
	if err != nil {
		return false, err
	}
	fp := strings.ReplaceAll(id, " ", "")
	for _, ct := range cs {
		if keys.NameKey(ct.Name) == key || (len(fp) >= 4 && strings.HasPrefix(ct.Fingerprint, fp)) {
			return false, fmt.Errorf("%q names both a contact and a group: use --group for the group, or the contact's fingerprint", ref)
		}
	}
	return true, nil
}

// notAGroup adds to a contact not found that no group answers either.
func notAGroup(err error) error {
	if errors.Is(err, node.ErrNoContact) {
		return fmt.Errorf("%w; nor a group of yours (grapevine groups)", err)
	}
	return err
}

// printGroupMessages prints a group's posts, oldest first.
func (c *cli) printGroupMessages(ms []node.RoomMessage) {
	for _, m := range ms {
		fmt.Fprintln(c.stdout, groupMessageHead(m))
		if m.Attachment != nil {
			c.printAttachment(node.Message{ID: m.ID, Direction: m.Direction, Attachment: m.Attachment}) // files.go
		}
		if m.Text != "" || m.Attachment == nil {
			fmt.Fprintln(c.stdout, termtext.Text(m.Text, "    "))
		}
	}
}

func groupMessageHead(m node.RoomMessage) string {
	note := ""
	if m.Earlier {
		note = " (written before the group's last change)"
	}
	return fmt.Sprintf("%s  %s%s", m.Time.Local().Format("2006-01-02 15:04"), safe(m.Sender), note)
}
