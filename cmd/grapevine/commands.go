package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
	"github.com/grapevine-mesh/grapevine/internal/termtext"
)

func (c *cli) initCmd() *cobra.Command {
	var name, routing string
	cfg := node.DefaultConfig
	cmd := &cobra.Command{
		Use:   "init --name NAME",
		Short: "Create your identity and encrypted home",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--name is required: the name your contacts see first")
			}
			if _, err := keys.NormalizeName(name); err != nil {
				return fmt.Errorf("invalid --name %q: %w", name, err)
			}
			if cfg.Retention < 24*time.Hour {
				return errors.New("--retention must be at least 24h (one key period)")
			}
			if cfg.InviteLifetime < time.Hour {
				return errors.New("--invite-lifetime must be at least 1h")
			}
			var err error
			if cfg.Copies, err = node.ParseRouting(routing); err != nil {
				return fmt.Errorf("invalid --routing: %w", err)
			}
			home, err := c.homeDir()
			if err != nil {
				return err
			}
			if cl, err := api.Dial(home); err == nil {
				cl.Close()
				return fmt.Errorf("%s already holds a grapevine identity: its node is running", home)
			}
			if err := c.checkHome(home); err != nil {
				return err
			}
			if store.Exists(home) {
				return fmt.Errorf("%s already holds a grapevine identity", home)
			}
			n, err := c.create(cmd.Context(), home, name, cfg, false)
			if err != nil {
				return err
			}
			defer n.Close()
			fmt.Fprintf(c.stdout, "Created identity %q in %s\nFingerprint: %s\n", safe(name), home, groupFP(n.Identity().Fingerprint()))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "your display name (what contacts see when you add them)")
	cmd.Flags().DurationVar(&cfg.Retention, "retention", cfg.Retention, "how long keys and envelopes are kept for slow carriers")
	cmd.Flags().Uint8Var(&cfg.Hops, "hops", cfg.Hops, "hop limit of the envelopes you write (1 to 32): they travel that many hops at most, less a random 0 to 3 so that a neighbour cannot tell you wrote them")
	cmd.Flags().DurationVar(&cfg.InviteLifetime, "invite-lifetime", cfg.InviteLifetime, "how long an invite you show works if nobody uses it")
	cmd.Flags().DurationVar(&cfg.ReceiptDelay, "receipt-delay", cfg.ReceiptDelay, "the longest your receipts wait before they leave, so neighbours cannot tell you are the recipient by timing (0: at once; an export takes them all)")
	cmd.Flags().StringVar(&routing, "routing", "epidemic", "how your envelopes spread: epidemic, or spray:L (spray-and-wait with L copies; see docs/simulation.md)")
	return cmd
}

// groupFP spaces a fingerprint in groups of four for reading aloud.
func groupFP(fp string) string {
	var parts []string
	for len(fp) > 4 {
		parts, fp = append(parts, fp[:4]), fp[4:]
	}
	return strings.Join(append(parts, fp), " ")
}

func (c *cli) idCmd() *cobra.Command {
	var asJSON bool
	var png string
	cmd := &cobra.Command{
		Use:   "id [--json] [--png FILE]",
		Short: "Show your invite as a link and a QR code",
		Long: `Show your name, fingerprint and invite. Whoever adds your invite (scanning the
QR code or pasting the link) can write to you at once; you see them as a contact
request. The invite holds a one-time prekey: it works for 7 days (init
--invite-lifetime), or until you accept a request that came through it; a fresh
one is shown once it was used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				self, err := n.Self(cmd.Context())
				if err != nil {
					return err
				}
				if png != "" {
					if err := writeQRPNG(png, self.Link); err != nil {
						return err
					}
				}
				if asJSON {
					return c.printJSON(self)
				}
				fmt.Fprintf(c.stdout, "Name:        %s\nFingerprint: %s\n\n", safe(self.Name), groupFP(self.Fingerprint))
				if err := writeQRText(c.stdout, self.Link); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "\n%s\n\nThe invite works until %s, or until you accept a request that came through it.\n",
					self.Link, self.InviteExpires.Local().Format("2006-01-02 15:04"))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {name, fingerprint, link, invite_expires} as JSON")
	cmd.Flags().StringVar(&png, "png", "", "also write the QR code to this PNG file")
	return cmd
}

func (c *cli) contactsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "contacts [--json]",
		Short: "List contacts, add them, answer requests",
		Long: `List contacts. States: request (they added you; accept or reject), pending
(you added them; no answer yet), active. "active, new keys proposed" means the
contact asked to start new keys (after restoring a backup, say): accept or reject.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				cs, err := n.Contacts(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					if cs == nil {
						cs = []node.Contact{}
					}
					return c.printJSON(cs)
				}
				if len(cs) == 0 {
					fmt.Fprintln(c.stdout, "No contacts yet: add one from their invite with `grapevine contacts add LINK`.")
					return nil
				}
				rows := [][]string{{"NAME", "STATE", "FINGERPRINT"}}
				for _, ct := range cs {
					state := ct.State
					if ct.Rekey {
						state += ", new keys proposed"
					}
					rows = append(rows, []string{ct.Name, state, ct.Fingerprint})
				}
				c.table(rows)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print an array of {name, fingerprint, state, rekey}")

	var name, photo string
	add := &cobra.Command{
		Use:   "add LINK [--name NAME] | add --qr PHOTO",
		Short: "Add a contact from their grapevine: invite link, or a photo of its QR code",
		Long: `Add a contact from their invite: the link, or with --qr a photo or screenshot
of its QR code (PNG, JPEG or GIF). If they already added you, this accepts them.
Otherwise a contact request is queued for them, and you can write at once.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			link, err := c.inviteArg(args, photo) // qrcolour.go
			if err != nil {
				return err
			}
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ct, err := n.AddContact(cmd.Context(), link, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Added %s (%s), fingerprint %s\n", safe(ct.Name), ct.State, groupFP(ct.Fingerprint))
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "the name to know them by (default: the name in their invite)")
	add.Flags().StringVar(&photo, "qr", "", "read the invite from this photo of its QR code (PNG, JPEG or GIF)")

	accept := &cobra.Command{
		Use:   "accept CONTACT",
		Short: "Accept a contact request, or a contact's proposal of new keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ct, err := n.Accept(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Accepted %s\n", safe(ct.Name))
				}
				return err
			})
		},
	}
	reject := &cobra.Command{
		Use:   "reject CONTACT",
		Short: "Reject a contact request and ignore that identity (or refuse proposed new keys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				err := n.Reject(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Rejected %s\n", safe(args[0]))
				}
				return err
			})
		},
	}
	safety := &cobra.Command{
		Use:   "verify CONTACT",
		Short: "Show the safety number to compare with a contact in person",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ct, num, err := n.SafetyNumber(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Safety number with %s:\n\n    %s\n\nIt must read the same on %s's device.\n", safe(ct.Name), num, safe(ct.Name))
				}
				return err
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove CONTACT",
		Short: "Forget a contact: its keys, its messages, what waits for it",
		Long: `Forget a contact: its keys, its messages and what waits for it. What it sends
later is carried like a stranger's mail and never opened here. Adding its invite
again starts afresh.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ct, err := n.Remove(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Removed %s (%s)\n", safe(ct.Name), groupFP(ct.Fingerprint))
				}
				return err
			})
		},
	}
	rename := &cobra.Command{
		Use:   "rename CONTACT NEW-NAME",
		Short: "Give a contact another name (only you see it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ct, err := n.Rename(cmd.Context(), args[0], args[1])
				if err == nil {
					fmt.Fprintf(c.stdout, "Renamed to %s\n", safe(ct.Name))
				}
				return err
			})
		},
	}
	rekey := &cobra.Command{
		Use:   "rekey CONTACT",
		Short: "Start new keys with a contact, without meeting again",
		Long: `Start new keys with a contact, without meeting again: after restoring a backup,
after the clock was wrong, or whenever you want fresh keys. The contact sees the
proposal and accepts it (grapevine contacts accept); until then what you write
waits on their side. For a contact you added who never answered, this sends
your request again (while the invite you used is valid).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ct, err := n.Rekey(cmd.Context(), args[0])
				if err == nil {
					if ct.State == node.StatePending {
						fmt.Fprintf(c.stdout, "Sent your request to %s again\n", safe(ct.Name))
					} else {
						fmt.Fprintf(c.stdout, "Proposed new keys to %s; they take effect once %s accepts\n", safe(ct.Name), safe(ct.Name))
					}
				}
				return err
			})
		},
	}
	cmd.AddCommand(add, accept, reject, safety, remove, rename, rekey)
	return cmd
}

func (c *cli) clockCmd() *cobra.Command {
	var trust bool
	cmd := &cobra.Command{
		Use:   "clock [--trust]",
		Short: "Check the clock your node keeps to; trust the device's clock",
		Long: `Grapevine keeps to a trusted time: the device's clock as long as it agrees with
the time that has really passed. A clock far in the past (a device without a
real-time clock booting in 1970) or far ahead (a wrong setting) is not
believed: the node keeps to its own estimate, deletes no keys on the strength
of it, and says so here and in status. If the device's clock is right (it was
off for more than 30 days, say), --trust accepts it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if trust {
					if err := n.TrustClock(cmd.Context()); err != nil {
						return err
					}
				}
				st, err := n.Stats(cmd.Context())
				if err != nil {
					return err
				}
				if st.Clock != "" {
					fmt.Fprintf(c.stdout, "Not trusted: %s\n", safe(st.Clock))
					return nil
				}
				fmt.Fprintf(c.stdout, "The clock is trusted: %s\n", time.Now().Format("2006-01-02 15:04:05 MST"))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&trust, "trust", false, "accept the device's clock as it reads now")
	return cmd
}

func (c *cli) sendCmd() *cobra.Command {
	var group bool
	var file fileFlags
	cmd := &cobra.Command{
		Use:   "send CONTACT|GROUP|#CHANNEL|nearby TEXT|- | send CONTACT|GROUP --file PATH [--as-file] [CAPTION]",
		Short: "Write to a contact (name or fingerprint prefix), a group, a channel or Nearby; send a file or photo",
		Long: `Seal a message to a contact and queue it. It leaves with the next bundle you
export, and with every neighbour your node links to: at once if it is running
(grapevine up). TEXT may be several words; - reads the text from standard
input (up to 16 KiB; a final newline is dropped), for texts of several lines.
A text of only spaces is refused.

To a group you are in (grapevine groups), the post is one envelope that every
member opens. A name that is not a contact's is taken as a group's; --group
says so outright (a name that is both is refused without it).

To a public channel you joined, #NAME; to Nearby, nearby; to an announcement
channel of yours, announce:NAME. A public post carries a proof-of-work stamp,
which takes about a second to make, and it leaves like any other envelope.

With --file, the file at PATH goes to the contact (or group), the rest of the words as its
caption: a message carrying what opens it, and the file in chunks of 32 KiB
that every neighbour and bundle carries like texts (16 MiB at most). A photo
(JPEG, PNG or GIF, by its content) is re-encoded first, so that nothing but
its pixels leaves: no GPS position, camera serial or times. --as-file sends it
as it is. grapevine messages shows how far it has come.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file.path != "" {
				return c.sendFile(cmd.Context(), args[0], strings.Join(args[1:], " "), file, group)
			}
			if len(args) < 2 {
				return errors.New("missing the text: send CONTACT TEXT (or - to read it from standard input, or --file PATH)")
			}
			text := strings.Join(args[1:], " ")
			if len(args) == 2 && args[1] == "-" {
				b, err := io.ReadAll(io.LimitReader(c.stdin, node.MaxText+2))
				if err != nil {
					return fmt.Errorf("failed to read the text from standard input: %w", err)
				}
				text = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			}
			if strings.TrimSpace(text) == "" {
				return errors.New("the message is empty: write some text (or - to read it from standard input)")
			}
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if room, ok, err := publicRoom(cmd.Context(), n, args[0], group); err != nil {
					return err
				} else if ok {
					return c.postRoom(cmd.Context(), n, room, text)
				}
				toGroup := group
				if !toGroup {
					var err error
					if toGroup, err = isGroup(cmd.Context(), n, args[0]); err != nil {
						return err
					}
				}
				if toGroup {
					m, err := n.SendGroup(cmd.Context(), args[0], text)
					if err == nil {
						fmt.Fprintf(c.stdout, "Queued %s to group %s\n", shortID(m.ID), safe(args[0]))
					}
					return err
				}
				m, err := n.Send(cmd.Context(), args[0], text)
				if err == nil {
					fmt.Fprintf(c.stdout, "Queued %s to %s\n", shortID(m.ID), safe(m.Contact))
				}
				return notAGroup(err)
			})
		},
	}
	cmd.Flags().BoolVarP(&group, "group", "g", false, "the first argument is a group (its name or the start of its ID)")
	cmd.Flags().StringVar(&file.path, "file", "", "send the file at `PATH`; the words after the contact are its caption")
	cmd.Flags().BoolVar(&file.asFile, "as-file", false, "with --file: send a photo as it is, metadata and all, not re-encoded")
	return cmd
}

// shortID is the first 16 characters of an ID, as much as there is.
func shortID(id string) string { return id[:min(len(id), 16)] }

func (c *cli) messagesCmd() *cobra.Command {
	var asJSON, follow, group bool
	cmd := &cobra.Command{
		Use:   "messages [CONTACT|GROUP|#CHANNEL|nearby] [--json]",
		Short: "Show messages, with one contact, in one group or public room, or all",
		Long: `Show messages, oldest first. Status of what you wrote: queued (sealed here, no
neighbour has it yet), carried (handed to at least one neighbour, no receipt yet),
delivered (their device's receipt came back) or expired (no receipt, and every
copy has expired: it can no longer arrive; write it again). What you received:
received.

Texts are shown as written, except what could act on the terminal: control
characters and escape sequences (shown as \x1b and the like) and characters
that reorder text (\u202e and the like). A text of several lines is shown
with a bar before each of its lines.

Given a group (a name that is not a contact's, or --group), its posts with
their writers: a contact's name, "me", or the start of the fingerprint of a
member who is not your contact. Without a contact or group, --follow also
prints new posts in every group.

Given #NAME (a channel you joined), nearby, or announce:NAME (an announcement
channel you own or follow), its posts with their posters' pseudonyms (the
start of the key; "me" for yours), without those of posters you muted or
blocked. --follow is for contacts and groups only.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			if follow {
				if r := strings.ToLower(ref); !group && (strings.HasPrefix(r, "#") || r == "nearby" || strings.HasPrefix(r, "announce:")) {
					return fmt.Errorf("--follow is for contacts and groups: read %s without it", safe(ref))
				}
				return c.followMessages(cmd.Context(), ref, group, asJSON)
			}
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if room, ok, err := publicRoom(cmd.Context(), n, ref, group); err != nil {
					return err
				} else if ok {
					return c.printPosts(cmd.Context(), n, room, asJSON)
				}
				toGroup := group
				if ref != "" && !toGroup {
					var err error
					if toGroup, err = isGroup(cmd.Context(), n, ref); err != nil {
						return err
					}
				}
				if toGroup {
					ms, err := n.GroupMessages(cmd.Context(), ref)
					switch {
					case err != nil:
						return err
					case asJSON:
						if ms == nil {
							ms = []node.RoomMessage{}
						}
						return c.printJSON(ms)
					case len(ms) == 0:
						fmt.Fprintf(c.stdout, "No posts in %s yet.\n", safe(ref))
						return nil
					}
					c.printGroupMessages(ms)
					return nil
				}
				ms, err := n.Messages(cmd.Context(), ref)
				if err != nil {
					return notAGroup(err)
				}
				if asJSON {
					if ms == nil {
						ms = []node.Message{}
					}
					return c.printJSON(ms)
				}
				if len(ms) == 0 {
					if ref != "" {
						fmt.Fprintf(c.stdout, "No messages with %s yet.\n", safe(ref))
					} else {
						fmt.Fprintln(c.stdout, "No messages yet.")
					}
					return nil
				}
				for _, m := range ms {
					arrow := "from"
					if m.Direction == "out" {
						arrow = "to"
					}
					fmt.Fprintf(c.stdout, "%s  %s %s [%s]\n", m.Time.Local().Format("2006-01-02 15:04"), arrow, safe(m.Contact), safe(m.Status))
					if m.Attachment != nil {
						c.printAttachment(m)
					}
					if m.Text != "" || m.Attachment == nil {
						fmt.Fprintln(c.stdout, termtext.Text(m.Text, "    "))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print an array of {id, contact, direction, text, time, status, attachment?}; status is queued, carried, delivered, expired or received; attachment, for a message carrying a file, has name, media_type, size, chunks, have, sources, resumed, complete and refused")
	cmd.Flags().BoolVarP(&group, "group", "g", false, "the argument is a group (its name or the start of its ID); with --json, an array of {id, room, sender, direction, text, time, earlier}")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep going: print new messages and changes of state as they happen (needs grapevine up; with --json, one object a line)")
	return cmd
}

func (c *cli) envelopesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "envelopes [--json]",
		Short: "List the sealed envelopes this node holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				es, err := n.Envelopes(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					if es == nil {
						es = []node.EnvelopeInfo{}
					}
					return c.printJSON(es)
				}
				if len(es) == 0 {
					fmt.Fprintln(c.stdout, "No envelopes: nothing to carry, nothing waiting to leave.")
					return nil
				}
				rows := [][]string{{"ID", "KIND", "SIZE", "HOPS", "EXPIRES"}}
				for _, e := range es {
					kind := e.Kind
					if e.Own {
						kind += " (own)"
					}
					rows = append(rows, []string{shortID(e.ID), kind, fmt.Sprint(e.Size), fmt.Sprint(e.Hops), e.Expires.Local().Format("2006-01-02 15:04")})
				}
				c.table(rows)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print an array of {id, size, expires, hops, kind, own}")
	return cmd
}

func (c *cli) exportCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "export FILE|DIRECTORY [--force]",
		Short: "Write every envelope this node holds to a bundle file (atomically)",
		Long: `Write every envelope this node holds to a bundle file, to carry on a USB stick
or any other way. Given a directory (a USB stick's mount point, say), the
bundle goes into it under a new name, grapevine-YYYYMMDD-HHMMSS.gvb.

A file that exists is replaced only with --force, and only if it is a regular
file: never a directory, a device, a pipe or a link. The bundle is written
under a temporary name and renamed once complete, so a reader never sees half
of it; an export that was stopped leaves nothing behind (one that was killed
leaves a .grapevine-export-*.tmp file, which the next export into that
directory removes).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				show, end := c.progress("Exporting")
				res, err := n.ExportFile(cmd.Context(), args[0], node.ExportOptions{Replace: force, Progress: show})
				end()
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%w: export to another name, or to a directory (a new file is made in it); --force replaces a regular file", err)
				}
				if err == nil {
					fmt.Fprintf(c.stdout, "Exported %d envelopes to %s\n", res.Count, safe(res.Path))
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists (a regular file only)")
	return cmd
}

func (c *cli) importCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Take in a bundle file: read what is for you, carry the rest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return fmt.Errorf("failed to import: %w", err)
			}
			return c.withNode(cmd.Context(), func(n api.Core) error {
				rep, err := c.importFile(cmd.Context(), n, args[0])
				if errors.Is(err, context.Canceled) {
					c.printImport(args[0], rep)
					return errors.New("import stopped: what was read is kept; import the file again to take the rest")
				}
				if err != nil {
					return err
				}
				if asJSON {
					return c.printJSON(rep)
				}
				c.printImport(args[0], rep)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the import report as JSON: {received, new, duplicate, already_delivered, expired, invalid, messages, request_messages, requests, rekeys, receipts, purged, delivered, forged, ignored, refused, evicted, clamped, chunks, damaged, skipped_bytes, complete}")
	return cmd
}

// importFile imports path, with a progress bar on a terminal: a running
// node streams its progress (api.Client.ImportFileWith), as it does an
// export's.
func (c *cli) importFile(ctx context.Context, n api.Core, path string) (node.ImportReport, error) {
	show, end := c.progress("Importing")
	defer end()
	return n.ImportFileWith(ctx, path, node.ImportOptions{Progress: show})
}

func (c *cli) printImport(path string, r node.ImportReport) {
	fmt.Fprintf(c.stdout, "Imported %s: %d envelopes read\n", safe(path), r.Received)
	line := func(n int, what string) {
		if n > 0 {
			fmt.Fprintf(c.stdout, "  %d %s\n", n, what)
		}
	}
	line(r.Messages, "new messages for you")
	line(r.Chunks, "new chunks of files for you")
	line(r.Requests, "new contact requests (see `grapevine contacts`)")
	line(r.RequestMessages, "messages waiting in contact requests (accept to read them)")
	line(r.Delivered, "of your messages now delivered")
	line(r.New, "new envelopes to carry for others")
	line(r.Receipts, "receipts to carry")
	line(r.Purged, "delivered envelopes dropped")
	line(r.Duplicate, "already held")
	line(r.AlreadyDelivered, "already delivered")
	line(r.Expired, "expired, skipped")
	line(r.Invalid, "invalid, skipped")
	line(r.Forged, "forged receipts, dropped")
	line(r.Ignored, "from identities you rejected, ignored")
	line(r.Rekeys, "contacts proposing new keys (see `grapevine contacts`)")
	line(r.Refused, "for others, not carried (this node does not relay)")
	line(r.Evicted, "carried envelopes dropped to stay within the relay quota")
	if r.Damaged > 0 {
		fmt.Fprintf(c.stdout, "  %d damaged regions skipped (%d bytes)\n", r.Damaged, r.SkippedBytes)
	}
	if !r.Complete {
		fmt.Fprintln(c.stdout, "  warning: the bundle is incomplete (truncated or damaged); every intact envelope was taken")
	}
}

func (c *cli) peersCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peers [--json]",
		Short: "List the neighbours your running node is linked to",
		Long: `List the neighbours the running node (grapevine up) is linked to now: address,
transport, who dialled (in: they did; out: you did, static: a --peer), since
when, and what went each way. Neighbours are strangers, shown by address only;
a contact who recognised you privately on the link (each side proves knowing a
key only the two of you share, bound to that link) is shown by name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.running(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			ps, err := cl.Peers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if ps == nil {
					ps = []mesh.PeerInfo{}
				}
				return c.printJSON(ps)
			}
			if len(ps) == 0 {
				fmt.Fprintln(c.stdout, "No neighbours linked now.")
				return nil
			}
			rows := [][]string{{"ADDRESS", "TRANSPORT", "DIRECTION", "SINCE", "SENT", "RECEIVED", "ENV SENT", "ENV RECEIVED", "CONTACT"}}
			for _, p := range ps {
				dir := p.Direction
				if p.Static {
					dir += " (static)"
				}
				rows = append(rows, []string{p.Addr, p.Transport, dir, p.Since.Local().Format("2006-01-02 15:04:05"),
					bytesText(int64(p.BytesSent)), bytesText(int64(p.BytesReceived)),
					fmt.Sprint(p.EnvelopesSent), fmt.Sprint(p.EnvelopesReceived), cmp.Or(p.Contact, "-")})
			}
			c.table(rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print an array of {addr, transport, direction, static, since, bytes_sent, bytes_received, envelopes_sent, envelopes_received, synced, offers_sent, contact}")
	return cmd
}

func (c *cli) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show what your node holds, and its links if it runs",
		Long: `Show what the node holds: your envelopes not yet delivered (queued), your
receipts travelling back, what it carries for others, and the size of the store.
While the node runs (grapevine up), also its neighbours, listening addresses,
discovery and relay; otherwise "node: not running".

With --json: the running node's status with "running": true, or the stored
figures alone with "running": false.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if cl, ok := n.(*api.Client); ok {
					st, err := cl.Status(cmd.Context())
					if err != nil {
						return err
					}
					if asJSON {
						return c.printJSON(struct {
							Running bool `json:"running"`
							mesh.Status
						}{true, st})
					}
					c.printStatus(&st, st.Stats)
					return nil
				}
				stats, err := n.Stats(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return c.printJSON(struct {
						Running bool `json:"running"`
						node.Stats
					}{false, stats})
				}
				c.printStatus(nil, stats)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON: {running, queued, queued_bytes, receipts, carried, carried_bytes, relay_quota, store_bytes, carried_from, envelopes_held, clock, peers, listen, discovery, relay, started} (the last six only while running)")
	return cmd
}

// printStatus shows s, with the running node's state st (nil if it does not run).
func (c *cli) printStatus(st *mesh.Status, s node.Stats) {
	onOff := map[bool]string{true: "on", false: "off"}
	rows := [][]string{{"node:", "not running"}}
	if st != nil {
		listen := strings.Join(st.Listen, ", ")
		if listen == "" {
			listen = "(not listening)"
		}
		relay := "off"
		if st.Relay {
			relay = "on, quota " + bytesText(s.RelayQuota)
		}
		rows = [][]string{
			{"node:", "running since " + st.Started.Local().Format("2006-01-02 15:04:05")},
			{"peers:", fmt.Sprint(st.Peers)},
			{"listening:", listen},
			{"discovery:", onOff[st.Discovery]},
			{"relay:", relay},
		}
	}
	carried := fmt.Sprintf("%d envelopes, %s", s.Carried, bytesText(s.CarriedBytes))
	if st != nil && st.Relay {
		carried += " of " + bytesText(s.RelayQuota)
	}
	rows = append(rows,
		[]string{"queued:", fmt.Sprintf("%d envelopes, %s (yours, not yet delivered)", s.Queued, bytesText(s.QueuedBytes))},
		[]string{"receipts:", fmt.Sprintf("%d (yours, travelling back or waiting to leave)", s.Receipts)},
		[]string{"carried:", carried + " (for others)"},
		[]string{"store:", bytesText(s.StoreBytes)},
	)
	if s.Clock != "" {
		rows = append(rows, []string{"clock:", "NOT TRUSTED: " + s.Clock})
	}
	c.table(rows)
}

// bytesText writes a size for people: 300 B, 1.5 KiB, 256 MiB.
func bytesText(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".") + " " + unit
}
