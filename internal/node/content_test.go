package node

import (
	"bytes"
	"testing"
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
