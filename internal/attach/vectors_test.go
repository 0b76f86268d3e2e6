package attach

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/attach.json"

// attachVector is one case of SPEC §16.8: a file (its bytes are
// testkit.Stream(ContentLabel, Size): SHA-256(label || be32(0)) ||
// SHA-256(label || be32(1)) || …, cut to Size), the sender's choices and a
// fixed file key; then the manifest and, for every chunk sealed with Expiry
// and Hops, its tag, commitment, receipt secret (empty without receipts),
// envelope ID and the SHA-256 of the whole envelope. Envelope0 is the first
// chunk envelope in full, when Full. Regenerate with
//
//	go test ./internal/attach -run Vectors -update
type attachVector struct {
	Comment      string
	ContentLabel string
	Size         int64
	Key          string
	MediaType    string
	Name         string
	Created      uint32
	Receipts     bool
	Expiry       uint32
	Hops         uint8
	Full         bool // Envelope0 is given in full
	// Outputs.
	ChunkSize, Chunks int
	Root              string
	Manifest          string
	Tags, Commits     []string
	Secrets           []string
	IDs, EnvelopeSHA  []string
	Envelope0         string
}

func computeAttachVector(t *testing.T, v attachVector) attachVector {
	t.Helper()
	var key Key
	copy(key[:], testkit.Unhex(t, v.Key))
	data := testkit.Stream(v.ContentLabel, int(v.Size))
	f, err := Prepare(bytes.NewReader(data), v.Size, Options{MediaType: v.MediaType, Name: v.Name,
		Created: time.Unix(int64(v.Created), 0), Receipts: v.Receipts, Key: &key, Limits: Limits{MaxFileSize: MaxFileSize}})
	if err != nil {
		t.Fatal(err)
	}
	m := f.Manifest()
	out := attachVector{Comment: v.Comment, ContentLabel: v.ContentLabel, Size: v.Size, Key: v.Key,
		MediaType: v.MediaType, Name: v.Name, Created: v.Created, Receipts: v.Receipts, Expiry: v.Expiry, Hops: v.Hops, Full: v.Full,
		ChunkSize: m.ChunkSize, Chunks: m.Chunks, Root: hex.EncodeToString(m.Root[:]),
		Manifest: hex.EncodeToString(m.Marshal())}
	ks := f.Keys()
	for i := range m.Chunks {
		raw, err := f.Seal(i, v.Expiry, v.Hops)
		if err != nil {
			t.Fatal(err)
		}
		tag, commit := ks.Tag(i), ks.Commit(i)
		secret := ""
		if s, ok := ks.ReceiptSecret(i); ok {
			secret = hex.EncodeToString(s[:])
		}
		id := envelope.ComputeID(raw)
		sum := sha256.Sum256(raw)
		out.Tags = append(out.Tags, hex.EncodeToString(tag[:]))
		out.Commits = append(out.Commits, hex.EncodeToString(commit[:]))
		out.Secrets = append(out.Secrets, secret)
		out.IDs = append(out.IDs, hex.EncodeToString(id[:]))
		out.EnvelopeSHA = append(out.EnvelopeSHA, hex.EncodeToString(sum[:]))
		if i == 0 && v.Full {
			out.Envelope0 = hex.EncodeToString(raw)
		}
	}
	return out
}

func TestVectors(t *testing.T) {
	seed := []attachVector{
		{Comment: "a 5-byte note, receipts, one chunk", ContentLabel: "attach vector note", Size: 5,
			Key: hex.EncodeToString(testkit.Stream("attach vector key 1", 32)), MediaType: "text/plain",
			Name: "note.txt", Created: 1800000000, Receipts: true, Expiry: 1800086400, Hops: 12, Full: true},
		{Comment: "100,000 bytes for a room (no receipts): 4 chunks, depth 2", ContentLabel: "attach vector photo",
			Size: 100_000, Key: hex.EncodeToString(testkit.Stream("attach vector key 2", 32)), MediaType: "image/jpeg",
			Name: "photo.jpg", Created: 1800000060, Expiry: 1800090000, Hops: 3},
		{Comment: "an empty file, no name: one chunk of padding", ContentLabel: "attach vector empty", Size: 0,
			Key: hex.EncodeToString(testkit.Stream("attach vector key 3", 32)), MediaType: "application/octet-stream",
			Created: 1800000120, Receipts: true, Expiry: 1800003600, Hops: 1},
	}
	vs := testkit.Vectors(t, vectorsPath, func() []attachVector {
		out := make([]attachVector, len(seed))
		for i, v := range seed {
			out[i] = computeAttachVector(t, v)
		}
		return out
	})
	if len(vs) != len(seed) {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		got := computeAttachVector(t, v)
		if !reflect.DeepEqual(v, got) {
			t.Fatalf("vector %q: the file and the code disagree", v.Comment)
		}
		// The file's bytes decode and open as a recipient would.
		m, err := ParseManifest(testkit.Unhex(t, v.Manifest), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !v.Full {
			continue
		}
		raw := testkit.Unhex(t, v.Envelope0)
		if id := envelope.ComputeID(raw); hex.EncodeToString(id[:]) != v.IDs[0] {
			t.Fatal("Envelope0's ID")
		}
		o, err := NewKeys(m).Open(raw)
		data := testkit.Stream(v.ContentLabel, int(v.Size))
		if err != nil || o.Index != 0 || !bytes.Equal(o.Data, data[:m.ChunkLen(0)]) {
			t.Fatalf("vector %q: chunk 0: %v", v.Comment, err)
		}
	}
}
