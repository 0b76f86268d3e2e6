package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/tui"
)

func (c *cli) chatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "chat",
		Short: "Chat in the terminal: conversations, groups and public rooms, messages live, requests",
		Long: `A full-screen terminal client of the running node (grapevine up): the
conversation list with your groups (# NAME) among the contacts, newest activity
first (↑↓ choose, enter open, a accept or x reject a request, q quit), and a
chat view whose messages change state live (queued, carried, delivered), with a
send box (enter send, esc back to the list, ctrl+a/ctrl+x answer a request,
ctrl+c quit). A group shows its posts with their writers, and enter posts to
it; make and change groups with grapevine groups. Public rooms are listed too:
Nearby (◎), the channels you joined (# #NAME) and the announcement channels you
own or follow (! NAME), each post under its poster's pseudonym (the start of
the key); enter posts (a stamp first, about a second), except to another's
announcement channel. Join channels with grapevine channels join, mute posters
with grapevine channels mute.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.running(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			return tui.Run(ctx, cl, nil)
		},
	}
}
