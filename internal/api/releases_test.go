package api

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/release"
	"github.com/grapevine-mesh/grapevine/internal/share"
)

// TestReleaseEndpoints: through the API, a node offers its shelf's release
// and lists it offered; Bob's node, fetching releases, takes the offer from
// a bundle, shelves it verified and lists it so; a node without a release
// key says why it cannot offer (400, no_releases).
func TestReleaseEndpoints(t *testing.T) {
	dir := shortDir(t)
	k, err := release.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := newNode(t, filepath.Join(dir, "a"), "Alice"), newNode(t, filepath.Join(dir, "b"), "Bob")
	c := served(t, alice, filepath.Join(dir, "a"))
	var ae *Error
	if _, err := c.OfferReleases(ctx, nil); !errors.As(err, &ae) || ae.Status != 400 || ae.Reason != node.ReasonNoReleases {
		t.Errorf("offer without a key: %v", err)
	}
	shelves := map[*node.Node]*share.Shelf{}
	for _, n := range []*node.Node{alice, bob} {
		s, err := share.Open(filepath.Join(t.TempDir(), "shelf"), k.Public())
		if err != nil {
			t.Fatal(err)
		}
		n.SetShelf(s)
		shelves[n] = s
	}
	data := bytes.Repeat([]byte("a grapevine binary "), 3000)
	src := filepath.Join(dir, "grapevine-v0.9.0-linux-amd64")
	sig, err := release.Sign(k, bytes.NewReader(data), release.TrustedComment(filepath.Base(src), "v0.9.0", "abc", "linux/amd64", 1796000000))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.WriteFile(src, data, 0o600), os.WriteFile(src+release.SigSuffix, sig, 0o600)); err != nil {
		t.Fatal(err)
	}
	must(shelves[alice].Add(src, ""))(t)

	offered := must(c.OfferReleases(ctx, nil))(t)
	if len(offered) != 1 || offered[0].State != node.ReleaseOffered || offered[0].Chunks != 2 {
		t.Fatalf("OfferReleases = %+v", offered)
	}
	same(t, "Releases", must(c.Releases(ctx))(t), must(Local{alice}.Releases(ctx))(t))
	if _, err := c.OfferReleases(ctx, []string{"grapevine-v9"}); !errors.As(err, &ae) || ae.Status != 400 || ae.Reason != node.ReasonNoRelease {
		t.Errorf("offering what the shelf lacks: %v", err)
	}

	must(alice.Export(filepath.Join(dir, "r.gvb")))(t)
	set := bob.Settings()
	set.FetchReleases = node.FetchReleasesAll
	must(bob.SaveSettings(set))(t)
	must(bob.ImportFile(ctx, filepath.Join(dir, "r.gvb")))(t)
	if err := bob.ShelveFetched(ctx); err != nil {
		t.Fatal(err)
	}
	rs := must(Local{bob}.Releases(ctx))(t)
	if len(rs) != 1 || rs[0].State != node.ReleaseShelved || rs[0].Name != "grapevine-v0.9.0-linux-amd64" {
		t.Fatalf("Bob's releases: %+v", rs)
	}
	if got, _, _, err := shelves[bob].Load("grapevine-v0.9.0-linux-amd64"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Bob's shelf: %v", err)
	}
}
