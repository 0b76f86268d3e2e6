package room

import (
	"crypto/ed25519"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// FuzzOpenPost: arbitrary bytes never panic a channel's or Nearby's
// opener, and nothing but a genuine post opens.
func FuzzOpenPost(f *testing.F) {
	c := testChannel(f, "#fuzz", "", MinStampBits)
	alice := newPerson(f, "Alice")
	e, _ := c.Seal(alice.id, p0, postText("seed"), expiry, 3, newRand("fuzz"))
	good := e.Marshal()
	f.Add(good)
	n, _ := Nearby().Seal(alice.id, p0, postText("seed"), expiry, 2, newRand("fuzz2"))
	f.Add(n.Marshal())
	genuine := map[*Channel]envelope.ID{c: envelope.ComputeID(good), Nearby(): envelope.ComputeID(n.Marshal())}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := envelope.Parse(b)
		if err != nil {
			return
		}
		for _, ch := range []*Channel{c, Nearby()} {
			post, err := ch.Open(e, p0)
			if err == nil && envelope.ComputeID(b) != genuine[ch] {
				t.Fatalf("forged post opened: %+v", post)
			}
		}
		CheckStamp(b, 8)
	})
}

// FuzzVerifyAnnouncement: arbitrary bytes never panic the relay's check,
// and an edited announcement never verifies.
func FuzzVerifyAnnouncement(f *testing.F) {
	alice := newPerson(f, "Alice")
	owner := Owner(alice.id, "fuzz")
	var o [32]byte
	copy(o[:], owner.Public().(ed25519.PublicKey))
	e, _ := Announce(o, owner, nil, p0, postText("seed"), expiry, 8)
	good := e.Marshal()
	f.Add(good)
	d := Delegate(owner, owner.Public().(ed25519.PublicKey), expiry)
	e2, _ := Announce(o, owner, &d, p0, postText("seed"), expiry, 8)
	f.Add(e2.Marshal())
	ids := map[envelope.ID]bool{envelope.ComputeID(good): true, envelope.ComputeID(e2.Marshal()): true}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := envelope.Parse(b)
		if err != nil {
			return
		}
		if a, err := VerifyAnnouncement(e); err == nil && a.Owner == o && !ids[envelope.ComputeID(b)] {
			t.Fatal("an edited announcement verified")
		}
	})
}

// FuzzParseDelegation: arbitrary bytes never panic; what parses was
// signed by its owner and encodes back to the same bytes.
func FuzzParseDelegation(f *testing.F) {
	owner := Owner(newPerson(f, "Alice").id, "fuzz")
	d := Delegate(owner, owner.Public().(ed25519.PublicKey), expiry)
	f.Add(d.Marshal())
	f.Add(make([]byte, DelegationSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDelegation(b)
		if err != nil {
			return
		}
		if string(d.Marshal()) != string(b) {
			t.Fatal("parse then marshal changed the bytes")
		}
	})
}

// FuzzChannelFromKeys: stored channel keys with any name and difficulty
// never panic the loader; what loads has a normal name.
func FuzzChannelFromKeys(f *testing.F) {
	f.Add("#ok", 21)
	f.Add("#Bad Name", 5)
	f.Fuzz(func(t *testing.T, name string, bits int) {
		c, err := ChannelFromKeys(ChannelKeys{Name: name, Bits: bits})
		if err != nil {
			return
		}
		if n, err := NormaliseName(c.Name); err != nil || n != c.Name || c.Bits < MinStampBits || c.Bits > MaxStampBits {
			t.Fatalf("loaded %q (%d bits)", c.Name, c.Bits)
		}
	})
}
