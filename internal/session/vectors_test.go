package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/negentropy"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

// memStore is an in-memory Store: it holds envelopes and nothing else, so
// the vectors depend only on the sync protocol.
type memStore struct{ m map[envelope.ID][]byte }

func newMemStore(raws [][]byte) *memStore {
	s := &memStore{m: map[envelope.ID][]byte{}}
	s.IngestFrom("", raws, nil)
	return s
}

func (s *memStore) held(id envelope.ID) node.Held {
	e, _ := envelope.Parse(s.m[id])
	return node.Held{ID: id, Expiry: e.Expiry, Size: len(s.m[id]), Hops: e.Hops, Receipt: e.Kind == envelope.KindReceipt}
}

func (s *memStore) MarkCarried([]envelope.ID) error { return nil }

func (s *memStore) NotDelivered(ids []envelope.ID) []envelope.ID { return ids }

func (s *memStore) ReturnCopies([]envelope.ID, []uint8) (int, error) { return 0, nil }

func (s *memStore) Expect(_ any, ids []envelope.ID, _ []uint8, _ bool) (want, later, raise []envelope.ID) {
	for _, id := range ids {
		if _, ok := s.m[id]; !ok {
			want = append(want, id)
		}
	}
	return want, nil, nil
}

func (s *memStore) Raise([]envelope.ID, []uint8) (int, error) { return 0, nil }

func (s *memStore) LeavingHops(hops []uint8) {
	for i := range hops {
		hops[i]--
	}
}

func (s *memStore) Arriving(any, []envelope.ID) {}

func (s *memStore) Unexpect(any, []envelope.ID) {}

func (s *memStore) Inventory() []node.Held {
	var out []node.Held
	for id := range s.m {
		out = append(out, s.held(id))
	}
	slices.SortFunc(out, func(a, b node.Held) int {
		if a.Expiry != b.Expiry {
			return int(int64(a.Expiry) - int64(b.Expiry))
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return out
}

func (s *memStore) Snapshot() (*negentropy.Storage, error) {
	var items []negentropy.Item
	for _, h := range s.Inventory() {
		items = append(items, negentropy.Item{Timestamp: uint64(h.Expiry), ID: h.ID})
	}
	return negentropy.NewStorage(items)
}

func (s *memStore) Describe(ids []envelope.ID) []node.Held {
	var out []node.Held
	for _, id := range ids {
		if _, ok := s.m[id]; ok {
			out = append(out, s.held(id))
		}
	}
	return out
}

func (s *memStore) Forward(ids []envelope.ID, _ func(envelope.ID) bool) ([]node.Outgoing, error) {
	var out []node.Outgoing
	for _, id := range ids {
		raw, ok := s.m[id]
		if !ok || raw[1] == 0 {
			continue
		}
		cp := bytes.Clone(raw)
		envelope.SetHops(cp, raw[1]-1)
		out = append(out, node.Outgoing{ID: id, Raw: cp})
	}
	return out, nil
}

func (s *memStore) Redundant(id envelope.ID, hops uint8) bool {
	raw, ok := s.m[id]
	return ok && raw[1] >= hops
}

func (s *memStore) Claim([]envelope.ID, [][envelope.TagSize]byte) []envelope.ID { return nil }
func (s *memStore) ClaimReceipts(_, _ []envelope.ID) []envelope.ID              { return nil }

func (s *memStore) IngestFrom(_ string, raws [][]byte, _ []uint8) (node.IngestReport, error) {
	for _, raw := range raws {
		id := envelope.ComputeID(raw)
		if _, ok := s.m[id]; !ok {
			s.m[id] = bytes.Clone(raw)
		}
	}
	return node.IngestReport{}, nil
}

func (s *memStore) LinkProofs([]byte, bool) ([]byte, error) {
	return make([]byte, node.LinkHelloSize), nil
}

func (s *memStore) RecogniseLink([]byte, bool, []byte) (node.Contact, bool, error) {
	return node.Contact{}, false, nil
}

// fixedEnvelope is envelope number i of a vector set: everything derived
// from i, so the vectors are reproducible.
func fixedEnvelope(i int) []byte {
	key := sha256.Sum256(binary.BigEndian.AppendUint32([]byte("grapevine sync vector key"), uint32(i)))
	tag := sha256.Sum256(binary.BigEndian.AppendUint32([]byte("grapevine sync vector tag"), uint32(i)))
	s := envelope.Sealing{Key: key, Expiry: uint32(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Unix()) + uint32(i%7)*3600, Hops: uint8(i % 3)}
	copy(s.Tag[:], tag[:])
	e, err := envelope.Seal(s, []byte("vector "+string(rune('a'+i%26))))
	if err != nil {
		panic(err)
	}
	return e.Marshal()
}

type syncVector struct {
	Comment   string        `json:"comment"`
	Initiator []string      `json:"initiator_envelopes"`
	Responder []string      `json:"responder_envelopes"`
	Frames    []vectorFrame `json:"frames"`
	FinalIni  []string      `json:"initiator_final_ids"` // what each holds afterwards, sorted
	FinalRes  []string      `json:"responder_final_ids"`
}

type vectorFrame struct {
	From    string `json:"from"`
	Type    byte   `json:"type"`
	Payload string `json:"payload"`
}

func makeVector(comment string, ini, res []int) syncVector {
	v := syncVector{Comment: comment}
	var a, b [][]byte
	for _, i := range ini {
		a = append(a, fixedEnvelope(i))
		v.Initiator = append(v.Initiator, hex.EncodeToString(a[len(a)-1]))
	}
	for _, i := range res {
		b = append(b, fixedEnvelope(i))
		v.Responder = append(v.Responder, hex.EncodeToString(b[len(b)-1]))
	}
	return v
}

func runVector(t *testing.T, v syncVector) syncVector {
	t.Helper()
	decode := func(hexes []string) [][]byte {
		var out [][]byte
		for _, h := range hexes {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	sa, sb := newMemStore(decode(v.Initiator)), newMemStore(decode(v.Responder))
	got := v
	got.Frames, got.FinalIni, got.FinalRes = nil, nil, nil
	record := func(from string, f Frame) {
		got.Frames = append(got.Frames, vectorFrame{From: from, Type: byte(f.Type), Payload: hex.EncodeToString(f.Payload)})
	}
	ini, res := New(sa, Config{Initiator: true}), New(sb, Config{})
	for _, pair := range []struct {
		from     string
		src, dst *Session
	}{{"initiator", ini, res}, {"responder", res, ini}} { // each side's Hello comes first
		hello, err := pair.src.Hello()
		if err != nil {
			t.Fatal(err)
		}
		record(pair.from, hello[0])
		if _, _, err := pair.dst.Handle(hello[0]); err != nil {
			t.Fatal(err)
		}
	}
	pumpRecord(t, ini, res, record)
	for _, h := range sa.Inventory() {
		got.FinalIni = append(got.FinalIni, hex.EncodeToString(h.ID[:]))
	}
	for _, h := range sb.Inventory() {
		got.FinalRes = append(got.FinalRes, hex.EncodeToString(h.ID[:]))
	}
	slices.Sort(got.FinalIni)
	slices.Sort(got.FinalRes)
	return got
}

// TestVectors replays the sync transcripts in testdata/vectors/sync.json:
// the same envelopes on each side must give exactly the same frames.
func TestVectors(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "vectors", "sync.json")
	vs := testkit.Vectors(t, path, func() []syncVector {
		var ini, res []int
		for i := range 40 {
			if i%5 != 0 {
				ini = append(ini, i)
			}
			if i%4 != 0 {
				res = append(res, i)
			}
		}
		vs := []syncVector{
			makeVector("empty responder: everything flows one way; hop budgets 0 stay", []int{1, 2, 3, 4, 5, 6}, nil),
			makeVector("identical sets: one round, no envelope", []int{1, 2, 3}, []int{1, 2, 3}),
			makeVector("overlapping sets of 40: each side sends what the other lacks (Want for the responder's)", ini, res),
		}
		for i := range vs {
			vs[i] = runVector(t, vs[i])
		}
		return vs
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		got := runVector(t, v)
		if !slices.Equal(got.FinalIni, v.FinalIni) || !slices.Equal(got.FinalRes, v.FinalRes) {
			t.Errorf("%s: what the sides hold afterwards differs from the vector", v.Comment)
		}
		if len(got.Frames) != len(v.Frames) {
			t.Fatalf("%s: %d frames, the vector has %d", v.Comment, len(got.Frames), len(v.Frames))
		}
		for i := range got.Frames {
			if got.Frames[i] != v.Frames[i] {
				t.Fatalf("%s: frame %d is %+v, the vector says %+v", v.Comment, i, got.Frames[i], v.Frames[i])
			}
		}
	}
}
