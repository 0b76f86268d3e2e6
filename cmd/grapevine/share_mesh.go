package main

// grapevine share over the mesh (SPEC §16.11): offer the shelf's releases
// to neighbours, list the releases offered by and to this node. The node
// (running, or opened for the command) does the work; every node the CLI
// opens gets the shelf HOME/releases and the release key this binary
// carries, so that a release whose last chunk an import brings is
// verified, shelved and offered on before the command exits.

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/release"
	"github.com/grapevine-mesh/grapevine/internal/share"
)

// testReleaseKey replaces the project's release key for the nodes this
// binary opens. Only this package's tests set it (share_test.go): no flag,
// setting, environment or peer can choose the key the mesh trusts.
var testReleaseKey *release.PublicKey

// meshReleaseKey is the key the nodes this binary opens trust for
// releases: the project's, none in a build without it.
func meshReleaseKey() (release.PublicKey, bool) {
	if testReleaseKey != nil {
		return *testReleaseKey, true
	}
	k, err := release.ProjectKey()
	return k, err == nil
}

// giveShelf gives a node opened on home its shelf, if this binary carries
// a release key. A shelf that cannot be opened is said, not fatal: the
// node runs without releases.
func (c *cli) giveShelf(n *node.Node, home string) {
	key, ok := meshReleaseKey()
	if !ok {
		return
	}
	shelf, err := share.Open(filepath.Join(home, shelfDir), key)
	if err != nil {
		fmt.Fprintf(c.stderr, "Releases are neither offered nor fetched: %v\n", err)
		return
	}
	n.SetShelf(shelf)
}

func (c *cli) offerReleases(ctx context.Context, names []string, asJSON bool) error {
	return c.withNode(ctx, func(n api.Core) error {
		rs, err := n.OfferReleases(ctx, names)
		if err != nil {
			return fmt.Errorf("failed to offer releases: %w", err)
		}
		if asJSON {
			return c.printJSON(rs)
		}
		for _, r := range rs {
			fmt.Fprintf(c.stdout, "Offered %s (%s) over the mesh in %d chunks\n", safe(r.Name), describeStatus(r), r.Chunks)
		}
		fmt.Fprintln(c.stdout, "Neighbours that fetch releases (grapevine settings set fetch-releases=mine) verify them against the release key, keep them and offer them on.")
		if _, running := n.(*api.Client); !running {
			fmt.Fprintln(c.stdout, "No node is running: the offers leave with the next grapevine up or export.")
		}
		return nil
	})
}

func (c *cli) listOffers(ctx context.Context, asJSON bool) error {
	return c.withNode(ctx, func(n api.Core) error {
		rs, err := n.Releases(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			if rs == nil {
				rs = []node.ReleaseStatus{}
			}
			return c.printJSON(rs)
		}
		if len(rs) == 0 {
			fmt.Fprintln(c.stdout, "No release was offered by or to this node. Offer the shelf's with grapevine share; fetch neighbours' with grapevine settings set fetch-releases=mine.")
			return nil
		}
		for _, r := range rs {
			state := r.State
			switch r.State {
			case node.ReleaseFetching:
				state = fmt.Sprintf("fetching: %d of %d chunks", r.Have, r.Chunks)
			case node.ReleaseRefused:
				state = "REFUSED, not on the shelf, not offered on"
			}
			fmt.Fprintf(c.stdout, "%s  %s  %s\n", safe(r.Name), describeStatus(r), state)
			if r.Note != "" {
				fmt.Fprintf(c.stdout, "    %s\n", safe(r.Note))
			}
		}
		return nil
	})
}

func describeStatus(r node.ReleaseStatus) string {
	return describeRelease(share.Item{Name: r.Name, Version: r.Version, Platform: r.Platform, Size: r.Size})
}
