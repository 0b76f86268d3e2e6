package node

// Releases over the mesh (SPEC §16.11): a node offers the verified release
// files of its shelf as posts of the well-known public channel
// #grapevine-releases (§15.11), each carrying the file's manifest and its
// minisign signature, and the files as ordinary chunk envelopes (§16.2)
// anyone may carry. A node that fetches releases (the fetch_releases
// setting) checks an offer's signature against the release key before it
// fetches anything, fetches the file like a room's (no receipts), verifies
// the whole file against the signature, and only then puts it on its shelf
// and offers it on. The release key comes from whoever opened the node
// (SetShelf), never from a peer.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/share"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

const (
	// ReleaseChannel is the public channel release offers are posted to:
	// no password, the default stamp difficulty. Anyone can read it; that
	// is what it is for.
	ReleaseChannel = "#grapevine-releases"
	// TypeReleaseOffer is the content type of a public post that offers a
	// release: a share.Offer follows.
	TypeReleaseOffer ContentType = 11

	colReleases = "releases" // by the file's Merkle root in hex: a releaseRecord

	// maxReleaseRecords bounds the offers remembered that were not fetched
	// (seen or refused): offers cost a stamp each, but a flood of them must
	// not fill the store.
	maxReleaseRecords = 256

	ReasonNoReleases = "no_releases" // this grapevine has no release key
	ReasonNoRelease  = "no_release"  // no such release on the shelf
)

// The values of the fetch_releases setting.
const (
	FetchReleasesOff  = "off"  // fetch nothing (the default): offers are only carried
	FetchReleasesMine = "mine" // this device's platform, and files for no platform (source, sums)
	FetchReleasesAll  = "all"  // every platform within the file limit
)

// States of a release this node knows of.
const (
	ReleaseOffered  = "offered"  // on my shelf, offered by me
	ReleaseSeen     = "seen"     // offered to me, signature checked, not fetched (Note says why)
	ReleaseFetching = "fetching" // its chunks are being gathered
	ReleaseShelved  = "shelved"  // fetched, verified whole, on my shelf, offered on
	ReleaseRefused  = "refused"  // did not verify: never on the shelf, never offered on (Note says why)
)

// ReleaseStatus is a release offered by or to this node.
type ReleaseStatus struct {
	ID       string    `json:"id"` // the first 16 hex digits of the file's Merkle root
	Name     string    `json:"name"`
	Version  string    `json:"version,omitempty"`
	Platform string    `json:"platform,omitempty"`
	Size     int64     `json:"size"`
	State    string    `json:"state"`
	Note     string    `json:"note,omitempty"`
	Chunks   int       `json:"chunks"`
	Have     int       `json:"have"`              // chunks held, while fetching
	Sources  int       `json:"sources,omitempty"` // carriers they came from since the node started
	Time     time.Time `json:"time"`              // of the last change
}

type releaseRecord struct {
	ReleaseStatus
	Root     string `json:"root"` // hex
	Manifest []byte `json:"manifest,omitempty"`
	Sig      []byte `json:"sig,omitempty"`
}

// releases is the node's release state in memory.
type releases struct {
	shelf   *share.Shelf
	work    sync.Mutex // one ShelveFetched at a time
	wg      sync.WaitGroup
	closed  bool // the node is closing: nothing more starts in the background
	started bool // reading posts started a transfer: look again at what is carried
}

// SetShelf gives the node its shelf of releases, whose key is the only
// one it trusts for releases: the project's, or a test's. Without a shelf
// the node neither offers nor fetches releases; offers are carried as any
// post.
func (n *Node) SetShelf(s *share.Shelf) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rel = &releases{shelf: s}
}

// stopReleases lets the shelving in the background finish, and starts no
// more: Close calls it before it locks the home. It finishes rather than
// stops, so that a command that imported the last chunk of a release
// (no daemon) verifies, shelves and offers it on before it exits: the
// work is bounded (the files whose last chunk came, a stamp each).
func (n *Node) stopReleases() {
	n.mu.Lock()
	r := n.rel
	if r != nil {
		r.closed = true
	}
	n.mu.Unlock()
	if r != nil {
		r.wg.Wait()
	}
}

// kickReleases shelves the releases whose last chunk just arrived, in the
// background (verifying and offering on take a while: a stamp is about a
// second on a phone). n.mu is held.
func (n *Node) kickReleases() {
	r := n.rel
	if r == nil || r.closed {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := n.ShelveFetched(context.Background()); err != nil {
			n.log.Warn("releases: shelving fetched releases failed", "err", err)
		}
	}()
}

func releaseTransfer(root string) string { return "r" + root }

func isReleaseTransfer(id string) bool { return strings.HasPrefix(id, "r") }

func (n *Node) noReleases() error {
	return invalid(ReasonNoReleases, "this grapevine carries no release key, so it neither offers nor fetches releases")
}

// releaseChannel joins #grapevine-releases if this node is not in it yet
// (one Argon2id, without holding the node) and returns it.
func (n *Node) releaseChannel() (*room.Channel, error) {
	find := func() (c *room.Channel, err error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		err = n.st.View(func(tx *store.Tx) error {
			pr, err := n.public(tx)
			if err == nil {
				c = pr.channels[ReleaseChannel]
			}
			return err
		})
		return c, err
	}
	if c, err := find(); err != nil || c != nil {
		return c, err
	}
	if _, err := n.JoinChannel(ReleaseChannel, "", 0); err != nil {
		return nil, err
	}
	return find()
}

// OfferReleases offers the named releases of the shelf (all it holds
// verified when names is empty) over the mesh: each file's chunks go into
// the outbox, then an offer is posted to #grapevine-releases. A file is
// verified again as it is read; one over the file limit is refused.
func (n *Node) OfferReleases(ctx context.Context, names []string) ([]ReleaseStatus, error) {
	n.mu.Lock()
	r := n.rel
	n.mu.Unlock()
	if r == nil {
		return nil, n.noReleases()
	}
	if len(names) == 0 {
		items, problems := r.shelf.Scan()
		for _, p := range problems {
			n.log.Warn("releases: not offered", "err", p)
		}
		for _, it := range items {
			names = append(names, it.Name)
		}
	}
	if len(names) == 0 {
		return nil, invalid(ReasonNoRelease, "the shelf %s holds no verified release", r.shelf.Dir())
	}
	c, err := n.releaseChannel()
	if err != nil {
		return nil, err
	}
	var out []ReleaseStatus
	for _, name := range names {
		st, err := n.offerRelease(ctx, r, c, name, ReleaseOffered)
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// offerRelease offers one file of the shelf; state is what its record says
// then (offered, or shelved for one fetched and offered on).
func (n *Node) offerRelease(ctx context.Context, r *releases, c *room.Channel, name, state string) (ReleaseStatus, error) {
	if !r.shelf.Has(name) {
		return ReleaseStatus{}, invalid(ReasonNoRelease, "no release %q on the shelf %s", name, r.shelf.Dir())
	}
	data, sig, it, err := r.shelf.Load(name)
	if err != nil {
		return ReleaseStatus{}, invalid(ReasonNoRelease, "not offered: %v", err)
	}
	f, off, err := share.PrepareOffer(data, sig, it.Name, n.FileLimit())
	if errors.Is(err, attach.ErrTooLarge) {
		return ReleaseStatus{}, invalid(ReasonInvalidSetting, "%s is %d bytes, over this node's file limit of %d (the file_limit setting)", name, len(data), n.FileLimit())
	} else if err != nil {
		return ReleaseStatus{}, err
	}
	m := f.Manifest()
	root := hex.EncodeToString(m.Root[:])
	content := append([]byte{byte(TypeReleaseOffer)}, off.Marshal()...)
	n.mu.Lock()
	now := n.now().UTC().Truncate(time.Second)
	rec := releaseRecord{ReleaseStatus: ReleaseStatus{ID: root[:16], Name: it.Name, Version: it.Version, Platform: it.Platform,
		Size: it.Size, State: state, Chunks: m.Chunks, Have: m.Chunks, Time: now}, Root: root}
	if state == ReleaseShelved {
		rec.Note = "fetched, verified against the release key, offered on"
	}
	var bits int
	err = n.update(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		bits = max(pr.policy.StampBits, c.Bits)
		if err := n.putChunks(tx, f, "", "", now); err != nil {
			return err
		}
		return n.putRelease(tx, &rec)
	})
	var e *envelope.Envelope
	var pseudonym string
	if err == nil {
		e, pseudonym, err = n.sealOffer(c, content, now)
	}
	n.mu.Unlock()
	if err != nil {
		return ReleaseStatus{}, fmt.Errorf("failed to offer %s: %w", name, err)
	}
	if _, err := n.stampAndStore(ctx, e, bits, c.Name, pseudonym, "offers "+it.Name, now); err != nil {
		return ReleaseStatus{}, err
	}
	n.log.Info("releases: offered", "name", it.Name, "size", it.Size, "chunks", m.Chunks)
	return rec.ReleaseStatus, nil
}

// sealOffer seals an offer post, to be stamped, and names its pseudonym
// (n.mu held).
func (n *Node) sealOffer(c *room.Channel, content []byte, now time.Time) (*envelope.Envelope, string, error) {
	p := keys.PeriodOf(now)
	e, err := c.Seal(n.id, p, content, n.envelopeExpiry(), n.startHops(), n.rand)
	if err != nil {
		return nil, "", err
	}
	return e, hex.EncodeToString(c.Pseudonym(n.id, p).Public().(ed25519.PublicKey)), nil
}

// putRelease stores a release record: one being fetched lives as long as
// an envelope may, the others as long as the node's retention.
func (n *Node) putRelease(tx *store.Tx, rec *releaseRecord) error {
	exp := rec.Time.Add(n.cfg.Retention)
	if rec.State == ReleaseFetching {
		exp = rec.Time.Add(MaxLifetime)
	}
	return putJSON(tx, colReleases, []byte(rec.Root), rec, exp)
}

// readOffer reads an offer posted to #grapevine-releases (n.mu held, in
// the transaction reading the post). An offer that does not parse, or
// whose signature the release key did not make, is dropped (not carried
// on) and remembered as refused; one this node does not fetch is
// remembered as seen, with why; one it fetches starts a transfer.
func (n *Node) readOffer(tx *store.Tx, payload []byte, now time.Time) (int, error) {
	r := n.rel
	if r == nil {
		return pubCarry, nil // no key to judge it by: carried as any post
	}
	off, m, err := share.ParseOffer(payload)
	if err != nil {
		return pubDrop, nil
	}
	root := hex.EncodeToString(m.Root[:])
	if ok, err := tx.Has(colReleases, []byte(root)); err != nil || ok {
		return pubCarry, err // known already
	}
	rec := releaseRecord{ReleaseStatus: ReleaseStatus{ID: root[:16], Name: m.Name, Size: m.Size, Chunks: m.Chunks,
		Time: now.UTC().Truncate(time.Second)}, Root: root}
	info, err := share.CheckOffer(r.shelf.Key(), off, m)
	if err != nil {
		n.log.Warn("releases: refused an offer before fetching it", "name", m.Name, "err", err)
		rec.State, rec.Note = ReleaseRefused, "REFUSED before fetching: "+err.Error()
		return pubDrop, n.putReleaseBounded(tx, &rec)
	}
	rec.Version, rec.Platform = info.Version, info.Platform
	if note := n.notFetched(r, info); note != "" {
		rec.State, rec.Note = ReleaseSeen, note
		return pubCarry, n.putReleaseBounded(tx, &rec)
	}
	rec.State, rec.Manifest, rec.Sig = ReleaseFetching, off.Manifest, off.Sig
	id := releaseTransfer(root)
	if _, _, err := n.startTransfer(tx, id, off.Manifest, now); err != nil {
		return pubCarry, err
	}
	var tr transferRecord // a release's bytes live no longer than its record
	if _, err := getJSON(tx, colTransfers, []byte(id), &tr); err != nil {
		return pubCarry, err
	}
	tr.Expires = rec.Time.Add(MaxLifetime)
	if err := putJSON(tx, colTransfers, []byte(id), &tr, tr.Expires); err != nil {
		return pubCarry, err
	}
	r.started = true
	n.log.Info("releases: fetching an offered release", "name", info.Name, "size", info.Size, "chunks", m.Chunks)
	return pubCarry, n.putRelease(tx, &rec)
}

// notFetched says why this node does not fetch an offered release, or ""
// if it does.
func (n *Node) notFetched(r *releases, info share.OfferInfo) string {
	mine := runtime.GOOS + "/" + runtime.GOARCH
	switch mode := n.set.FetchReleases; {
	case mode != FetchReleasesMine && mode != FetchReleasesAll:
		return "not fetched: the fetch_releases setting is off"
	case mode == FetchReleasesMine && info.Platform != "" && info.Platform != mine:
		return fmt.Sprintf("not fetched: for %s, not this device's %s (fetch_releases=all fetches every platform)", info.Platform, mine)
	case info.Size > n.set.FileLimit:
		return fmt.Sprintf("not fetched: %d bytes, over this node's file limit of %d (the file_limit setting)", info.Size, n.set.FileLimit)
	case r.shelf.Has(info.Name):
		return "not fetched: a file of that name is on the shelf already"
	}
	return ""
}

// putReleaseBounded stores a record of an offer not fetched, unless
// maxReleaseRecords are held already.
func (n *Node) putReleaseBounded(tx *store.Tx, rec *releaseRecord) error {
	count := 0
	if err := tx.ForEach(colReleases, func([]byte, time.Time) error { count++; return nil }); err != nil {
		return err
	}
	if count >= maxReleaseRecords {
		return nil
	}
	return n.putRelease(tx, rec)
}

// ShelveFetched verifies every release whose chunks have all arrived
// against the release key: one that verifies goes on the shelf and is
// offered on; one that does not is refused, its bytes deleted, and the
// refusal logged and shown (Releases). Either way the file's bytes leave
// the store. The node calls it in the background when a release's last
// chunk arrives; it is safe to call at any time.
func (n *Node) ShelveFetched(ctx context.Context) error {
	n.mu.Lock()
	r := n.rel
	n.mu.Unlock()
	if r == nil {
		return nil
	}
	r.work.Lock()
	defer r.work.Unlock()
	recs, err := n.fetchedReleases()
	if err != nil {
		return err
	}
	for i := range recs {
		ok, err := n.shelveRelease(r, &recs[i])
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		c, err := n.releaseChannel()
		if err != nil {
			return err
		}
		if _, err := n.offerRelease(ctx, r, c, recs[i].Name, ReleaseShelved); err != nil {
			return fmt.Errorf("failed to offer on %s: %w", recs[i].Name, err)
		}
	}
	return nil
}

// fetchedReleases lists the releases being fetched whose every chunk is
// held and verified against the manifest.
func (n *Node) fetchedReleases() ([]releaseRecord, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []releaseRecord
	err := n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colReleases, func(v []byte, _ time.Time) error {
			var rec releaseRecord
			if err := jsonUnmarshal(v, &rec); err != nil || rec.State != ReleaseFetching {
				return nil
			}
			var tr transferRecord
			if ok, err := getJSON(tx, colTransfers, []byte(releaseTransfer(rec.Root)), &tr); err != nil || !ok || !tr.Done {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// shelveRelease verifies a fetched release and puts it on the shelf, or
// refuses it. It reports whether it is on the shelf now.
func (n *Node) shelveRelease(r *releases, rec *releaseRecord) (bool, error) {
	id := releaseTransfer(rec.Root)
	var data [][]byte
	n.mu.Lock()
	err := n.st.View(func(tx *store.Tx) error {
		m, err := attach.ParseManifest(rec.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
		if err != nil {
			return fmt.Errorf("failed to read the manifest of %s: %w", rec.Name, err)
		}
		data, err = chunksOf(tx, id, m, rec.Name)
		return err
	})
	n.mu.Unlock()
	if err != nil {
		return false, err
	}
	// Verified and written without holding the node: 16 MiB take a while.
	_, verr := r.shelf.AddData(bytes.Join(data, nil), rec.Sig, rec.Name)
	if verr != nil && !errors.Is(verr, share.ErrRefused) {
		return false, verr // the shelf failed (a full disk): the bytes stay, it is tried again
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rec.State, rec.Note, rec.Have, rec.Manifest, rec.Sig = ReleaseShelved, "", rec.Chunks, nil, nil
	rec.Time = n.now().UTC().Truncate(time.Second)
	if verr != nil {
		rec.State, rec.Note = ReleaseRefused, verr.Error()
		n.log.Warn("releases: refused a fetched release: it does not verify against the release key", "name", rec.Name, "err", verr)
	} else {
		n.log.Info("releases: fetched, verified and on the shelf", "name", rec.Name, "size", rec.Size)
	}
	err = n.update(func(tx *store.Tx) error {
		if err := deleteFile(tx, id); err != nil {
			return err
		}
		return n.putRelease(tx, rec)
	})
	delete(n.files, id)
	return verr == nil && err == nil, err
}

// Releases lists the releases this node offered, and those offered to it
// with what became of each (fetching: how far), newest first.
func (n *Node) Releases() ([]ReleaseStatus, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []ReleaseStatus
	err := n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colReleases, func(v []byte, _ time.Time) error {
			var rec releaseRecord
			if err := jsonUnmarshal(v, &rec); err != nil {
				return nil
			}
			if rec.State == ReleaseFetching {
				a := &Attachment{Chunks: rec.Chunks}
				if err := n.fileProgress(tx, releaseTransfer(rec.Root), a); err != nil {
					return err
				}
				rec.Have, rec.Sources = a.Have, a.Sources
			}
			out = append(out, rec.ReleaseStatus)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}

// releasesSettingChanged forgets the offers seen but not fetched, and
// reads again the offers carried here, when the fetch_releases setting
// changed: what was not fetched may be now. The channel is joined first
// when fetching is turned on (one Argon2id, without holding the node).
func (n *Node) releasesSettingChanged(mode string) error {
	n.mu.Lock()
	r := n.rel
	n.mu.Unlock()
	if r == nil {
		if mode == FetchReleasesOff {
			return nil
		}
		return n.noReleases()
	}
	if mode != FetchReleasesOff {
		if _, err := n.releaseChannel(); err != nil {
			return err
		}
	}
	n.mu.Lock()
	err := n.update(func(tx *store.Tx) error {
		var seen [][]byte
		err := tx.ForEach(colReleases, func(v []byte, _ time.Time) error {
			var rec releaseRecord
			if jsonUnmarshal(v, &rec) == nil && rec.State == ReleaseSeen {
				seen = append(seen, []byte(rec.Root))
			}
			return nil
		})
		for _, k := range seen {
			if err == nil {
				err = tx.Delete(colReleases, k)
			}
		}
		return err
	})
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return n.readCarried()
}

// offerStarted reports (and forgets) whether reading posts started a
// release's transfer, so that the caller looks again at what is carried.
func (n *Node) offerStarted() bool {
	if n.rel == nil || !n.rel.started {
		return false
	}
	n.rel.started = false
	return true
}
