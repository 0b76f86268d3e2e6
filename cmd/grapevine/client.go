package main

// How a command reaches the node: through the local API of the node running
// in the home (grapevine up), which holds the store unlocked, or else by
// unlocking the store itself.

import (
	"context"
	"errors"
	"fmt"

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
func (c *cli) running() (*api.Client, error) {
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
	return cl, err
}
