package api

// Releases over the mesh (SPEC §16.11) through the local API: offer the
// shelf's releases to neighbours, and list the releases offered by and to
// this node with what became of each. Offering seals the files' chunks and
// stamps one post per file (about a second each on a phone): the request
// waits for it, and a cancelled request stops the stamp.

import (
	"context"
	"net/http"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Releases is what `grapevine share` uses of a node: both Local and
// *Client implement it (it is part of Core).
type Releases interface {
	OfferReleases(ctx context.Context, names []string) ([]node.ReleaseStatus, error)
	Releases(ctx context.Context) ([]node.ReleaseStatus, error)
}

// OfferRequest is the body of POST /v1/releases/offer: the names of the
// shelf's files to offer, or none for every verified file it holds.
type OfferRequest struct {
	Names []string `json:"names,omitempty"`
}

func (s *Server) releaseRoutes() {
	s.handle("GET /v1/releases", func(*http.Request) (any, error) { return list(s.n.Releases()) })
	s.handle("POST /v1/releases/offer", func(r *http.Request) (any, error) {
		req, err := decode[OfferRequest](r)
		if err != nil {
			return nil, err
		}
		return list(s.n.OfferReleases(r.Context(), req.Names))
	})
}

// OfferReleases offers the named releases of the shelf (all when none).
func (c *Client) OfferReleases(ctx context.Context, names []string) ([]node.ReleaseStatus, error) {
	var v []node.ReleaseStatus
	return v, c.do(ctx, http.MethodPost, "/v1/releases/offer", nil, OfferRequest{Names: names}, &v)
}

// Releases lists the releases offered by and to the node.
func (c *Client) Releases(ctx context.Context) ([]node.ReleaseStatus, error) {
	var v []node.ReleaseStatus
	return v, c.do(ctx, http.MethodGet, "/v1/releases", nil, nil, &v)
}

func (l Local) OfferReleases(ctx context.Context, names []string) ([]node.ReleaseStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.OfferReleases(ctx, names)
}

func (l Local) Releases(ctx context.Context) ([]node.ReleaseStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Releases()
}
