package share

// Release offers over the mesh (SPEC §16.11). A node offers a release file
// from its shelf as a public post of the well-known channel
// #grapevine-releases carrying the file's attachment manifest and its
// minisign signature; the file itself travels as ordinary chunk envelopes
// (§16.2) that anyone may carry. A receiver checks the signature's comment
// against the release key before fetching anything, and the whole file
// against the signature before it goes on the shelf.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"crypto/hkdf"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/release"
)

const (
	// OfferVersion is the first byte of an offer.
	OfferVersion = 1
	// MaxOfferSig bounds the signature an offer carries: minisign's are
	// about 330 bytes with a release's trusted comment.
	MaxOfferSig = 1024
	// MaxOfferSize is the longest offer.
	MaxOfferSize = 1 + 2 + attach.MaxManifestSize + 2 + MaxOfferSig
	// OfferMediaType is the media type of every offered file's manifest.
	OfferMediaType = "application/octet-stream"

	labelFileKey = "grapevine release file key v1"
)

// ErrOffer is wrapped by every error of ParseOffer.
var ErrOffer = errors.New("invalid release offer")

// Offer is what a release offer carries: the manifest of the file (§16.5,
// without receipts) and its minisign signature file.
type Offer struct {
	Manifest []byte
	Sig      []byte
}

// Marshal encodes o: version (1) || be16(len manifest) || manifest ||
// be16(len sig) || sig.
func (o Offer) Marshal() []byte {
	b := make([]byte, 0, 5+len(o.Manifest)+len(o.Sig))
	b = append(b, OfferVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Manifest)))
	b = append(b, o.Manifest...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Sig)))
	return append(b, o.Sig...)
}

// ParseOffer decodes an offer strictly: one encoding, a manifest that
// parses (under the protocol's ceiling: the receiver's file limit is its
// own business), has no receipts and names the octet-stream type, a
// signature of 1 to MaxOfferSig bytes, nothing after it. It does not check
// the signature: CheckOffer does, against a key.
func ParseOffer(b []byte) (Offer, *attach.Manifest, error) {
	if len(b) > MaxOfferSize {
		return Offer{}, nil, fmt.Errorf("%w: %d bytes, longest %d", ErrOffer, len(b), MaxOfferSize)
	}
	if len(b) < 1 || b[0] != OfferVersion {
		return Offer{}, nil, fmt.Errorf("%w: not version %d", ErrOffer, OfferVersion)
	}
	man, rest, ok := cut16(b[1:])
	if !ok {
		return Offer{}, nil, fmt.Errorf("%w: the manifest runs past the end", ErrOffer)
	}
	sig, rest, ok := cut16(rest)
	switch {
	case !ok:
		return Offer{}, nil, fmt.Errorf("%w: the signature runs past the end", ErrOffer)
	case len(rest) != 0:
		return Offer{}, nil, fmt.Errorf("%w: %d bytes after the signature", ErrOffer, len(rest))
	case len(sig) == 0 || len(sig) > MaxOfferSig:
		return Offer{}, nil, fmt.Errorf("%w: a signature of %d bytes (1 to %d)", ErrOffer, len(sig), MaxOfferSig)
	}
	m, err := attach.ParseManifest(man, attach.Limits{MaxFileSize: attach.MaxFileSize})
	switch {
	case err != nil:
		return Offer{}, nil, fmt.Errorf("%w: %w", ErrOffer, err)
	case m.Receipts:
		return Offer{}, nil, fmt.Errorf("%w: the manifest asks for receipts: a release is for anyone", ErrOffer)
	case m.MediaType != OfferMediaType:
		return Offer{}, nil, fmt.Errorf("%w: media type %q, want %s", ErrOffer, m.MediaType, OfferMediaType)
	}
	return Offer{Manifest: bytes.Clone(man), Sig: bytes.Clone(sig)}, m, nil
}

func cut16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// OfferInfo is what an offer says of its file, once its signature's
// comment verified: what the release key vouches for (name, version,
// platform, commit) and what the manifest says (size, root).
type OfferInfo struct {
	Name     string
	Version  string
	Platform string
	Commit   string
	Size     int64
	Root     [attach.HashSize]byte
	Manifest *attach.Manifest
}

// CheckOffer checks, before anything is fetched, that an offer's signature
// was made by key with its trusted comment intact (release.VerifyComment),
// that the signed name is a release file's, and that the manifest names
// the file the signature names. What it cannot check without the file —
// that the bytes are the ones signed — Shelf.AddData checks when they are
// all there. Errors of a signature that is not the key's wrap
// release.ErrBadSignature.
func CheckOffer(key release.PublicKey, o Offer, m *attach.Manifest) (OfferInfo, error) {
	trusted, err := release.VerifyComment(key, o.Sig)
	if err != nil {
		return OfferInfo{}, err
	}
	tc := release.ParseTrustedComment(trusted)
	name := tc["file"]
	if err := checkName(name); err != nil {
		return OfferInfo{}, err
	}
	if m.Name != name {
		return OfferInfo{}, fmt.Errorf("the manifest names %q, the signature %q", m.Name, name)
	}
	return OfferInfo{Name: name, Version: tc["version"], Platform: tc["platform"], Commit: tc["commit"],
		Size: m.Size, Root: m.Root, Manifest: m}, nil
}

// FileKey is the file key of a release file's chunks: derived from its
// bytes (HKDF-SHA-256 of its SHA-256), so every node that offers the same
// file seals the same chunks, a receiver takes them from any of them, and
// no key ever seals two different files. A release is public: the key
// hides nothing from anyone, which is what an offer is for.
func FileKey(data []byte) attach.Key {
	sum := sha256.Sum256(data)
	var k attach.Key
	b, err := hkdf.Key(sha256.New, sum[:], nil, labelFileKey, attach.KeySize)
	if err != nil {
		panic(err) // cannot happen for 32 bytes
	}
	copy(k[:], b)
	return k
}

// PrepareOffer prepares a verified release file (its bytes and signature,
// as Shelf.Load returns them) for offering: the file ready to seal its
// chunks, and the offer. The manifest is the same at every node: the key
// is FileKey's, the name the signed one, the time the signature's
// timestamp. limit is the sender's file limit.
func PrepareOffer(data, sig []byte, name string, limit int64) (*attach.File, Offer, error) {
	if len(sig) > MaxOfferSig {
		return nil, Offer{}, fmt.Errorf("the signature of %s is %d bytes, an offer carries at most %d", name, len(sig), MaxOfferSig)
	}
	var created time.Time // the signature's timestamp, as every offerer reads it
	if ts, err := strconv.ParseInt(release.ParseTrustedComment(commentOf(sig))["timestamp"], 10, 64); err == nil && ts > 0 && ts < 1<<32 {
		created = time.Unix(ts, 0)
	} else {
		created = time.Unix(1, 0)
	}
	k := FileKey(data)
	f, err := attach.Prepare(bytes.NewReader(data), int64(len(data)), attach.Options{MediaType: OfferMediaType, Name: name,
		Created: created, Key: &k, Limits: attach.Limits{MaxFileSize: limit}})
	if err != nil {
		return nil, Offer{}, fmt.Errorf("failed to prepare %s: %w", name, err)
	}
	return f, Offer{Manifest: f.Manifest().Marshal(), Sig: bytes.Clone(sig)}, nil
}

// commentOf returns the trusted comment line of a signature already
// verified (empty if there is none).
func commentOf(sig []byte) string {
	for _, l := range bytes.Split(sig, []byte("\n")) {
		if c, ok := bytes.CutPrefix(bytes.TrimRight(l, "\r"), []byte("trusted comment: ")); ok {
			return string(c)
		}
	}
	return ""
}
