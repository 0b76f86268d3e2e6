package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// FuzzSessionOpen feeds a receiver's session hostile bodies under a tag it
// expects — the first envelope of the peer's next epoch (header, prefix,
// ML-KEM ciphertext, DH) and one of a known epoch — as a relay that edits
// copies would. Open must never panic, and whatever fails must leave the
// session exactly as it was (SPEC §6).
func FuzzSessionOpen(f *testing.F) {
	const p = 900
	a, b := pair(f, p)
	first := b.seal(f, p, "accept")
	mustOpen(f, a, first, p, "accept")
	known := b.seal(f, p, "known epoch")
	f.Add(first.Body, false)
	f.Add(known.Body, true)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, body []byte, knownEpoch bool) {
		a2, _ := pair(t, p)
		target, e := a2, &envelope.Envelope{Kind: envelope.KindSealed, Expiry: first.Expiry, Body: body}
		if knownEpoch {
			target = &party{name: "A", s: a.s.Clone(), sent: map[envelope.ID]Sent{}}
			e.Tag = known.Tag
		} else {
			e.Tag = target.s.Expected()[len(target.s.Expected())-NextWindow].Tag
		}
		before, _ := json.Marshal(target.s)
		sl, ok := target.slot(e, p)
		if !ok {
			t.Fatal("the tag is not expected")
		}
		if _, _, err := target.s.Open(e, sl, p); err != nil {
			if after, _ := json.Marshal(target.s); !bytes.Equal(before, after) {
				t.Fatal("a failed open changed the session")
			}
		}
	})
}

// FuzzParseBinding checks a request's sealed identity never panics and
// only verifies what its key signed.
func FuzzParseBinding(f *testing.F) {
	id, _ := NewIdentity("A", rand.Reader)
	f.Add(id.Binding())
	f.Add(make([]byte, SenderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseBinding(b)
		if err == nil && !bytes.Equal(append(p.Bytes(), b[64:]...), b) {
			t.Fatal("a binding parsed to other keys")
		}
	})
}
