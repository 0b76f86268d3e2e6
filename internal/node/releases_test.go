package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/release"
	"github.com/grapevine-mesh/grapevine/internal/share"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Releases over the mesh (SPEC §16.11), between nodes that are not
// contacts, with a test release key: the project's key is never used here
// and no peer can choose the key a node trusts.

func newReleaseKey(t *testing.T) release.PrivateKey {
	t.Helper()
	k, err := release.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// releaseNode is a test node with a shelf trusting key, fetching releases
// as fetch says.
func releaseNode(t *testing.T, name string, clk *testClock, key release.PublicKey, fetch string) *testNode {
	t.Helper()
	n := newTestNode(t, name, clk)
	shelf, err := share.Open(filepath.Join(t.TempDir(), name+"-shelf"), key)
	if err != nil {
		t.Fatal(err)
	}
	n.SetShelf(shelf)
	if fetch != FetchReleasesOff {
		setFetch(t, n, fetch)
	}
	return n
}

func setFetch(t *testing.T, n *testNode, fetch string) {
	t.Helper()
	s := n.Settings()
	s.FetchReleases = fetch
	if _, err := n.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
}

// signedRelease writes a release file of size bytes for platform, signed
// by k as cmd/release signs, and returns its path and bytes.
func signedRelease(t *testing.T, k release.PrivateKey, name, platform string, size int) (string, []byte) {
	t.Helper()
	path, data := testFile(t, size, name)
	dest := filepath.Join(filepath.Dir(path), name)
	if err := os.Rename(path, dest); err != nil {
		t.Fatal(err)
	}
	sig, err := release.Sign(k, bytes.NewReader(data), release.TrustedComment(name, "v0.9.0", "abc123", platform, 1796000000))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest+release.SigSuffix, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	return dest, data
}

func shelve(t *testing.T, n *testNode, path string) {
	t.Helper()
	if _, err := n.rel.shelf.Add(path, ""); err != nil {
		t.Fatal(err)
	}
}

func offer(t *testing.T, n *testNode, names ...string) []ReleaseStatus {
	t.Helper()
	st, err := n.OfferReleases(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// own returns every envelope n holds of its own: its offers and chunks.
func own(t *testing.T, n *testNode) [][]byte {
	t.Helper()
	var out [][]byte
	err := n.eachEnvelope(func(flags byte, raw []byte, _ *envelope.Envelope) error {
		if flags&flagOwn != 0 {
			out = append(out, bytes.Clone(raw))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shelveNow finishes what the background shelving started (it waits for
// it) and returns the node's releases.
func shelveNow(t *testing.T, n *testNode) []ReleaseStatus {
	t.Helper()
	if err := n.ShelveFetched(context.Background()); err != nil {
		t.Fatal(err)
	}
	rs, err := n.Releases()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func releaseNamed(t *testing.T, rs []ReleaseStatus, name string) ReleaseStatus {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no release %s in %+v", name, rs)
	return ReleaseStatus{}
}

func onShelf(t *testing.T, n *testNode, name string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(n.rel.shelf.Dir(), name))
	if err != nil {
		t.Fatalf("%s: %s is not on the shelf: %v", n.id.Name, name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %s on the shelf differs from the release", n.id.Name, name)
	}
	if _, problems := n.rel.shelf.Scan(); len(problems) > 0 {
		t.Fatalf("%s: the shelf does not verify: %v", n.id.Name, problems)
	}
}

func shelfEmpty(t *testing.T, n *testNode) {
	t.Helper()
	entries, err := os.ReadDir(n.rel.shelf.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s: %s is on the shelf", n.id.Name, e.Name())
	}
}

func thisPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// TestReleaseOfferedOn: A offers a release; B, not A's contact, fetches it,
// verifies it against the release key, puts it on its shelf and offers it
// on; C, who hears only from B, gets it from B's offer. A file for another
// platform is seen but not fetched by nodes that fetch their own.
func TestReleaseOfferedOn(t *testing.T) {
	clk := newTestClock()
	k := newReleaseKey(t)
	a := releaseNode(t, "A", clk, k.Public(), FetchReleasesOff)
	b := releaseNode(t, "B", clk, k.Public(), FetchReleasesMine)
	c := releaseNode(t, "C", clk, k.Public(), FetchReleasesMine)

	name := "grapevine-v0.9.0-" + strings.ReplaceAll(thisPlatform(), "/", "-")
	path, data := signedRelease(t, k, name, thisPlatform(), 200_000)
	shelve(t, a, path)
	otherPath, _ := signedRelease(t, k, "grapevine-v0.9.0-plan9-386", "plan9/386", 50_000)
	shelve(t, a, otherPath)
	offered := offer(t, a)
	if len(offered) != 2 || offered[0].State != ReleaseOffered {
		t.Fatalf("A offered %+v", offered)
	}

	for _, raw := range own(t, a) {
		if e, _ := envelope.Parse(raw); e.Kind == envelope.KindPublic {
			t.Logf("an offer post is %d bytes on the wire", len(raw)) // SPEC §16.11
			if len(raw) > 1024 {
				t.Errorf("an offer post of %d bytes", len(raw))
			}
		}
	}
	rep := ingestFrom(t, b, "A", own(t, a)...)
	if rep.Invalid != 0 {
		t.Fatalf("B's ingest of A's offers: %+v", rep)
	}
	rs := shelveNow(t, b)
	if r := releaseNamed(t, rs, name); r.State != ReleaseShelved || r.Version != "v0.9.0" || r.Platform != thisPlatform() {
		t.Fatalf("B's release: %+v", r)
	}
	if r := releaseNamed(t, rs, "grapevine-v0.9.0-plan9-386"); r.State != ReleaseSeen || !strings.Contains(r.Note, "plan9/386") {
		t.Fatalf("B's plan9 release: %+v", r)
	}
	onShelf(t, b, name, data)
	if n := countItems(t, b, colFileData); n != 0 {
		t.Errorf("B keeps %d chunks of file data after shelving", n)
	}

	// C hears only B's own envelopes: B's offer and B's chunks.
	ingestFrom(t, c, "B", own(t, b)...)
	if r := releaseNamed(t, shelveNow(t, c), name); r.State != ReleaseShelved {
		t.Fatalf("C's release: %+v", r)
	}
	onShelf(t, c, name, data)

	// Offers and chunks are the same at every node (FileKey): C's offer of
	// the file names the same root as A's.
	if a1, c1 := releaseNamed(t, offered, name), releaseNamed(t, shelveNow(t, c), name); a1.ID != c1.ID {
		t.Errorf("A's offer %s and C's %s name different files", a1.ID, c1.ID)
	}
}

// TestReleaseFetchIsOptIn: a node that does not fetch releases carries an
// offer and its chunks as any relay, fetches nothing; turned on, it reads
// the offers it carries and completes from the chunks it holds.
func TestReleaseFetchIsOptIn(t *testing.T) {
	clk := newTestClock()
	k := newReleaseKey(t)
	a := releaseNode(t, "A", clk, k.Public(), FetchReleasesOff)
	b := releaseNode(t, "B", clk, k.Public(), FetchReleasesOff)
	path, data := signedRelease(t, k, "grapevine-v0.9.0-src.tar.gz", "", 100_000)
	shelve(t, a, path)
	offer(t, a)
	rep := ingestFrom(t, b, "A", own(t, a)...)
	if rep.Chunks != 0 || rep.New == 0 {
		t.Fatalf("B, not fetching: %+v", rep)
	}
	if rs := shelveNow(t, b); len(rs) != 0 {
		t.Fatalf("B, not in the channel, knows of releases: %+v", rs)
	}
	shelfEmpty(t, b)

	setFetch(t, b, FetchReleasesMine) // joins the channel, reads the offer carried here
	if r := releaseNamed(t, shelveNow(t, b), "grapevine-v0.9.0-src.tar.gz"); r.State != ReleaseShelved {
		t.Fatalf("B after turning fetching on: %+v", r)
	}
	onShelf(t, b, "grapevine-v0.9.0-src.tar.gz", data)
}

// postOffer posts an offer of f (whatever it holds) with sig from n, as a
// hostile node could: its chunks and the post, bypassing the shelf.
func postOffer(t *testing.T, n *testNode, data, sig []byte, name string) (*attach.File, [][]byte) {
	t.Helper()
	f, off, err := share.PrepareOffer(data, sig, name, DefaultFileLimit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.releaseChannel()
	if err != nil {
		t.Fatal(err)
	}
	before := len(own(t, n))
	n.mu.Lock()
	now := n.now().UTC()
	err = n.update(func(tx *store.Tx) error { return n.putChunks(tx, f, "", "", now) })
	e, pseudonym, serr := n.sealOffer(c, append([]byte{byte(TypeReleaseOffer)}, off.Marshal()...), now)
	n.mu.Unlock()
	if err = errors.Join(err, serr); err != nil {
		t.Fatal(err)
	}
	if _, err := n.stampAndStore(context.Background(), e, c.Bits, c.Name, pseudonym, "offer", now); err != nil {
		t.Fatal(err)
	}
	raws := own(t, n)
	if len(raws) != before+f.Manifest().Chunks+1 {
		t.Fatalf("posted %d envelopes", len(raws)-before)
	}
	return f, raws
}

// refusedNothingShelved checks that n refused the release name with a note
// containing want, holds none of its bytes, has nothing on its shelf and
// offers nothing on.
func refusedNothingShelved(t *testing.T, n *testNode, name, want string) {
	t.Helper()
	r := releaseNamed(t, shelveNow(t, n), name)
	if r.State != ReleaseRefused || !strings.Contains(r.Note, want) {
		t.Errorf("%s: %+v, want refused with %q", n.id.Name, r, want)
	}
	shelfEmpty(t, n)
	if got := countItems(t, n, colFileData); got != 0 {
		t.Errorf("%s keeps %d chunks of a refused release", n.id.Name, got)
	}
	if got := own(t, n); len(got) != 0 {
		t.Errorf("%s offers on %d envelopes of a refused release", n.id.Name, len(got))
	}
}

// TestTamperedReleaseRefused: an offer signed by another key (or by
// another key claiming the release key's ID) is refused before anything is
// fetched and not carried on; a file whose bytes are not the signed ones
// is fetched, refused when it is whole, and its bytes deleted; a chunk
// swapped by a carrier is refused and the file completes from the real
// one. Nothing refused is ever on the shelf or offered on.
func TestTamperedReleaseRefused(t *testing.T) {
	k := newReleaseKey(t)
	other := newReleaseKey(t)
	const name = "grapevine-v0.9.0-src.tar.gz"

	t.Run("another key", func(t *testing.T) {
		clk := newTestClock()
		a := releaseNode(t, "A", clk, other.Public(), FetchReleasesOff) // A trusts other: its shelf holds other's file
		b := releaseNode(t, "B", clk, k.Public(), FetchReleasesAll)
		path, _ := signedRelease(t, other, name, "", 70_000)
		shelve(t, a, path)
		offer(t, a)
		rep := ingestFrom(t, b, "A", own(t, a)...)
		if rep.Invalid != 1 || rep.Chunks != 0 {
			t.Errorf("B's ingest: %+v, want the offer invalid and no chunk fetched", rep)
		}
		refusedNothingShelved(t, b, name, "REFUSED before fetching")
	})

	t.Run("another key with the release key's ID", func(t *testing.T) {
		clk := newTestClock()
		a := releaseNode(t, "A", clk, k.Public(), FetchReleasesOff)
		b := releaseNode(t, "B", clk, k.Public(), FetchReleasesAll)
		_, data := signedRelease(t, k, name, "", 70_000)
		sig, err := release.Sign(other, bytes.NewReader(data), release.TrustedComment(name, "v0.9.0", "abc123", "", 1796000000))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(sig), "\n")
		raw, _ := base64.StdEncoding.DecodeString(lines[1])
		copy(raw[2:10], k.ID[:])
		lines[1] = base64.StdEncoding.EncodeToString(raw)
		_, raws := postOffer(t, a, data, []byte(strings.Join(lines, "\n")), name)
		ingestFrom(t, b, "A", raws...)
		refusedNothingShelved(t, b, name, "trusted comment was altered")
	})

	t.Run("bytes not the signed ones", func(t *testing.T) {
		clk := newTestClock()
		a := releaseNode(t, "A", clk, k.Public(), FetchReleasesOff)
		b := releaseNode(t, "B", clk, k.Public(), FetchReleasesAll)
		path, data := signedRelease(t, k, name, "", 70_000)
		sig, err := os.ReadFile(path + release.SigSuffix)
		if err != nil {
			t.Fatal(err)
		}
		evil := bytes.Clone(data)
		evil[40_000] ^= 0x80
		_, raws := postOffer(t, a, evil, sig, name)
		rep := ingestFrom(t, b, "A", raws...)
		if rep.Chunks != 3 {
			t.Fatalf("B fetched %d chunks of 3: %+v", rep.Chunks, rep)
		}
		refusedNothingShelved(t, b, name, "REFUSED")
	})

	t.Run("a chunk swapped", func(t *testing.T) {
		clk := newTestClock()
		a := releaseNode(t, "A", clk, k.Public(), FetchReleasesOff)
		b := releaseNode(t, "B", clk, k.Public(), FetchReleasesAll)
		path, data := signedRelease(t, k, name, "", 70_000)
		shelve(t, a, path)
		offer(t, a)
		f, _, err := share.PrepareOffer(data, readSig(t, path), name, DefaultFileLimit)
		if err != nil {
			t.Fatal(err)
		}
		// Anyone holds the file key (the offer is public): a carrier seals
		// chunk 1 with other bytes, which opens but is not the file's.
		ks := f.Keys()
		var good [][]byte
		var chunk1 []byte
		for _, raw := range own(t, a) {
			e, _ := envelope.Parse(raw)
			if i, ok := ks.Index(e.Tag); ok && i == 1 && e.Kind == envelope.KindChunk {
				chunk1 = raw
				continue
			}
			good = append(good, raw)
		}
		m := f.Manifest()
		forged := attach.SealChunk(ks, 1, make([]byte, 32*2), bytes.Repeat([]byte("x"), m.ChunkLen(1)), envelopeExpiry(t, chunk1), 3)
		rep := ingestFrom(t, b, "evil", append(good, forged)...)
		if rep.Invalid != 1 {
			t.Errorf("the forged chunk: %+v, want 1 invalid", rep)
		}
		if r := releaseNamed(t, shelveNow(t, b), name); r.State != ReleaseFetching || r.Have != m.Chunks-1 {
			t.Fatalf("B with a forged chunk: %+v", r)
		}
		shelfEmpty(t, b)
		ingestFrom(t, b, "A", chunk1)
		if r := releaseNamed(t, shelveNow(t, b), name); r.State != ReleaseShelved {
			t.Fatalf("B with the real chunk: %+v", r)
		}
		onShelf(t, b, name, data)
	})
}

func readSig(t *testing.T, path string) []byte {
	t.Helper()
	sig, err := os.ReadFile(path + release.SigSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func envelopeExpiry(t *testing.T, raw []byte) uint32 {
	t.Helper()
	e, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e.Expiry
}

// TestReleasesNeedAKey: a node without a shelf (no release key) neither
// offers nor fetches, and says why.
func TestReleasesNeedAKey(t *testing.T) {
	n := newTestNode(t, "A", newTestClock())
	if _, err := n.OfferReleases(context.Background(), nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no release key") {
		t.Errorf("offer without a key: %v", err)
	}
	s := n.Settings()
	s.FetchReleases = FetchReleasesAll
	if _, err := n.SaveSettings(s); !errors.Is(err, ErrInvalid) {
		t.Errorf("fetching without a key: %v", err)
	}
	s.FetchReleases = "sometimes"
	if _, err := n.SaveSettings(s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "fetch_releases") {
		t.Errorf("fetch_releases=sometimes: %v", err)
	}
}

// TestReleaseRecordsBounded: offers not fetched (refused or seen) are
// remembered at most maxReleaseRecords, however many come.
func TestReleaseRecordsBounded(t *testing.T) {
	k, other := newReleaseKey(t), newReleaseKey(t)
	n := releaseNode(t, "B", newTestClock(), k.Public(), FetchReleasesAll)
	for i := range maxReleaseRecords + 20 {
		data := []byte(strings.Repeat("x", i+1))
		sig, err := release.Sign(other, bytes.NewReader(data), release.TrustedComment("grapevine-junk", "v0", "c", "", 1))
		if err != nil {
			t.Fatal(err)
		}
		_, off, err := share.PrepareOffer(data, sig, "grapevine-junk", DefaultFileLimit)
		if err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		var verdict int
		err = n.update(func(tx *store.Tx) (err error) {
			verdict, err = n.readOffer(tx, off.Marshal(), n.now())
			return err
		})
		n.mu.Unlock()
		if err != nil || verdict != pubDrop {
			t.Fatalf("offer %d: verdict %d, %v", i, verdict, err)
		}
	}
	if got := countItems(t, n, colReleases); got != maxReleaseRecords {
		t.Errorf("%d release records kept, want %d", got, maxReleaseRecords)
	}
}
