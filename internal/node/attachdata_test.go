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
	// Bob holds the message but none of its chunks: nothing is written.
	msgRaw, _ := outbox(t, alice, sent.ID)
	ingestFrom(t, bob, "carol", msgRaw)
	var out bytes.Buffer
	if _, err := bob.WriteAttachment(sent.ID, &out); !errors.Is(err, ErrConflict) || out.Len() != 0 {
		t.Fatalf("unfinished file: %v, %d bytes written", err, out.Len())
	}
	carry(t, carol, bob)
	page, err := bob.MessagesPage("Alice", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if m.ID == sent.ID && (m.Attachment == nil || !m.Attachment.Complete || m.Attachment.Have != m.Attachment.Chunks) {
			t.Fatalf("the page shows the file as %+v", m.Attachment)
		}
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
