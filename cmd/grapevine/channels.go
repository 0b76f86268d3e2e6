package main

// Public channels and Nearby (SPEC §15.11–15.16) on the command line:
// grapevine channels ..., grapevine nearby ...

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/termtext"
)

func (c *cli) channelsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "channels [--json]",
		Short: "List the public channels you joined; join, leave, post, read, mute",
		Long: `List the public channels you joined, Nearby first, with your pseudonym in each
and the stamp difficulty its posts carry.

A public channel is named like #market; anyone who knows the name (and the
password, if it has one) can read and post. Posters are pseudonyms, new each
day and different in every channel, never your identity. Each post carries a
proof-of-work stamp (about a second to make) that relays check before they
carry it. Nearby is a channel everyone is in, whose posts go only a few hops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				cs, err := n.Channels(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					if cs == nil {
						cs = []node.ChannelInfo{}
					}
					return c.printJSON(cs)
				}
				rows := [][]string{{"CHANNEL", "BITS", "PSEUDONYM"}}
				for _, ch := range cs {
					rows = append(rows, []string{safe(ch.Name), fmt.Sprint(ch.Bits), short(ch.Pseudonym)})
				}
				c.table(rows)
				if len(cs) <= 1 {
					fmt.Fprintln(c.stdout, "Join a channel with `grapevine channels join #NAME`.")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print [{name, bits, pseudonym}], Nearby first")

	var password string
	var bits int
	join := &cobra.Command{
		Use:   "join NAME [--password P] [--bits N]",
		Short: "Join a public channel (#NAME), with its password if it has one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				ch, err := n.JoinChannel(cmd.Context(), args[0], password, bits)
				if err == nil {
					fmt.Fprintf(c.stdout, "Joined %s; your pseudonym there today is %s\n", safe(ch.Name), short(ch.Pseudonym))
				}
				return err
			})
		},
	}
	join.Flags().StringVar(&password, "password", "", "the channel's password (everyone in it must use the same)")
	join.Flags().IntVar(&bits, "bits", 0, "the stamp difficulty of the channel's posts (0: the default; everyone in it must use the same)")

	leave := &cobra.Command{
		Use:   "leave NAME",
		Short: "Leave a public channel",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				err := n.LeaveChannel(cmd.Context(), args[0])
				if err == nil {
					fmt.Fprintf(c.stdout, "Left %s\n", safe(args[0]))
				}
				return err
			})
		},
	}
	post := &cobra.Command{
		Use:   "post NAME TEXT...",
		Short: "Post to a public channel you joined (stamping takes about a second)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				p, err := n.PostChannel(cmd.Context(), args[0], strings.Join(args[1:], " "))
				if err == nil {
					fmt.Fprintf(c.stdout, "Posted %s to %s\n", p.ID, safe(p.Room))
				}
				return err
			})
		},
	}
	var readJSON bool
	read := &cobra.Command{
		Use:   "read NAME [--json]",
		Short: "Read a public channel's posts, oldest first (muted and blocked posters hidden)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.readPosts(cmd.Context(), args[0], readJSON)
		},
	}
	read.Flags().BoolVar(&readJSON, "json", false, "print [{id, room, poster, direction, text, time, expires}]")

	mode := func(verb, short, long string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " NAME POSTER",
			Short: short,
			Long:  long,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.withNode(cmd.Context(), func(n api.Core) error {
					key, err := posterKey(cmd.Context(), n, args[0], args[1], verb != "unmute")
					if err != nil {
						return err
					}
					if err := n.MutePoster(cmd.Context(), key, verb); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "%s %s\n", map[string]string{"mute": "Muted", "block": "Blocked", "unmute": "Unmuted"}[verb], key)
					return nil
				})
			},
		}
	}
	mute := mode("mute", "Hide a poster's posts here (they are still carried)",
		`Hide a poster's posts here; your node still carries them for others. POSTER
is the start of the poster's pseudonym as channels read shows it (or all 64
hex digits). Undo with channels unmute, which needs the full key this prints.`)
	block := mode("block", "Hide a poster's posts and stop carrying them",
		`Hide a poster's posts and stop carrying them: your node drops them in every
channel it reads. POSTER as for channels mute.`)
	unmute := mode("unmute", "Undo mute or block (POSTER: the full key mute or block printed)", "")
	cmd.AddCommand(join, leave, post, read, mute, block, unmute)
	return cmd
}

func (c *cli) nearbyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "nearby [--json]",
		Short: "Read Nearby: posts from people a few hops away; nearby post TEXT",
		Long: `Read Nearby, the channel everyone is in, oldest first. Its posts travel only a
few hops (2 unless the poster chose 1 or 3) and expire within an hour (at most 6).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.readPosts(cmd.Context(), "nearby", asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print [{id, room, poster, direction, text, time, expires}]")
	var hops int
	var lifetime time.Duration
	post := &cobra.Command{
		Use:   "post TEXT... [--hops N] [--lifetime D]",
		Short: "Post to Nearby (stamping takes about a second)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				p, err := n.PostNearby(cmd.Context(), strings.Join(args, " "), hops, lifetime)
				if err == nil {
					fmt.Fprintf(c.stdout, "Posted %s to Nearby, until %s\n", p.ID, p.Expires.Local().Format("2006-01-02 15:04"))
				}
				return err
			})
		},
	}
	post.Flags().IntVar(&hops, "hops", 0, "how many hops the post may travel (0: the default)")
	post.Flags().DurationVar(&lifetime, "lifetime", 0, "how long the post lives, such as 2h (0: the default)")
	cmd.AddCommand(post)
	return cmd
}

func (c *cli) readPosts(ctx context.Context, name string, asJSON bool) error {
	return c.withNode(ctx, func(n api.Core) error { return c.printPosts(ctx, n, name, asJSON) })
}

// printPosts prints a channel's, Nearby's or an announcement channel's
// posts, oldest first.
func (c *cli) printPosts(ctx context.Context, n api.Core, name string, asJSON bool) error {
	if name != "nearby" && !strings.HasPrefix(name, "announce:") {
		norm, err := roomName(name)
		if err != nil {
			return err
		}
		name = norm
	}
	if _, err := checkJoined(ctx, n, name); err != nil {
		return err
	}
	ps, err := n.ChannelPosts(ctx, name)
	if err != nil {
		return err
	}
	if asJSON {
		if ps == nil {
			ps = []node.PublicPost{}
		}
		return c.printJSON(ps)
	}
	if len(ps) == 0 {
		fmt.Fprintf(c.stdout, "No posts in %s yet.\n", safe(name))
	}
	for _, p := range ps {
		fmt.Fprintf(c.stdout, "%s  %s\n", p.Time.Local().Format("2006-01-02 15:04"), short(p.Poster))
		fmt.Fprintln(c.stdout, termtext.Text(p.Text, "    "))
	}
	return nil
}

// short is the start of a key as posts and channels list it.
func short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}

// posterKey finds the one poster of a channel whose key starts with
// prefix (4 hex digits or more); a full key is taken as it is.
func posterKey(ctx context.Context, n api.Core, channel, prefix string, lookup bool) (string, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if len(prefix) == 64 || !lookup {
		return prefix, nil
	}
	if len(prefix) < 4 {
		return "", fmt.Errorf("poster %q: give at least 4 hex digits of the pseudonym channels read shows", prefix)
	}
	ps, err := n.ChannelPosts(ctx, channel)
	if err != nil {
		return "", err
	}
	found := ""
	for _, p := range ps {
		if p.Poster == "me" || !strings.HasPrefix(p.Poster, prefix) {
			continue
		}
		if found != "" && found != p.Poster {
			return "", fmt.Errorf("poster %q is ambiguous in %s: give more digits", prefix, channel)
		}
		found = p.Poster
	}
	if found == "" {
		return "", fmt.Errorf("no poster %q in %s (grapevine channels read %s lists them)", prefix, channel, channel)
	}
	return found, nil
}

// publicRoom tells whether send's or messages' first argument names a
// public room rather than a contact or group: #NAME is a channel, nearby
// is Nearby, announce:NAME an announcement channel of mine or followed. It
// returns the room as the API names it. A contact or group of the same
// name makes it ambiguous: refused, with what to use instead.
func publicRoom(ctx context.Context, n api.Core, ref string, group bool) (string, bool, error) {
	ref = strings.TrimSpace(ref)
	lower := strings.ToLower(ref)
	var room string
	switch {
	case group || ref == "":
		return "", false, nil
	case strings.HasPrefix(ref, "#"):
		room = ref
	case lower == "nearby":
		room = "nearby"
	case strings.HasPrefix(lower, "announce:"):
		room = "announce:" + ref[len("announce:"):]
	default:
		return "", false, nil
	}
	norm, nameErr := roomName(room)
	if room == "nearby" || strings.HasPrefix(room, "announce:") {
		norm, nameErr = room, nil
	}
	cs, err := n.Contacts(ctx)
	if err != nil {
		return "", false, err
	}
	for _, ct := range cs {
		if keys.NameKey(ct.Name) == keys.NameKey(ref) {
			if nameErr != nil { // a contact's name, not a channel's
				return "", false, nil
			}
			alt := "grapevine channels post|read " + norm
			if room == "nearby" {
				alt = "grapevine nearby [post]"
			} else if strings.HasPrefix(room, "announce:") {
				alt = "grapevine announce post|read " + strings.TrimPrefix(room, "announce:")
			}
			return "", false, fmt.Errorf("%q names a contact too: write to the contact by fingerprint, or use %s", ref, alt)
		}
	}
	if isG, err := isGroup(ctx, n, ref); err == nil && isG {
		if nameErr != nil {
			return "", false, nil
		}
		return "", false, fmt.Errorf("%q names a group too: use --group for the group", ref)
	}
	if nameErr != nil {
		return "", false, nameErr
	}
	return norm, true, nil
}

// roomName is a channel's name as the node keeps it (#lowercase), or the
// node's own error for a bad name.
func roomName(ref string) (string, error) {
	norm, err := room.NormaliseName(ref)
	if err != nil {
		return "", err
	}
	return norm, nil
}

// checkJoined refuses a channel (#NAME) that is not joined, or an
// announcement channel neither mine nor followed; mine reports whether an
// announcement channel is mine (others' are read-only).
func checkJoined(ctx context.Context, n api.Core, name string) (mine bool, err error) {
	switch {
	case name == "nearby":
		return false, nil
	case strings.HasPrefix(name, "announce:"):
		local := strings.TrimPrefix(name, "announce:")
		as, err := n.Announcements(ctx)
		if err != nil {
			return false, err
		}
		found := false
		for _, a := range as {
			if a.Name == local {
				found = true
				mine = mine || a.Mine
			}
		}
		if !found {
			return false, fmt.Errorf("no announcement channel %q: you neither own nor follow one of that name (grapevine announce lists them)", local)
		}
		return mine, nil
	}
	cs, err := n.Channels(ctx)
	if err != nil {
		return false, err
	}
	for _, ch := range cs {
		if ch.Name == name {
			return false, nil
		}
	}
	return false, fmt.Errorf("not in channel %s: join it first with grapevine channels join %s (and --password, if it has one)", name, name)
}

// postRoom posts text to a public room named as publicRoom returns it.
func (c *cli) postRoom(ctx context.Context, n api.Core, room, text string) error {
	mine, err := checkJoined(ctx, n, room)
	if err != nil {
		return err
	}
	var p node.PublicPost
	switch {
	case room == "nearby":
		p, err = n.PostNearby(ctx, text, 0, 0)
	case strings.HasPrefix(room, "announce:"):
		if !mine {
			return fmt.Errorf("%s is not yours: only its owner and delegates post there (a delegate: grapevine announce post --delegation D TEXT)", room)
		}
		p, err = n.Announce(ctx, strings.TrimPrefix(room, "announce:"), text)
	default:
		p, err = n.PostChannel(ctx, room, text)
	}
	if err != nil {
		return err
	}
	if room == "nearby" {
		fmt.Fprintf(c.stdout, "Posted %s to Nearby, until %s\n", p.ID, p.Expires.Local().Format("2006-01-02 15:04"))
	} else {
		fmt.Fprintf(c.stdout, "Posted %s to %s\n", p.ID, safe(room))
	}
	return nil
}

func (c *cli) announceCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "announce [--json]",
		Short: "Announcement channels: only the owner (and delegates) post, everyone reads",
		Long: `List the announcement channels you own and follow.

An announcement channel is for a rescue coordinator, a clinic or a village
council: only its owner, and delegates the owner signs, can post; every relay
checks the signature before carrying a post. Followers follow its owner key,
which grapevine announce create prints; read it with grapevine announce read
NAME or grapevine messages announce:NAME.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				as, err := n.Announcements(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					if as == nil {
						as = []node.AnnouncementChannel{}
					}
					return c.printJSON(as)
				}
				if len(as) == 0 {
					fmt.Fprintln(c.stdout, "No announcement channels. Make one with `grapevine announce create NAME`, or follow one with `grapevine announce follow OWNER NAME`.")
					return nil
				}
				rows := [][]string{{"NAME", "OWNER", ""}}
				for _, a := range as {
					what := "following"
					if a.Mine {
						what = "mine"
					}
					rows = append(rows, []string{safe(a.Name), a.Owner, what})
				}
				c.table(rows)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print [{name, owner, mine}]")
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Make your announcement channel NAME and print its owner key, which followers need",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				a, err := n.CreateAnnouncements(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Announcement channel %s, owner key %s\nFollowers: grapevine announce follow %s NAME\n", safe(a.Name), a.Owner, a.Owner)
				return nil
			})
		},
	}
	follow := &cobra.Command{
		Use:   "follow OWNER NAME",
		Short: "Follow the announcement channel of an owner key, under a name of your choice",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if err := n.FollowAnnouncements(cmd.Context(), strings.TrimSpace(args[0]), args[1]); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Following %s as %s\n", short(strings.TrimSpace(args[0])), safe(args[1]))
				return nil
			})
		},
	}
	var delegation string
	post := &cobra.Command{
		Use:   "post NAME TEXT... | post --delegation D TEXT...",
		Short: "Post to your announcement channel, or as a delegate (stamping takes about a second)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if delegation != "" {
					p, err := n.AnnounceAs(cmd.Context(), strings.TrimSpace(delegation), strings.Join(args, " "))
					if err == nil {
						fmt.Fprintf(c.stdout, "Posted %s as a delegate\n", p.ID)
					}
					return err
				}
				if len(args) < 2 {
					return fmt.Errorf("post NAME TEXT: give the channel's name and the text")
				}
				return c.postRoom(cmd.Context(), n, "announce:"+args[0], strings.Join(args[1:], " "))
			})
		},
	}
	post.Flags().StringVar(&delegation, "delegation", "", "post as a delegate, with the delegation (hex) the owner gave you")
	var readJSON bool
	read := &cobra.Command{
		Use:   "read NAME [--json]",
		Short: "Read an announcement channel you own or follow, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.readPosts(cmd.Context(), "announce:"+args[0], readJSON)
		},
	}
	read.Flags().BoolVar(&readJSON, "json", false, "print [{id, room, poster, direction, text, time, expires}]")
	delegateKey := &cobra.Command{
		Use:   "delegate-key OWNER",
		Short: "Print your key as a delegate of an owner: give it to the owner",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				k, err := n.DelegateKey(cmd.Context(), strings.TrimSpace(args[0]))
				if err == nil {
					fmt.Fprintln(c.stdout, k)
				}
				return err
			})
		},
	}
	var validFor time.Duration
	delegate := &cobra.Command{
		Use:   "delegate NAME KEY [--for D]",
		Short: "Let a delegate's key post to your announcement channel NAME; prints the delegation to give them",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if validFor <= 0 {
				return fmt.Errorf("--for %s: want a positive duration, such as 720h", validFor)
			}
			return c.withNode(cmd.Context(), func(n api.Core) error {
				if mine, err := checkJoined(cmd.Context(), n, "announce:"+args[0]); err != nil {
					return err
				} else if !mine {
					return fmt.Errorf("%s is not an announcement channel of yours (grapevine announce create makes one)", safe(args[0]))
				}
				until := time.Now().Add(validFor)
				d, err := n.Delegate(cmd.Context(), args[0], strings.TrimSpace(args[1]), until)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s\nValid until %s. The delegate posts with: grapevine announce post --delegation %s TEXT\n",
					d, until.Local().Format("2006-01-02 15:04"), d)
				return nil
			})
		},
	}
	delegate.Flags().DurationVar(&validFor, "for", 30*24*time.Hour, "how long the delegation lasts")
	cmd.AddCommand(create, follow, post, read, delegateKey, delegate)
	return cmd
}
