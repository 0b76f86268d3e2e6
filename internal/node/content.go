package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// Content is the plaintext inside a sealed envelope, before padding. Layout
// (integers big-endian):
//
//	0  1  type: 1 text, 2 contact request (first contact), 3 accept
//	1  4  time the sender wrote it, Unix seconds
//	text:    5.. UTF-8 text
//	request: 5  4  p0: the period the chains start at
//	         9  1  name length n (1..64)
//	         10 n  the sender's display name
//	         .. UTF-8 text (may be empty)
//	accept:  nothing more
type Content struct {
	Type   ContentType
	Time   uint32
	Text   string
	Period uint32 // request only
	Name   string // request only
}

// ContentType says what a sealed envelope holds.
type ContentType byte

const (
	TypeText    ContentType = 1
	TypeRequest ContentType = 2
	TypeAccept  ContentType = 3
)

// MaxText bounds one message's text, in bytes, so it fits the largest bucket.
const MaxText = 16 * 1024

var errContent = errors.New("invalid message content")

// Marshal encodes c.
func (c *Content) Marshal() []byte {
	b := []byte{byte(c.Type)}
	b = binary.BigEndian.AppendUint32(b, c.Time)
	switch c.Type {
	case TypeRequest:
		b = binary.BigEndian.AppendUint32(b, c.Period)
		b = append(b, byte(len(c.Name)))
		b = append(b, c.Name...)
		b = append(b, c.Text...)
	case TypeText:
		b = append(b, c.Text...)
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
	case TypeRequest:
		if len(rest) < 5 || len(rest) < 5+int(rest[4]) {
			return nil, fmt.Errorf("%w: short request", errContent)
		}
		c.Period = binary.BigEndian.Uint32(rest)
		n := int(rest[4])
		c.Name = string(rest[5 : 5+n])
		c.Text = string(rest[5+n:])
		if err := keys.CheckName(c.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", errContent, err)
		}
	case TypeAccept:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: trailing bytes after accept", errContent)
		}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", errContent, c.Type)
	}
	if !utf8.ValidString(c.Text) {
		return nil, fmt.Errorf("%w: text is not UTF-8", errContent)
	}
	return c, nil
}

func (c *Content) When() time.Time { return time.Unix(int64(c.Time), 0).UTC() }
