package main

// How a command reaches the node: through the local API of the node running
// in the home (grapevine up), which holds the store unlocked, or else by
// unlocking the store itself.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
)

// core reaches the node of the home: the running node through its local API
// if one answers (no passphrase needed), else the store, unlocked in-process.
func (c *cli) core(ctx context.Context) (api.Core, error) {
	home, err := c.homeDir()
	if err != nil {
		return nil, err
	}
	if err := c.checkHome(home); err != nil {
		return nil, err
	}
	cl, err := api.Dial(home)
	if err == nil {
		if err := c.waitReady(ctx, cl, home); err != nil {
			cl.Close()
			return nil, err
		}
		return cl, nil
	}
	if !errors.Is(err, api.ErrNoNode) {
		return nil, err
	}
	n, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	return api.Local{N: n}, nil
}

// withNode runs fn on the node of the home (see core) and lets go of it.
func (c *cli) withNode(ctx context.Context, fn func(n api.Core) error) error {
	n, err := c.core(ctx)
	if err != nil {
		return err
	}
	err = fn(n)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// running returns a client of the node running in the home, or an error
// telling how to start one.
func (c *cli) running(ctx context.Context) (*api.Client, error) {
	home, err := c.homeDir()
	if err != nil {
		return nil, err
	}
	if err := c.checkHome(home); err != nil {
		return nil, err
	}
	cl, err := api.Dial(home)
	if errors.Is(err, api.ErrNoNode) {
		return nil, fmt.Errorf("no node is running in %s: start one with `grapevine up`", home)
	}
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, cl, home); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// startWait bounds how long a command waits for a starting node: unlocking
// the store (a memory-hard KDF) and loading what it holds.
const startWait = 2 * time.Minute

// waitReady waits while the node running in home is starting.
func (c *cli) waitReady(ctx context.Context, cl *api.Client, home string) error {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	return cl.WaitReady(ctx, func() {
		fmt.Fprintf(c.stderr, "The node in %s is starting; waiting for it…\n", home)
	})
}
