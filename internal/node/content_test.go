package node

import (
	"bytes"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/attach"
)

func FuzzParseContent(f *testing.F) {
	f.Add((&Content{Type: TypeText, Time: 1, Text: "hi"}).Marshal())
	f.Add((&Content{Type: TypeRequest, Time: 1, Period: 2, KEM: make([]byte, kemKeySize), Name: "Alice", Text: "x"}).Marshal())
	f.Add((&Content{Type: TypeRekey, Time: 1, Period: 2, KEM: make([]byte, kemKeySize)}).Marshal())
	f.Add((&Content{Type: TypeAccept, Time: 1}).Marshal())
	f.Add((&Content{Type: TypeRoomJoin, Time: 1, Room: make([]byte, 32+roomMemberEntry)}).Marshal())
	f.Add((&Content{Type: TypeRoomInvite, Time: 1, Room: append(append(make([]byte, 32), 4), "Team"...)}).Marshal())
	f.Add((&Content{Type: TypeRoomWelcome, Time: 1, Room: make([]byte, 99)}).Marshal())
	f.Add((&Content{Type: TypeRoomLeave, Time: 1, Room: make([]byte, 96)}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseContent(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("content does not round-trip: %x", b)
		}
	})
}

// FuzzAttachmentContent: an attachment's payload parses strictly (its
// manifest checked, its caption bounded) and round-trips.
func FuzzAttachmentContent(f *testing.F) {
	m := (&attach.Manifest{Size: 5, ChunkSize: 32650, Chunks: 1, MediaType: "text/plain", Name: "note.txt", Receipts: true}).Marshal()
	f.Add((&Content{Type: TypeAttachment, Time: 1, Manifest: m, Text: "caption"}).Marshal())
	f.Add((&Content{Type: TypeAttachment, Time: 1, Manifest: m}).Marshal())
	f.Add([]byte{byte(TypeAttachment), 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseContent(b)
		if err != nil {
			return
		}
		if c.Type == TypeAttachment {
			if _, err := attach.ParseManifest(c.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize}); err != nil || len(c.Text) > MaxText {
				t.Fatalf("accepted a bad attachment: %v, caption of %d bytes", err, len(c.Text))
			}
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("content does not round-trip: %x", b)
		}
	})
}
