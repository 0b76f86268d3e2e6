package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// photoWithExif is a 320×240 JPEG with an EXIF (APP1) segment that holds
// the marker, as a phone's GPS position and camera serial would be.
func photoWithExif(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := range 240 {
		for x := range 320 {
			img.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	payload := append([]byte("Exif\x00\x00"), marker...)
	seg := binary.BigEndian.AppendUint16([]byte{0xff, 0xe1}, uint16(len(payload)+2))
	return append(append([]byte{0xff, 0xd8}, append(seg, payload...)...), b.Bytes()[2:]...)
}

// TestSentPhotoIsKept: a photo I send is kept as it was sent — re-encoded,
// without its metadata, the very bytes the recipient gets — and stays
// readable after the receipts purge its chunks from my outbox; a file of
// another kind is not kept; removing the contact deletes the kept photo.
func TestSentPhotoIsKept(t *testing.T) {
	_, alice, bob, _ := friendsAndCarrier(t)
	original := photoWithExif(t)
	sent, err := alice.SendFileData("Bob", bytes.NewReader(original), int64(len(original)), SendFileOptions{Name: "bridge.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	if a := sent.Attachment; !a.Kept || a.MediaType != "image/jpeg" {
		t.Fatalf("sent %+v", a)
	}
	var mine bytes.Buffer
	att, err := alice.WriteAttachment(sent.ID, &mine)
	if err != nil || !att.Kept || int64(mine.Len()) != att.Size {
		t.Fatalf("the photo I sent: %+v, %d bytes, %v", att, mine.Len(), err)
	}
	if bytes.Equal(mine.Bytes(), original) || bytes.Contains(mine.Bytes(), []byte("Exif")) || bytes.Contains(mine.Bytes(), marker) {
		t.Fatal("the photo kept is the original, or still has its EXIF")
	}

	carry(t, alice, bob)
	var theirs bytes.Buffer
	if _, err := bob.WriteAttachment(sent.ID, &theirs); err != nil || !bytes.Equal(theirs.Bytes(), mine.Bytes()) {
		t.Fatalf("Bob got %d bytes, not the %d kept: %v", theirs.Len(), mine.Len(), err)
	}
	if err := bob.ReleaseReceipts(true); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, alice)
	if n := chunksHeld(t, alice); n != 0 {
		t.Fatalf("Alice still holds %d chunks after the receipts", n)
	}
	if a := attachmentOf(t, alice, sent.ID); !a.Complete || !a.Kept {
		t.Fatalf("delivered, Alice's photo shows as %+v", a)
	}
	var after bytes.Buffer
	if _, err := alice.WriteAttachment(sent.ID, &after); err != nil || !bytes.Equal(after.Bytes(), mine.Bytes()) {
		t.Fatalf("after delivery: %d bytes, %v", after.Len(), err)
	}

	text := []byte("not a photo: the sender has it already")
	m, err := alice.SendFileData("Bob", bytes.NewReader(text), int64(len(text)), SendFileOptions{Name: "notes.txt"})
	if err != nil || m.Attachment.Kept {
		t.Fatalf("a text file sent: %+v, %v", m.Attachment, err)
	}
	var ne *Error
	if _, err := alice.WriteAttachment(m.ID, &after); !errors.As(err, &ne) || ne.Reason != ReasonNoAttachment {
		t.Fatalf("the text file I sent, written: %v", err)
	}

	if countItems(t, alice, colSentFiles) == 0 {
		t.Fatal("nothing kept")
	}
	if _, err := alice.Remove("Bob"); err != nil {
		t.Fatal(err)
	}
	if n := countItems(t, alice, colSentFiles); n != 0 {
		t.Fatalf("%d chunks of the photo kept after removing the contact", n)
	}
}

// TestChunksCarried: a file's chunks that leave over a link are counted on
// its message once each, so the sender sees how much of it has left.
func TestChunksCarried(t *testing.T) {
	f := sendTestFile(t, 100_000, "carried")
	ids := func(raws ...[]byte) []envelope.ID {
		var out []envelope.ID
		for _, r := range raws {
			out = append(out, envelope.ComputeID(r))
		}
		return out
	}
	if a := attachmentOf(t, f.alice, f.sent.ID); a.Carried != 0 || len(f.chunks) != 4 {
		t.Fatalf("before any link: %+v, %d chunks", a, len(f.chunks))
	}
	if err := f.alice.MarkCarried(ids(f.msg, f.chunks[0], f.chunks[1])); err != nil {
		t.Fatal(err)
	}
	if err := f.alice.MarkCarried(ids(f.chunks[1], f.chunks[2])); err != nil { // chunk 1 over a second link
		t.Fatal(err)
	}
	for _, m := range messages(t, f.alice) {
		if m.ID == f.sent.ID && (m.Status != StatusCarried || m.Attachment.Carried != 3 || m.Attachment.Have != 0) {
			t.Fatalf("Alice sees her file as %s, %+v (want carried, 3 chunks carried, none delivered)", m.Status, m.Attachment)
		}
	}
}

// BenchmarkMarkCarriedFile: what counting a file's carried chunks costs a
// link, per chunk, the first time a 16 MiB file's 519 chunks leave (each
// chunk's record and the message's written) and when they leave again over
// another link (read only), in batches of 100 as a link sends them.
func BenchmarkMarkCarriedFile(b *testing.B) {
	clk := newTestClock()
	alice, bob := newTestNode(b, "Alice", clk), newTestNode(b, "Bob", clk)
	befriend(b, alice, bob)
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, (16<<20)/7)
	var first, again time.Duration
	chunks := 0
	carried := map[envelope.ID]bool{}
	for b.Loop() {
		b.StopTimer()
		m, err := alice.SendFileData("Bob", bytes.NewReader(data), int64(len(data)), SendFileOptions{Name: "f"})
		if err != nil {
			b.Fatal(err)
		}
		var ids []envelope.ID // this file's: the earlier files' were carried
		for _, h := range alice.Inventory() {
			if h.Own && h.Chunk && !carried[h.ID] {
				ids = append(ids, h.ID)
				carried[h.ID] = true
			}
		}
		b.StartTimer()
		for pass, took := range []*time.Duration{&first, &again} {
			start := time.Now()
			for i := 0; i < len(ids); i += 100 {
				if err := alice.MarkCarried(ids[i:min(i+100, len(ids))]); err != nil {
					b.Fatal(err)
				}
			}
			*took += time.Since(start)
			if pass == 0 {
				chunks += len(ids)
			}
		}
		b.StopTimer()
		ms, err := alice.Messages("Bob")
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range ms {
			if x.ID == m.ID && (x.Attachment.Carried != x.Attachment.Chunks || x.Attachment.Chunks != len(ids)) {
				b.Fatalf("carried %d of %d (%d marked)", x.Attachment.Carried, x.Attachment.Chunks, len(ids))
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(first.Microseconds())/float64(chunks), "µs/chunk-first")
	b.ReportMetric(float64(again.Microseconds())/float64(chunks), "µs/chunk-again")
	b.ReportMetric(0, "ns/op")
}
