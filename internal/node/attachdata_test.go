package node

import (
	"bytes"
	"errors"
	"testing"
)

// TestFileDataRoundTrip: a file sent from bytes in memory (the web UI's
// upload) arrives like one sent from disk; a page of the conversation says
// it is complete; WriteAttachment writes it byte-identical, and nothing
// before it is complete. The caller's media type tells audio from video
// within the container, and never makes text audio.
func TestFileDataRoundTrip(t *testing.T) {
	_, alice, bob, carol := friendsAndCarrier(t)
	note := append([]byte("\x1a\x45\xdf\xa3"), bytes.Repeat([]byte("opus frames "), 5000)...)
	sent, err := alice.SendFileData("Bob", bytes.NewReader(note), int64(len(note)),
		SendFileOptions{Name: "voice note.webm", MediaType: "audio/webm;codecs=opus"})
	if err != nil {
		t.Fatal(err)
	}
	if a := sent.Attachment; a == nil || a.MediaType != "audio/webm" || a.Size != int64(len(note)) || a.Name != "voice note.webm" {
		t.Fatalf("sent %+v", sent.Attachment)
	}
	text := []byte("plain words, not a recording")
	if m, err := alice.SendFileData("Bob", bytes.NewReader(text), int64(len(text)), SendFileOptions{Name: "x.ogg", MediaType: "audio/ogg"}); err != nil || m.Attachment.MediaType != "text/plain" {
		t.Fatalf("text named .ogg sent as %+v, %v", m.Attachment, err)
	}
	if _, err := alice.SendFileData("Bob", bytes.NewReader(text), int64(len(text)), SendFileOptions{}); err == nil {
		t.Fatal("a file without a name was sent")
	}

	carry(t, alice, carol)
	// Bob holds the message and one of its two chunks: a page of the
	// conversation says so, and nothing is written.
	msgRaw, chunks := outbox(t, alice, sent.ID)
	if len(chunks) < 2 {
		t.Fatalf("%d chunks held by Alice, want the note's 2 and more", len(chunks))
	}
	ingestFrom(t, bob, "carol", msgRaw)
	for _, c := range chunks {
		if a := pageAttachment(t, bob, sent.ID); a.Have > 0 {
			break
		}
		ingestFrom(t, bob, "carol", c) // the other files' chunks change nothing here
	}
	if a := pageAttachment(t, bob, sent.ID); a.Have != 1 || a.Chunks != 2 || a.Complete || a.Sources != 1 {
		t.Fatalf("the page shows the half-arrived file as %+v", a)
	}
	var out bytes.Buffer
	if _, err := bob.WriteAttachment(sent.ID, &out); !errors.Is(err, ErrConflict) || out.Len() != 0 {
		t.Fatalf("unfinished file: %v, %d bytes written", err, out.Len())
	}
	carry(t, carol, bob)
	if a := pageAttachment(t, bob, sent.ID); !a.Complete || a.Have != a.Chunks {
		t.Fatalf("the page shows the file as %+v", a)
	}
	a, err := bob.ReceivedAttachment(sent.ID)
	if err != nil || !a.Complete || a.MediaType != "audio/webm" {
		t.Fatalf("Bob's attachment %+v, %v", a, err)
	}
	if _, err := bob.WriteAttachment(sent.ID, &out); err != nil || !bytes.Equal(out.Bytes(), note) {
		t.Fatalf("written %d bytes (want %d identical): %v", out.Len(), len(note), err)
	}
	if _, err := alice.ReceivedAttachment(sent.ID); err == nil {
		t.Fatal("the sender was given the file as if sent to her")
	}
}

// pageAttachment is the file of message id on the newest page of n's
// conversation with Alice (what the web UI shows).
func pageAttachment(t *testing.T, n *testNode, id string) *Attachment {
	t.Helper()
	page, err := n.MessagesPage("Alice", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if m.ID == id && m.Attachment != nil {
			return m.Attachment
		}
	}
	t.Fatalf("no file in message %s on %s's page", id, n.id.Name)
	return nil
}
