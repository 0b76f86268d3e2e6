package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// Content is the plaintext inside a sealed envelope, before padding. Layout
// (integers big-endian, SPEC §5.3):
//
//	0  1  type: 1 text, 2 contact request, 3 accept, 4 re-key request
//	1  4  time the sender wrote it, Unix seconds
//	text:    5..    UTF-8 text
//	request: 5   8  p0: the period the session starts at
//	         13 32  the sender's first ratchet public key
//	         45 1184 its ML-KEM-768 encapsulation key
//	         1229 1 name length n (1..64)
//	         1230 n the sender's display name (normal form)
//	         ..     UTF-8 text (may be empty)
//	accept:  nothing more
//	re-key:  p0 (8) || ratchet key (32) || ML-KEM key (1184)
//	room join:    group ID (32) || member entry (160)       (SPEC §15.4)
//	room welcome: a welcome (SPEC §15.4)
//	room invite:  group ID (32) || name length (1) || group name
//	room leave:   group ID (32) || leave statement (64)
//	attachment:   manifest length (2) || manifest (SPEC §16.5) || caption (UTF-8, may be empty)
type Content struct {
	Type    ContentType
	Time    uint32
	Text    string
	Period  keys.Period // request, re-key
	Ratchet [32]byte    // request, re-key
	KEM     []byte      // request, re-key
	Name    string      // request, room invite
	Room    []byte      // room join, welcome, invite: the payload after the time
	// Manifest is an attachment's manifest (attach.ParseManifest checks it
	// against the node's limit); Text is then its caption.
	Manifest []byte
}

// ContentType says what a sealed envelope holds.
type ContentType byte

const (
	TypeText    ContentType = 1
	TypeRequest ContentType = 2
	TypeAccept  ContentType = 3
	TypeRekey   ContentType = 4
	// Room contents ride inside pairwise envelopes (SPEC §15.4).
	TypeRoomJoin    ContentType = 5
	TypeRoomWelcome ContentType = 6
	TypeRoomInvite  ContentType = 7
	TypeRoomLeave   ContentType = 8
	// TypeRoomSealed rides in a group message, not a pairwise one: an
	// epoch's sealed welcomes (room.SealedWelcomes, SPEC §15.4).
	TypeRoomSealed ContentType = 9
	// TypeAttachment carries a file's manifest and a caption in a pairwise
	// message (SPEC §16.10); the file comes in chunk envelopes.
	TypeAttachment ContentType = 10
)

// roomMemberEntry is a member entry's size (SPEC §15.2).
const roomMemberEntry = 160

// MaxText bounds one message's text, in bytes, so it fits the largest bucket.
const MaxText = 16 * 1024

// kemKeySize is an ML-KEM-768 encapsulation key.
const kemKeySize = 1184

var errContent = errors.New("invalid message content")

// Marshal encodes c.
func (c *Content) Marshal() []byte {
	b := []byte{byte(c.Type)}
	b = binary.BigEndian.AppendUint32(b, c.Time)
	switch c.Type {
	case TypeRequest, TypeRekey:
		b = binary.BigEndian.AppendUint64(b, uint64(c.Period))
		b = append(b, c.Ratchet[:]...)
		b = append(b, c.KEM...)
		if c.Type == TypeRequest {
			b = append(b, byte(len(c.Name)))
			b = append(b, c.Name...)
			b = append(b, c.Text...)
		}
	case TypeText:
		b = append(b, c.Text...)
	case TypeAttachment:
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Manifest)))
		b = append(b, c.Manifest...)
		b = append(b, c.Text...)
	case TypeRoomJoin, TypeRoomWelcome, TypeRoomInvite, TypeRoomLeave, TypeRoomSealed:
		b = append(b, c.Room...)
	}
	return b
}

// ParseContent decodes and validates content.
func ParseContent(b []byte) (*Content, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: %d bytes", errContent, len(b))
	}
	c := &Content{Type: ContentType(b[0]), Time: binary.BigEndian.Uint32(b[1:5])}
	rest := b[5:]
	switch c.Type {
	case TypeText:
		c.Text = string(rest)
	case TypeRequest, TypeRekey:
		const fixed = 8 + 32 + kemKeySize
		if len(rest) < fixed {
			return nil, fmt.Errorf("%w: short %s", errContent, c.Type)
		}
		c.Period = keys.Period(binary.BigEndian.Uint64(rest))
		copy(c.Ratchet[:], rest[8:40])
		c.KEM = append([]byte(nil), rest[40:fixed]...)
		rest = rest[fixed:]
		if c.Type == TypeRekey {
			if len(rest) != 0 {
				return nil, fmt.Errorf("%w: trailing bytes after re-key", errContent)
			}
			break
		}
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, fmt.Errorf("%w: short request", errContent)
		}
		n := int(rest[0])
		c.Name = string(rest[1 : 1+n])
		c.Text = string(rest[1+n:])
		if err := keys.CheckName(c.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", errContent, err)
		}
	case TypeAttachment:
		if err := c.parseAttachment(rest); err != nil {
			return nil, err
		}
	case TypeAccept:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: trailing bytes after accept", errContent)
		}
	case TypeRoomJoin:
		if len(rest) != 32+roomMemberEntry {
			return nil, fmt.Errorf("%w: room join of %d bytes", errContent, len(rest))
		}
		c.Room = append([]byte(nil), rest...)
	case TypeRoomWelcome:
		c.Room = append([]byte(nil), rest...) // room.ParseWelcome checks it
	case TypeRoomSealed:
		c.Room = append([]byte(nil), rest...) // room.ParseSealedWelcomes checks it
	case TypeRoomLeave:
		if len(rest) != 32+64 {
			return nil, fmt.Errorf("%w: room leave of %d bytes", errContent, len(rest))
		}
		c.Room = append([]byte(nil), rest...)
	case TypeRoomInvite:
		if len(rest) < 34 || int(rest[32]) != len(rest)-33 {
			return nil, fmt.Errorf("%w: room invite of %d bytes", errContent, len(rest))
		}
		c.Room, c.Name = append([]byte(nil), rest...), string(rest[33:])
		if err := keys.CheckName(c.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", errContent, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", errContent, c.Type)
	}
	if !utf8.ValidString(c.Text) {
		return nil, fmt.Errorf("%w: text is not UTF-8", errContent)
	}
	return c, nil
}

func (t ContentType) String() string {
	switch t {
	case TypeText:
		return "text"
	case TypeRequest:
		return "request"
	case TypeAccept:
		return "accept"
	case TypeRekey:
		return "re-key"
	case TypeRoomJoin:
		return "room join"
	case TypeRoomWelcome:
		return "room welcome"
	case TypeRoomInvite:
		return "room invite"
	case TypeRoomLeave:
		return "room leave"
	case TypeRoomSealed:
		return "room sealed welcomes"
	case TypeAttachment:
		return "attachment"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// parseAttachment reads an attachment's payload: the manifest must parse
// under the protocol's ceiling (the node applies its own limit when it
// starts the transfer), and the caption is a text's.
func (c *Content) parseAttachment(rest []byte) error {
	if len(rest) < 2 {
		return fmt.Errorf("%w: attachment of %d bytes", errContent, len(rest))
	}
	n := int(binary.BigEndian.Uint16(rest))
	if n > attach.MaxManifestSize || len(rest)-2 < n {
		return fmt.Errorf("%w: attachment manifest of %d bytes in %d", errContent, n, len(rest)-2)
	}
	if _, err := attach.ParseManifest(rest[2:2+n], attach.Limits{MaxFileSize: attach.MaxFileSize}); err != nil {
		return fmt.Errorf("%w: %v", errContent, err)
	}
	c.Manifest = append([]byte(nil), rest[2:2+n]...)
	c.Text = string(rest[2+n:])
	if len(c.Text) > MaxText {
		return fmt.Errorf("%w: caption of %d bytes, at most %d", errContent, len(c.Text), MaxText)
	}
	return nil
}

func (c *Content) When() time.Time { return time.Unix(int64(c.Time), 0).UTC() }
