package negentropy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/negentropy.json"

// The vector file. Timestamps are decimal strings (they do not all fit in
// a JSON number); byte strings are hex.
type vectors struct {
	Comment      string              `json:"comment"`
	Varints      []varintVector      `json:"varints"`
	Fingerprints []fingerprintVector `json:"fingerprints"`
	Bounds       []boundVector       `json:"bounds"`
	Transcripts  []transcriptVector  `json:"transcripts"`
}

type varintVector struct {
	Value   string `json:"value"`
	Encoded string `json:"encoded"`
}

type fingerprintVector struct {
	Comment     string   `json:"comment"`
	IDs         []string `json:"ids"`
	Fingerprint string   `json:"fingerprint"`
}

// A boundVector is one Bound encoded after a previous bound with timestamp
// PreviousTimestamp in the same message ("0" for the first bound).
type boundVector struct {
	Comment           string `json:"comment"`
	PreviousTimestamp string `json:"previous_timestamp"`
	Timestamp         string `json:"timestamp"`
	IDPrefix          string `json:"id_prefix"`
	Encoded           string `json:"encoded"`
}

type itemVector struct {
	Timestamp string `json:"timestamp"`
	ID        string `json:"id"`
}

// A transcriptVector is a complete reconciliation: Messages[0] is the
// initiator's first message, odd indices the responder's replies, even
// indices the initiator's next messages; after the last reply the
// initiator is done. Have and Need are what the initiator learned, sorted.
type transcriptVector struct {
	Comment        string       `json:"comment"`
	FrameSizeLimit int          `json:"frame_size_limit"`
	Initiator      []itemVector `json:"initiator_items"`
	Responder      []itemVector `json:"responder_items"`
	Messages       []string     `json:"messages"`
	Have           []string     `json:"have"`
	Need           []string     `json:"need"`
}

func TestVectors(t *testing.T) {
	want := testkit.Vectors(t, vectorsPath, func() vectors { return computeVectors(t, seedVectors()) })
	if len(want.Varints) == 0 || len(want.Fingerprints) == 0 || len(want.Bounds) == 0 || len(want.Transcripts) == 0 {
		t.Fatal("vector file is missing a section")
	}
	got := computeVectors(t, want)
	for i := range want.Varints {
		if got.Varints[i] != want.Varints[i] {
			t.Errorf("varint %s: encoded %s, want %s", want.Varints[i].Value, got.Varints[i].Encoded, want.Varints[i].Encoded)
		}
	}
	for i, v := range want.Fingerprints {
		if got.Fingerprints[i].Fingerprint != v.Fingerprint {
			t.Errorf("fingerprint %q: %s, want %s", v.Comment, got.Fingerprints[i].Fingerprint, v.Fingerprint)
		}
		// Check the recorded value against a straightforward computation
		// with math/big, independent of the prefix sums.
		if ind := bigFingerprint(t, v.IDs); ind != v.Fingerprint {
			t.Errorf("fingerprint %q: math/big gives %s, file has %s", v.Comment, ind, v.Fingerprint)
		}
	}
	for i, v := range want.Bounds {
		if got.Bounds[i] != v {
			t.Errorf("bound %q: encoded %s, want %s", v.Comment, got.Bounds[i].Encoded, v.Encoded)
		}
		// It decodes back.
		r := &reader{msg: unhex(t, v.Encoded), lastTs: parseTs(t, v.PreviousTimestamp)}
		b, err := r.bound()
		if err != nil || !r.empty() || b.ts != parseTs(t, v.Timestamp) || hex.EncodeToString(b.id[:b.n]) != v.IDPrefix {
			t.Errorf("bound %q: decodes to %d %x (%v)", v.Comment, b.ts, b.id[:b.n], err)
		}
	}
	for i, v := range want.Transcripts {
		if !reflect.DeepEqual(got.Transcripts[i], v) {
			gb, _ := json.MarshalIndent(got.Transcripts[i], "", "  ")
			t.Errorf("transcript %q differs; computed:\n%s", v.Comment, gb)
		}
		checkDiff(t, parseItems(t, v.Initiator), parseItems(t, v.Responder), result{
			have: parseIDs(t, v.Have), need: parseIDs(t, v.Need),
		})
	}
}

// bigFingerprint computes a fingerprint the long way: the IDs as
// little-endian integers summed with math/big, reduced modulo 2^256, then
// the count as a Varint built digit by digit.
func bigFingerprint(t *testing.T, ids []string) string {
	sum := new(big.Int)
	for _, s := range ids {
		b := unhex(t, s)
		slices.Reverse(b) // little-endian to big-endian
		sum.Add(sum, new(big.Int).SetBytes(b))
	}
	sum.Mod(sum, new(big.Int).Lsh(big.NewInt(1), 256))
	le := sum.FillBytes(make([]byte, 32))
	slices.Reverse(le)
	var digits []byte
	for n := len(ids); ; n /= 128 {
		digits = append([]byte{byte(n % 128)}, digits...)
		if n < 128 {
			break
		}
	}
	for i := range digits[:len(digits)-1] {
		digits[i] |= 0x80
	}
	h := sha256.Sum256(append(le, digits...))
	return hex.EncodeToString(h[:16])
}

func parseTs(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func parseItems(t *testing.T, vs []itemVector) []Item {
	items := make([]Item, len(vs))
	for i, v := range vs {
		items[i] = Item{Timestamp: parseTs(t, v.Timestamp), ID: [IDSize]byte(unhex(t, v.ID))}
	}
	return items
}

func parseIDs(t *testing.T, hs []string) [][IDSize]byte {
	ids := make([][IDSize]byte, len(hs))
	for i, h := range hs {
		ids[i] = [IDSize]byte(unhex(t, h))
	}
	return ids
}

func hexIDs(ids [][IDSize]byte) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = hex.EncodeToString(id[:])
	}
	slices.Sort(out)
	return out
}

func itemVectors(items []Item) []itemVector {
	items = sortItems(slices.Clone(items))
	out := make([]itemVector, len(items))
	for i, it := range items {
		out[i] = itemVector{strconv.FormatUint(it.Timestamp, 10), hex.EncodeToString(it.ID[:])}
	}
	return out
}

// computeVectors fills in the outputs of the inputs in v.
func computeVectors(t *testing.T, v vectors) vectors {
	out := v
	out.Varints = slices.Clone(v.Varints)
	for i, vv := range out.Varints {
		out.Varints[i].Encoded = hex.EncodeToString(appendVarint(nil, parseTs(t, vv.Value)))
	}
	out.Fingerprints = slices.Clone(v.Fingerprints)
	for i, f := range out.Fingerprints {
		items := make([]Item, len(f.IDs))
		for j, s := range f.IDs {
			items[j] = Item{Timestamp: uint64(j), ID: [IDSize]byte(unhex(t, s))}
		}
		st, err := NewStorage(items)
		if err != nil {
			t.Fatal(err)
		}
		fp := st.Fingerprint(0, st.Len())
		out.Fingerprints[i].Fingerprint = hex.EncodeToString(fp[:])
	}
	out.Bounds = slices.Clone(v.Bounds)
	for i, b := range out.Bounds {
		w := &writer{lastTs: parseTs(t, b.PreviousTimestamp)}
		bd := bound{ts: parseTs(t, b.Timestamp)}
		bd.n = copy(bd.id[:], unhex(t, b.IDPrefix))
		w.putBound(bd)
		out.Bounds[i].Encoded = hex.EncodeToString(w.buf)
	}
	out.Transcripts = slices.Clone(v.Transcripts)
	for i, tr := range out.Transcripts {
		a, b := parseItems(t, tr.Initiator), parseItems(t, tr.Responder)
		res := reconcile(t, a, b, tr.FrameSizeLimit, tr.FrameSizeLimit, nil, nil)
		tr.Messages = nil
		for _, m := range res.msgs {
			tr.Messages = append(tr.Messages, hex.EncodeToString(m))
		}
		tr.Have, tr.Need = hexIDs(res.have), hexIDs(res.need)
		out.Transcripts[i] = tr
	}
	return out
}

// seedVectors are the inputs of the vector file.
func seedVectors() vectors {
	h := func(s string) string { return s }
	rep := func(b byte) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, IDSize)) }
	// Deterministic IDs anyone can regenerate: SHA-256 of "grapevine
	// negentropy vector " followed by a big-endian uint32.
	id := func(i uint32) [IDSize]byte {
		return sha256.Sum256(binary.BigEndian.AppendUint32([]byte("grapevine negentropy vector "), i))
	}
	ids := func(from, to uint32) []string {
		var out []string
		for i := from; i < to; i++ {
			x := id(i)
			out = append(out, hex.EncodeToString(x[:]))
		}
		return out
	}
	items := func(from, to uint32, ts func(i uint32) uint64) []Item {
		var out []Item
		for i := from; i < to; i++ {
			out = append(out, Item{Timestamp: ts(i), ID: id(i)})
		}
		return out
	}
	expiry := func(i uint32) uint64 { return 1_800_000_000 + uint64(i*7919%97) }
	max := strconv.FormatUint(math.MaxUint64, 10)

	v := vectors{
		Comment: "Negentropy protocol v1 as used by Grapevine (SPEC.md §11). Timestamps are decimal strings, " +
			"byte strings hex. Transcripts depend on the sender's splitting choices, which are not normative; " +
			"everything else is. Regenerate with: go test ./internal/negentropy -run TestVectors -update",
	}
	for _, n := range []uint64{0, 1, 127, 128, 255, 16383, 16384, 1800000000, math.MaxUint64} {
		v.Varints = append(v.Varints, varintVector{Value: strconv.FormatUint(n, 10)})
	}
	v.Fingerprints = []fingerprintVector{
		{Comment: "empty set", IDs: []string{}},
		{Comment: "one zero ID", IDs: []string{rep(0)}},
		{Comment: "one ID (published by the reference implementation's tests: 6d74e1212fcafc8a81d090f0ffbde8b0)",
			IDs: []string{h("eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")}},
		{Comment: "three IDs (published by the reference implementation's tests: c15ce60f185fd24ae341076caa93daa5)",
			IDs: []string{
				h("eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c"),
				h("39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0"),
				h("abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba"),
			}},
		{Comment: "two all-ones IDs: the sum wraps modulo 2^256", IDs: []string{rep(0xff), rep(0x01) + ""}},
		{Comment: "carry across every 64-bit limb", IDs: []string{rep(0xff), "01" + rep(0)[2:]}},
		{Comment: "130 IDs: the count takes a two-byte varint", IDs: ids(0, 130)},
	}
	v.Bounds = []boundVector{
		{Comment: "infinity", PreviousTimestamp: "0", Timestamp: max},
		{Comment: "infinity after a timestamp", PreviousTimestamp: "1800000000", Timestamp: max},
		{Comment: "timestamp 0, first in a message", PreviousTimestamp: "0", Timestamp: "0"},
		{Comment: "first timestamp of a message: delta from 0", PreviousTimestamp: "0", Timestamp: "1800000000"},
		{Comment: "delta from the previous bound", PreviousTimestamp: "1800000000", Timestamp: "1800000300"},
		{Comment: "same timestamp as the previous bound, one-byte ID prefix", PreviousTimestamp: "1800000300", Timestamp: "1800000300", IDPrefix: "a7"},
		{Comment: "three-byte ID prefix", PreviousTimestamp: "1800000000", Timestamp: "1800000001", IDPrefix: "a7c300"},
		{Comment: "full 32-byte ID", PreviousTimestamp: "0", Timestamp: "5", IDPrefix: ids(0, 1)[0]},
		{Comment: "largest item timestamp, 2^64-2", PreviousTimestamp: "0", Timestamp: strconv.FormatUint(MaxTimestamp, 10)},
	}
	mixedA := append(items(0, 50, expiry), items(50, 56, expiry)...)
	mixedB := append(items(0, 50, expiry), items(56, 60, expiry)...)
	v.Transcripts = []transcriptVector{
		{Comment: "identical sets of 10 items", Initiator: itemVectors(items(0, 10, expiry)), Responder: itemVectors(items(0, 10, expiry))},
		{Comment: "initiator holds nothing", Initiator: itemVectors(nil), Responder: itemVectors(items(0, 5, expiry))},
		{Comment: "responder holds nothing", Initiator: itemVectors(items(0, 5, expiry)), Responder: itemVectors(nil)},
		{Comment: "50 common items, 6 only at the initiator, 4 only at the responder; timestamps repeat",
			Initiator: itemVectors(mixedA), Responder: itemVectors(mixedB)},
		{Comment: "timestamps 0 and 2^64-2, equal timestamps needing ID prefixes",
			Initiator: itemVectors(items(100, 130, func(i uint32) uint64 { return []uint64{0, 7, MaxTimestamp}[i%3] })),
			Responder: itemVectors(items(103, 135, func(i uint32) uint64 { return []uint64{0, 7, MaxTimestamp}[i%3] }))},
		{Comment: "160 common items, 12 only at the initiator, 9 only at the responder: several levels of splitting",
			Initiator: itemVectors(append(items(400, 560, expiry), items(560, 572, expiry)...)),
			Responder: itemVectors(append(items(400, 560, expiry), items(572, 581, expiry)...))},
		{Comment: "frame size limit 4096: the responder's 150 extra IDs take two replies", FrameSizeLimit: MinFrameSizeLimit,
			Initiator: itemVectors(items(200, 220, expiry)), Responder: itemVectors(items(200, 370, expiry))},
	}
	return v
}
