package share

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/release"
)

// testOffer prepares an offer of a signed release file of n bytes.
func testOffer(t testing.TB, k release.PrivateKey, name string, n int) ([]byte, Offer) {
	t.Helper()
	data := bytes.Repeat([]byte(name), n/len(name)+1)[:n]
	sig, err := release.Sign(k, bytes.NewReader(data), release.TrustedComment(name, "v0.9.0", "abc123", "linux/amd64", 1796000000))
	if err != nil {
		t.Fatal(err)
	}
	_, o, err := PrepareOffer(data, sig, name, attach.DefaultMaxFileSize)
	if err != nil {
		t.Fatal(err)
	}
	return data, o
}

// TestOfferEncoding: an offer parses back to itself, and the decoder is
// strict — a byte more or less, another version, a manifest with receipts
// or another media type, an empty or oversized signature are refused.
func TestOfferEncoding(t *testing.T) {
	k := newKey(t)
	_, o := testOffer(t, k, "grapevine-v0.9.0-linux-amd64", 100_000)
	b := o.Marshal()
	got, m, err := ParseOffer(b)
	if err != nil || !bytes.Equal(got.Marshal(), b) || m.Name != "grapevine-v0.9.0-linux-amd64" {
		t.Fatalf("ParseOffer = %+v, %v", m, err)
	}
	if len(b) > MaxOfferSize {
		t.Errorf("an offer is %d bytes, over MaxOfferSize", len(b))
	}
	t.Logf("an offer of %s is %d bytes", m.Name, len(b))
	withManifest := func(edit func(*attach.Manifest)) []byte {
		m2 := *m
		edit(&m2)
		return Offer{Manifest: m2.Marshal(), Sig: o.Sig}.Marshal()
	}
	bad := map[string][]byte{
		"empty":          nil,
		"version 2":      append([]byte{2}, b[1:]...),
		"a byte more":    append(bytes.Clone(b), 0),
		"a byte less":    b[:len(b)-1],
		"receipts":       withManifest(func(m *attach.Manifest) { m.Receipts = true }),
		"media type":     withManifest(func(m *attach.Manifest) { m.MediaType = "text/html" }),
		"no signature":   Offer{Manifest: o.Manifest}.Marshal(),
		"long signature": Offer{Manifest: o.Manifest, Sig: make([]byte, MaxOfferSig+1)}.Marshal(),
		"bad manifest":   Offer{Manifest: o.Manifest[:len(o.Manifest)-1], Sig: o.Sig}.Marshal(),
	}
	for name, in := range bad {
		if _, _, err := ParseOffer(in); !errors.Is(err, ErrOffer) {
			t.Errorf("%s: %v, want ErrOffer", name, err)
		}
	}
}

// TestOffersAreTheSameEverywhere: two nodes offering the same file make the
// same manifest (same key, root, time), so a receiver takes chunks from
// both; another file gets another key.
func TestOffersAreTheSameEverywhere(t *testing.T) {
	k := newKey(t)
	data, o1 := testOffer(t, k, "grapevine-v0.9.0-linux-amd64", 70_000)
	_, o2 := testOffer(t, k, "grapevine-v0.9.0-linux-amd64", 70_000)
	if !bytes.Equal(o1.Manifest, o2.Manifest) {
		t.Error("two offers of one file differ")
	}
	other := bytes.Clone(data)
	other[0] ^= 1
	if FileKey(data) == FileKey(other) {
		t.Error("two files have one key")
	}
	_, m, err := ParseOffer(o1.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if m.Key != FileKey(data) || m.Created != 1796000000 {
		t.Errorf("the manifest's key or time is not the file's: %+v", m)
	}
}

// TestCheckOffer: an offer checks against the key that signed it, with the
// signed name; another key, or a manifest naming another file, is refused
// before anything is fetched.
func TestCheckOffer(t *testing.T) {
	k, other := newKey(t), newKey(t)
	_, o := testOffer(t, k, "grapevine-v0.9.0-linux-amd64", 70_000)
	_, m, err := ParseOffer(o.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	info, err := CheckOffer(k.Public(), o, m)
	if err != nil || info.Name != "grapevine-v0.9.0-linux-amd64" || info.Platform != "linux/amd64" || info.Size != 70_000 {
		t.Fatalf("CheckOffer = %+v, %v", info, err)
	}
	if _, err := CheckOffer(other.Public(), o, m); !errors.Is(err, release.ErrBadSignature) {
		t.Errorf("another key: %v", err)
	}
	renamed := *m
	renamed.Name = "grapevine-v0.9.0-windows-amd64.exe"
	if _, err := CheckOffer(k.Public(), Offer{Manifest: renamed.Marshal(), Sig: o.Sig}, &renamed); err == nil || !strings.Contains(err.Error(), "names") {
		t.Errorf("a manifest naming another file: %v", err)
	}
}

// TestAddData: a file fetched into memory goes on the shelf only if it
// verifies as the file its signature names; otherwise it is refused
// (ErrRefused) and nothing is written.
func TestAddData(t *testing.T) {
	k := newKey(t)
	in := t.TempDir()
	path := signed(t, k, in, "grapevine-v0.9.0-linux-amd64", "linux/amd64", 5000)
	data, _ := os.ReadFile(path)
	sig, _ := os.ReadFile(path + release.SigSuffix)
	shelf, err := Open(filepath.Join(t.TempDir(), "shelf"), k.Public())
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(data)
	altered[10] ^= 1
	for name, try := range map[string]func() error{
		"altered":  func() error { _, err := shelf.AddData(altered, sig, "grapevine-v0.9.0-linux-amd64"); return err },
		"misnamed": func() error { _, err := shelf.AddData(data, sig, "grapevine-v0.9.0-linux-arm64"); return err },
		"not a sig": func() error {
			_, err := shelf.AddData(data, []byte("junk"), "grapevine-v0.9.0-linux-amd64")
			return err
		},
		"other key": func() error {
			_, err := shelf.AddData(data, sigBy(t, newKey(t), data), "grapevine-v0.9.0-linux-amd64")
			return err
		},
		"empty file": func() error { _, err := shelf.AddData(nil, sig, "grapevine-v0.9.0-linux-amd64"); return err },
	} {
		if err := try(); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", name, err)
		}
	}
	if items, problems := shelf.Scan(); len(items)+len(problems) != 0 {
		t.Fatalf("refused files reached the shelf: %v %v", items, problems)
	}
	if it, err := shelf.AddData(data, sig, "grapevine-v0.9.0-linux-amd64"); err != nil || it.Size != 5000 {
		t.Fatalf("AddData = %+v, %v", it, err)
	}
	got, _, _, err := shelf.Load("grapevine-v0.9.0-linux-amd64")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load: %v", err)
	}
}

func sigBy(t *testing.T, k release.PrivateKey, data []byte) []byte {
	t.Helper()
	sig, err := release.Sign(k, bytes.NewReader(data), release.TrustedComment("grapevine-v0.9.0-linux-amd64", "v0.9.0", "abc123", "linux/amd64", 1796000000))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// FuzzParseOffer: arbitrary bytes never panic; what parses has one
// encoding, and its manifest is the one it carries.
func FuzzParseOffer(f *testing.F) {
	k, err := release.GenerateKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	_, o := testOffer(f, k, "grapevine-v0.9.0-linux-amd64", 70_000)
	f.Add(o.Marshal())
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add(binary.BigEndian.AppendUint16([]byte{1}, 0xffff))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, m, err := ParseOffer(b)
		if err != nil {
			return
		}
		if !bytes.Equal(o.Marshal(), b) {
			t.Fatal("an offer parsed from bytes that are not its encoding")
		}
		if !bytes.Equal(m.Marshal(), o.Manifest) || m.Receipts {
			t.Fatal("the manifest parsed is not the one carried")
		}
	})
}
