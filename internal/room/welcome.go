package room

import (
	"encoding/binary"
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// Welcome gives one member an epoch's secret. It rides inside a pairwise
// message (SPEC §5.3 content type 16, node integration to come), so the
// pairwise session authenticates its sender and hides it from everyone
// else. Layout:
//
//	0   1  version = 1
//	1  32  group ID
//	33 32  epoch hash EH
//	65 32  epoch secret GS
//	97  2  number of changes k
//	99  …  k × (be16 length || change): the chain from the genesis to EH
//	       for a new member, only EH's change for a member already in
type Welcome struct {
	Group   [32]byte
	Epoch   Hash
	Secret  [32]byte
	Changes [][]byte
}

const (
	welcomeVersion = 1
	welcomeHeader  = 99
)

// Marshal encodes w.
func (w *Welcome) Marshal() []byte {
	b := make([]byte, 0, welcomeHeader+len(w.Changes)*(2+MaxChangeSize))
	b = append(b, welcomeVersion)
	b = append(b, w.Group[:]...)
	b = append(b, w.Epoch[:]...)
	b = append(b, w.Secret[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(w.Changes)))
	for _, c := range w.Changes {
		b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	return b
}

// ParseWelcome decodes a welcome strictly: known version, at least one
// change, every change within its length and of a plausible size, nothing
// after the last. Changes are checked when applied (Room.AcceptWelcome).
func ParseWelcome(b []byte) (*Welcome, error) {
	if len(b) < welcomeHeader || len(b) > envelope.MaxSize {
		return nil, fmt.Errorf("%w welcome: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != welcomeVersion {
		return nil, fmt.Errorf("%w welcome: version %d", ErrMalformed, b[0])
	}
	w := &Welcome{}
	copy(w.Group[:], b[1:33])
	copy(w.Epoch[:], b[33:65])
	copy(w.Secret[:], b[65:97])
	k := int(binary.BigEndian.Uint16(b[97:99]))
	if k == 0 {
		return nil, fmt.Errorf("%w welcome: no changes", ErrMalformed)
	}
	rest := b[welcomeHeader:]
	for i := range k {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w welcome: change %d of %d missing", ErrMalformed, i+1, k)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n < changeHeader+64 || n > MaxChangeSize || len(rest) < 2+n {
			return nil, fmt.Errorf("%w welcome: change %d of %d bytes", ErrMalformed, i+1, n)
		}
		w.Changes = append(w.Changes, append([]byte(nil), rest[2:2+n]...))
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w welcome: %d bytes after the last change", ErrMalformed, len(rest))
	}
	return w, nil
}

// Split cuts a welcome whose encoding exceeds max bytes into parts of at
// most max bytes each, every part carrying the same group, epoch and secret
// and a run of the changes in order. A newcomer joins from the part with
// the create and accepts the others as they come, in any order: changes
// whose parent has not arrived are held, and so is the secret until its
// epoch's change is known. A single change never exceeds max when max is
// at least welcomeHeader + 2 + MaxChangeSize.
func (w *Welcome) Split(max int) []*Welcome {
	var parts []*Welcome
	cur := &Welcome{Group: w.Group, Epoch: w.Epoch, Secret: w.Secret}
	size := welcomeHeader
	for _, c := range w.Changes {
		if len(cur.Changes) > 0 && size+2+len(c) > max {
			parts = append(parts, cur)
			cur = &Welcome{Group: w.Group, Epoch: w.Epoch, Secret: w.Secret}
			size = welcomeHeader
		}
		cur.Changes = append(cur.Changes, c)
		size += 2 + len(c)
	}
	return append(parts, cur)
}
