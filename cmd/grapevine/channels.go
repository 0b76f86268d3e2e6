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
	"github.com/grapevine-mesh/grapevine/internal/node"
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
	return c.withNode(ctx, func(n api.Core) error {
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
	})
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
