package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/termtext"
)

// followMessages prints the messages (with one contact, in one group, or
// all), then follows the running node's event stream and prints each new
// message and each change of state as it happens, until Ctrl-C. Without a
// contact or group, posts in every group are printed too.
func (c *cli) followMessages(ctx context.Context, ref string, group, asJSON bool) error {
	cl, err := c.running(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if ref != "" && !group {
		if group, err = isGroup(ctx, cl, ref); err != nil {
			return err
		}
	}
	seen := map[string]string{} // message ID → status printed
	posts := map[string]bool{}  // group posts printed
	showPosts := func(ctx context.Context) error {
		var gs []node.RoomInfo
		if group {
			g, err := cl.Group(ctx, ref)
			if err != nil {
				return err
			}
			gs = []node.RoomInfo{g}
		} else {
			cs, err := cl.Groups(ctx)
			if err != nil {
				return err
			}
			for _, c := range cs {
				gs = append(gs, c.RoomInfo)
			}
		}
		for _, g := range gs {
			ms, err := cl.GroupMessages(ctx, g.ID)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if posts[m.ID] {
					continue
				}
				posts[m.ID] = true
				if asJSON {
					if err := c.printJSONLine(m); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(c.stdout, "%s in %s\n%s\n", groupMessageHead(m), safe(g.Name), termtext.Text(m.Text, "    "))
			}
		}
		return nil
	}
	show := func(ctx context.Context) error {
		if group || ref == "" {
			if err := showPosts(ctx); err != nil || group {
				return err
			}
		}
		ms, err := cl.Messages(ctx, ref)
		if err != nil {
			return notAGroup(err)
		}
		for _, m := range ms {
			status, ok := seen[m.ID]
			switch {
			case ok && status == m.Status:
				continue
			case asJSON:
				if err := c.printJSONLine(m); err != nil {
					return err
				}
			case ok:
				fmt.Fprintf(c.stdout, "%s  %s %s [%s → %s]\n", m.Time.Local().Format("2006-01-02 15:04"), arrowOf(m), safe(m.Contact), safe(status), safe(m.Status))
			default:
				fmt.Fprintf(c.stdout, "%s  %s %s [%s]\n%s\n", m.Time.Local().Format("2006-01-02 15:04"), arrowOf(m), safe(m.Contact), safe(m.Status), termtext.Text(m.Text, "    "))
			}
			seen[m.ID] = m.Status
		}
		return nil
	}
	err = cl.Events(ctx, func(ev api.Event) error {
		if ev.Type == "mesh" {
			return nil
		}
		return show(ctx) // hello: everything so far; change: what is new
	})
	if err == nil && ctx.Err() != nil {
		// Stopped (Ctrl-C): a last look, so that what the node knew when
		// the user stopped is printed, whatever the events in flight.
		last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = show(last)
	}
	return err
}

func arrowOf(m node.Message) string {
	if m.Direction == "out" {
		return "to"
	}
	return "from"
}

// printJSONLine prints v as one line of JSON (a stream of objects).
func (c *cli) printJSONLine(v any) error {
	return json.NewEncoder(c.stdout).Encode(v)
}
