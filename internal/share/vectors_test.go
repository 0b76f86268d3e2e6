package share

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/release"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/release_offer.json"

// offerVector is one case of SPEC §16.11: a release file (its bytes are
// testkit.Stream(ContentLabel, Size)), its name, its minisign signature
// (Sig, by the key PublicKey; the test checks it) and the expiry and hop
// budget its chunks are sealed with; then what every offerer derives from
// them alone: the file's SHA-256, the file key (HKDF-SHA-256, salt empty,
// info "grapevine release file key v1", of the SHA-256), the manifest, the
// offer's bytes, and the ID and SHA-256 of every chunk envelope. Two nodes
// that offer the same release seal the same chunks, so these are the same
// everywhere. Regenerate with
//
//	go test ./internal/share -run Vectors -update
type offerVector struct {
	Comment      string
	ContentLabel string
	Size         int
	Name         string
	PublicKey    string
	Sig          string
	Expiry       uint32
	Hops         uint8
	// Outputs.
	FileSHA256  string
	FileKey     string
	Manifest    string
	Offer       string
	IDs         []string
	EnvelopeSHA []string
}

func computeOfferVector(t *testing.T, v offerVector) offerVector {
	t.Helper()
	data := testkit.Stream(v.ContentLabel, v.Size)
	f, o, err := PrepareOffer(data, []byte(v.Sig), v.Name, attach.MaxFileSize)
	if err != nil {
		t.Fatal(err)
	}
	sum, key := sha256.Sum256(data), FileKey(data)
	out := offerVector{Comment: v.Comment, ContentLabel: v.ContentLabel, Size: v.Size, Name: v.Name,
		PublicKey: v.PublicKey, Sig: v.Sig, Expiry: v.Expiry, Hops: v.Hops,
		FileSHA256: hex.EncodeToString(sum[:]), FileKey: hex.EncodeToString(key[:]),
		Manifest: hex.EncodeToString(o.Manifest), Offer: hex.EncodeToString(o.Marshal())}
	for i := range f.Manifest().Chunks {
		raw, err := f.Seal(i, v.Expiry, v.Hops)
		if err != nil {
			t.Fatal(err)
		}
		id, sum := envelope.ComputeID(raw), sha256.Sum256(raw)
		out.IDs = append(out.IDs, hex.EncodeToString(id[:]))
		out.EnvelopeSHA = append(out.EnvelopeSHA, hex.EncodeToString(sum[:]))
	}
	return out
}

// signedVector makes a seed case's key and signature from fixed bytes.
func signedVector(t *testing.T, v offerVector, keyLabel, platform string, ts int64) offerVector {
	t.Helper()
	k, err := release.GenerateKey(bytes.NewReader(testkit.Stream(keyLabel, 40)))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := release.Sign(k, bytes.NewReader(testkit.Stream(v.ContentLabel, v.Size)),
		release.TrustedComment(v.Name, "v1.0.0", "0123abc", platform, ts))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := k.Public().MarshalText()
	v.PublicKey, v.Sig = string(pub), string(sig)
	return v
}

func TestVectors(t *testing.T) {
	vs := testkit.Vectors(t, vectorsPath, func() []offerVector {
		seed := []offerVector{
			signedVector(t, offerVector{Comment: "a 1,000-byte release: one chunk", ContentLabel: "release vector small",
				Size: 1000, Name: "grapevine-linux-arm64", Expiry: 1800604800, Hops: 32}, "release vector key", "linux/arm64", 1800000000),
			signedVector(t, offerVector{Comment: "100,000 bytes: 4 chunks", ContentLabel: "release vector four",
				Size: 100_000, Name: "grapevine-windows-amd64.exe", Expiry: 1800604800, Hops: 32}, "release vector key", "windows/amd64", 1800000060),
		}
		for i, v := range seed {
			seed[i] = computeOfferVector(t, v)
		}
		return seed
	})
	if len(vs) != 2 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		if got := computeOfferVector(t, v); !reflect.DeepEqual(v, got) {
			t.Fatalf("vector %q: the file and the code disagree", v.Comment)
		}
		// The offer parses back and checks out against its key, as a
		// receiver checks it before fetching a chunk.
		key, err := release.ParsePublicKey([]byte(v.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		o, m, err := ParseOffer(testkit.Unhex(t, v.Offer))
		if err != nil {
			t.Fatalf("vector %q: %v", v.Comment, err)
		}
		if _, err := CheckOffer(key, o, m); err != nil {
			t.Fatalf("vector %q: %v", v.Comment, err)
		}
		if _, err := release.Verify(key, bytes.NewReader(testkit.Stream(v.ContentLabel, v.Size)), []byte(v.Sig)); err != nil {
			t.Fatalf("vector %q: the signature: %v", v.Comment, err)
		}
	}
}
