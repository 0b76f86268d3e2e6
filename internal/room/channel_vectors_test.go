package room

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const channelVectorsPath = "../../testdata/vectors/channel.json"

// channelVector is one case of SPEC §15.15: a channel joined by name,
// password and difficulty, a post in it, a Nearby post and an owner's and
// a delegate's announcement by the same identity, each stamped; every byte
// string is hex. Random is the post's tag index (1) and salt (8), then the
// Nearby post's. Regenerate with
//
//	go test ./internal/room -run ChannelVectors -update
type channelVector struct {
	Comment          string
	SignSeed, DHPriv string
	Name, Password   string
	Bits             int
	Period           keys.Period
	Random           string
	Content          string
	Expiry           uint32
	Hops             uint8
	AnnounceName     string // the owner key's local name
	DelegateSeed     string // the delegate's Ed25519 seed
	DelegationExpiry uint32
	// Outputs.
	ChannelID, Tag0     string // the channel's CID and tag 0 of Period
	Pseudonym           string // the identity's pseudonym in the channel
	Post, PostID        string // the stamped post and its ID
	NearbyPseudonym     string // in Period
	NearbyPost          string
	Owner, Announcement string
	Delegated           string // the delegate's announcement
}

func TestChannelVectors(t *testing.T) {
	seed := []channelVector{{
		Comment:  "A post in #rescue-kathmandu (password \"kathmandu\", 12-bit stamps), a Nearby post and two announcements",
		SignSeed: hex.EncodeToString(testkit.Stream("channel alice sign", 32)),
		DHPriv:   hex.EncodeToString(testkit.Stream("channel alice dh", 32)),
		Name:     "#Rescue-Kathmandu", Password: "kathmandu", Bits: 12, Period: 20000,
		Random:           hex.EncodeToString(testkit.Stream("channel vector random", 18)),
		Content:          hex.EncodeToString(append([]byte{1}, "Water at the school, bring bottles."...)),
		Expiry:           2000000000,
		Hops:             12,
		AnnounceName:     "clinic",
		DelegateSeed:     hex.EncodeToString(testkit.Stream("channel delegate", 32)),
		DelegationExpiry: 2000003600,
	}}
	vs := testkit.Vectors(t, channelVectorsPath, func() []channelVector {
		out := make([]channelVector, len(seed))
		for i, v := range seed {
			out[i] = computeChannelVector(t, v)
		}
		return out
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		got := computeChannelVector(t, v)
		if !reflect.DeepEqual(v, got) {
			t.Fatalf("vector %q:\nfile     %+v\ncomputed %+v", v.Comment, v, got)
		}
		// The file's bytes open and verify as a reader and a relay would.
		x := NewChannelIndex()
		c := testChannel(t, v.Name, v.Password, v.Bits)
		x.Update(c, v.Period)
		x.Update(Nearby(), v.Period)
		for _, s := range []string{v.Post, v.NearbyPost} {
			raw := testkit.Unhex(t, s)
			if err := CheckStamp(raw, v.Bits); err != nil {
				t.Fatal(err)
			}
			e, err := envelope.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			ch, p, ok := x.Lookup(e.Tag)
			if !ok {
				t.Fatal("vector post not recognised")
			}
			if post, err := ch.Open(e, p); err != nil || hex.EncodeToString(post.Content) != v.Content {
				t.Fatalf("vector post: %+v, %v", post, err)
			}
		}
		for _, s := range []string{v.Announcement, v.Delegated} {
			raw := testkit.Unhex(t, s)
			e, err := envelope.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckStamp(raw, v.Bits); err != nil {
				t.Fatal(err)
			}
			if a, err := VerifyAnnouncement(e); err != nil || hex.EncodeToString(a.Owner[:]) != v.Owner {
				t.Fatalf("vector announcement: %+v, %v", a, err)
			}
		}
	}
}

func computeChannelVector(t *testing.T, v channelVector) channelVector {
	t.Helper()
	id, err := keys.IdentityFromSeeds("Alice", testkit.Unhex(t, v.SignSeed), testkit.Unhex(t, v.DHPriv))
	if err != nil {
		t.Fatal(err)
	}
	c := testChannel(t, v.Name, v.Password, v.Bits)
	rnd := &fixedRand{b: testkit.Unhex(t, v.Random)}
	content := testkit.Unhex(t, v.Content)
	mint := func(e *envelope.Envelope) string {
		raw := e.Marshal()
		if _, err := Mint(context.Background(), raw, v.Bits); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(raw)
	}
	out := v
	out.ChannelID = hex.EncodeToString(c.ID[:])
	tag0 := c.Tag(v.Period, 0)
	out.Tag0 = hex.EncodeToString(tag0[:])
	out.Pseudonym = hex.EncodeToString(c.Pseudonym(id, v.Period).Public().(ed25519.PublicKey))
	e, err := c.Seal(id, v.Period, content, v.Expiry, v.Hops, rnd)
	if err != nil {
		t.Fatal(err)
	}
	out.Post = mint(e)
	pid := envelope.ComputeID(testkit.Unhex(t, out.Post))
	out.PostID = pid.String()
	out.NearbyPseudonym = hex.EncodeToString(Nearby().Pseudonym(id, v.Period).Public().(ed25519.PublicKey))
	n, err := Nearby().Seal(id, v.Period, content, v.Expiry, NearbyHops, rnd)
	if err != nil {
		t.Fatal(err)
	}
	out.NearbyPost = mint(n)
	owner := Owner(id, v.AnnounceName)
	var o [32]byte
	copy(o[:], owner.Public().(ed25519.PublicKey))
	out.Owner = hex.EncodeToString(o[:])
	a, err := Announce(o, owner, nil, v.Period, content, v.Expiry, v.Hops)
	if err != nil {
		t.Fatal(err)
	}
	out.Announcement = mint(a)
	dk := ed25519.NewKeyFromSeed(testkit.Unhex(t, v.DelegateSeed))
	d := Delegate(owner, dk.Public().(ed25519.PublicKey), v.DelegationExpiry)
	da, err := Announce(o, dk, &d, v.Period, content, v.Expiry, v.Hops)
	if err != nil {
		t.Fatal(err)
	}
	out.Delegated = mint(da)
	return out
}

type fixedRand struct{ b []byte }

func (f *fixedRand) Read(p []byte) (int, error) {
	if len(p) > len(f.b) {
		panic("vector randomness exhausted")
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}
