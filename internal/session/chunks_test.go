package session

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// strangerChunks seals the n chunks of a random file of someone else's,
// expiring within the hour: sooner than any text stranger makes.
func strangerChunks(t *testing.T, size int) [][]byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	f, err := attach.Prepare(bytes.NewReader(data), int64(size), attach.Options{Name: "map.pdf", Receipts: true})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range f.Manifest().Chunks {
		raw, err := f.Seal(i, uint32(epoch.Add(30*time.Minute).Unix()), 5)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// TestTextsBeforeChunks: a node with a file's chunks and texts to hand on
// sends every text first, though the chunks expire sooner and were queued
// first (SPEC §16.4); a text that arrives while chunks wait also overtakes
// them.
func TestTextsBeforeChunks(t *testing.T) {
	a := newNode(t, "A")
	chunks := strangerChunks(t, 3*envelope.ChunkSize)
	ingest(t, a, chunks)
	ingest(t, a, stranger(t, 4, 5))
	s := New(a, Config{})
	var chunkIDs, textIDs []envelope.ID
	for _, h := range a.Inventory() {
		if h.Chunk {
			chunkIDs = append(chunkIDs, h.ID)
		} else {
			textIDs = append(textIDs, h.ID)
		}
	}
	if len(chunkIDs) != len(chunks) || len(textIDs) != 4 {
		t.Fatalf("held %d chunks and %d texts", len(chunkIDs), len(textIDs))
	}
	s.enqueue(chunkIDs, queueBacklog)
	s.enqueue(textIDs[:2], queueBacklog)
	frames, _, err := s.Next(3)
	if err != nil || len(frames) != 3 {
		t.Fatalf("Next: %d frames, %v", len(frames), err)
	}
	kinds := func(fs []Frame) (out []envelope.Kind) {
		for _, f := range fs {
			e, err := envelope.Parse(f.Payload)
			if err != nil {
				t.Fatalf("a frame of type %v is not an envelope: %v", f.Type, err)
			}
			out = append(out, e.Kind)
		}
		return out
	}
	if k := kinds(frames); k[0] == envelope.KindChunk || k[1] == envelope.KindChunk || k[2] != envelope.KindChunk {
		t.Fatalf("sent %v: texts must go before chunks", k)
	}
	s.enqueue(textIDs[2:], queueBacklog) // more texts while chunks wait
	frames, _, err = s.Next(3)
	if err != nil || len(frames) != 3 {
		t.Fatalf("Next: %d frames, %v", len(frames), err)
	}
	if k := kinds(frames); k[0] == envelope.KindChunk || k[1] == envelope.KindChunk || k[2] != envelope.KindChunk {
		t.Fatalf("then sent %v: the new texts must overtake the waiting chunks", k)
	}
}
