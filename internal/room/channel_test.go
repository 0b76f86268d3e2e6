package room

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
)

var (
	chanMu    sync.Mutex
	chanCache = map[string]*Channel{}
)

// testChannel joins a channel once per test binary (Argon2id costs 0.25 s).
func testChannel(t testing.TB, name, password string, bits int) *Channel {
	t.Helper()
	chanMu.Lock()
	defer chanMu.Unlock()
	k := name + "\x00" + password + "\x00" + string(rune(bits))
	if c, ok := chanCache[k]; ok {
		return c
	}
	c, err := JoinChannel(name, password, bits)
	if err != nil {
		t.Fatal(err)
	}
	chanCache[k] = c
	return c
}

func postText(s string) []byte { return append([]byte{1}, s...) }

func sealPost(t testing.TB, c *Channel, p *person, text string, rnd *detRand) []byte {
	t.Helper()
	e, err := c.Seal(p.id, p0, postText(text), expiry, 3, rnd)
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Marshal()
	if _, err := Mint(context.Background(), raw, c.Bits); err != nil {
		t.Fatal(err)
	}
	return raw
}

func openRaw(t testing.TB, x *ChannelIndex, raw []byte) (*Post, error) {
	t.Helper()
	e, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, p, ok := x.Lookup(e.Tag)
	if !ok {
		return nil, ErrUnknown
	}
	if err := CheckStamp(raw, c.Bits); err != nil {
		return nil, err
	}
	return c.Open(e, p)
}

func TestNormaliseName(t *testing.T) {
	for in, want := range map[string]string{"#Rescue-Kathmandu": "#rescue-kathmandu", "rescue-kathmandu": "#rescue-kathmandu",
		" #ＲＥＳＣＵＥ ": "#rescue", "#café": "#café"} {
		if got, err := NormaliseName(in); err != nil || got != want {
			t.Errorf("NormaliseName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "#", "#a b", "#a/b", "#" + strings.Repeat("a", 64)} {
		if _, err := NormaliseName(bad); !errors.Is(err, ErrChannelName) {
			t.Errorf("NormaliseName(%q): %v, want ErrChannelName", bad, err)
		}
	}
}

// TestChannelPostsOpenAndSize: a post opens for every reader, names the
// poster's pseudonym, and a 100-character post is at most 256 bytes.
func TestChannelPostsOpenAndSize(t *testing.T) {
	c := testChannel(t, "#rescue-kathmandu", "", 10)
	alice := newPerson(t, "Alice")
	x := NewChannelIndex()
	x.Update(c, p0)
	raw := sealPost(t, c, alice, strings.Repeat("x", 100), newRand("post"))
	if len(raw) > 256 {
		t.Fatalf("100-character post is %d bytes on the wire, limit 256", len(raw))
	}
	t.Logf("100-character channel post: %d bytes", len(raw))
	post, err := openRaw(t, x, raw)
	if err != nil {
		t.Fatal(err)
	}
	want := c.Pseudonym(alice.id, p0).Public().(ed25519.PublicKey)
	if !bytes.Equal(post.Pseudonym[:], want) || string(post.Content) != string(postText(strings.Repeat("x", 100))) {
		t.Fatalf("opened %x %q", post.Pseudonym, post.Content)
	}
	// Any edit (but the hop budget, and a nonce that still stamps) is refused.
	for i := 0; i < len(raw); i++ {
		if i == 1 || (i >= 6 && i < 14) {
			continue
		}
		bad := bytes.Clone(raw)
		bad[i] ^= 0x40
		e, err := envelope.Parse(bad)
		if err != nil {
			continue
		}
		if _, err := c.Open(e, p0); err == nil {
			t.Fatalf("a post edited at byte %d opened", i)
		}
	}
}

// TestWrongPasswordCannotRead: the same name with another password, or
// without one, or with another difficulty, is another channel: its tags
// differ and its keys open nothing.
func TestWrongPasswordCannotRead(t *testing.T) {
	right := testChannel(t, "#clinic", "s3cret", 10)
	alice := newPerson(t, "Alice")
	raw := sealPost(t, right, alice, "meds at 5", newRand("pw"))
	e, _ := envelope.Parse(raw)
	for _, other := range []*Channel{testChannel(t, "#clinic", "secret", 10), testChannel(t, "#clinic", "", 10), testChannel(t, "#clinic", "s3cret", 11)} {
		x := NewChannelIndex()
		x.Update(other, p0)
		if _, _, ok := x.Lookup(e.Tag); ok {
			t.Fatalf("%s with another password or difficulty recognises the post", other.Name)
		}
		for pp := p0 - 1; pp <= p0+1; pp++ {
			if _, err := other.Open(e, pp); err == nil {
				t.Fatal("a wrong password opened the post")
			}
		}
	}
	if right.ID == testChannel(t, "#clinic", "", 10).ID {
		t.Fatal("password does not change the channel ID")
	}
}

// TestPseudonymsDoNotLink: one identity's pseudonyms in two channels are
// different keys, neither is its identity key, and Nearby's changes every
// period; another identity's differ too.
func TestPseudonymsDoNotLink(t *testing.T) {
	a, b := testChannel(t, "#one", "", 10), testChannel(t, "#two", "", 10)
	alice, bob := newPerson(t, "Alice"), newPerson(t, "Bob")
	pa, pb := a.Pseudonym(alice.id, p0).Public().(ed25519.PublicKey), b.Pseudonym(alice.id, p0).Public().(ed25519.PublicKey)
	seen := map[string]string{}
	for name, k := range map[string][]byte{
		"alice in #one": pa, "alice in #two": pb, "alice's identity": alice.id.Sign.Public().(ed25519.PublicKey),
		"bob in #one":           a.Pseudonym(bob.id, p0).Public().(ed25519.PublicKey),
		"alice nearby today":    Nearby().Pseudonym(alice.id, p0).Public().(ed25519.PublicKey),
		"alice nearby tomorrow": Nearby().Pseudonym(alice.id, p0+1).Public().(ed25519.PublicKey),
	} {
		if prev, dup := seen[string(k)]; dup {
			t.Fatalf("%s and %s share a key", name, prev)
		}
		seen[string(k)] = name
	}
	if !a.Pseudonym(alice.id, p0).Equal(a.Pseudonym(alice.id, p0+5)) {
		t.Fatal("a channel pseudonym changed with the period")
	}
	// Posts in the two channels: neither channel's reader can open the
	// other's, so only the keys (independent HKDF outputs) could link them.
	ra := sealPost(t, a, alice, "hi", newRand("l1"))
	ea, _ := envelope.Parse(ra)
	if _, err := b.Open(ea, p0); err == nil {
		t.Fatal("#two opened a post of #one")
	}
}

// TestStamps: a minted stamp checks; too easy, missing, moved to another
// envelope or on another kind, it does not.
func TestStamps(t *testing.T) {
	c := testChannel(t, "#rescue-kathmandu", "", 10)
	alice := newPerson(t, "Alice")
	raw := sealPost(t, c, alice, "hello", newRand("stamp"))
	if err := CheckStamp(raw, 10); err != nil {
		t.Fatal(err)
	}
	id := envelope.ComputeID(raw)
	var nonce [8]byte
	copy(nonce[:], raw[6:14])
	bits := StampBits(id, nonce)
	if err := CheckStamp(raw, bits+1); !errors.Is(err, ErrStamp) {
		t.Fatalf("a stamp of %d bits passed as %d: %v", bits, bits+1, err)
	}
	unstamped := bytes.Clone(raw)
	clear(unstamped[6:14])
	if StampBits(id, [8]byte{}) < 10 && CheckStamp(unstamped, 10) == nil {
		t.Fatal("an unstamped post passed")
	}
	if envelope.ComputeID(unstamped) != id {
		t.Fatal("the nonce changed the ID")
	}
	other := sealPost(t, c, alice, "other", newRand("stamp2"))
	copy(other[6:14], raw[6:14]) // raw's nonce on another envelope
	if err := CheckStamp(other, 10); err == nil && StampBits(envelope.ComputeID(other), nonce) < 10 {
		t.Fatal("a stamp moved to another envelope passed")
	}
	// A sealed (kind 0) envelope has no stamp.
	sealed := bytes.Clone(raw)
	sealed[0] = 0x20
	if err := CheckStamp(sealed, 0); !errors.Is(err, ErrStamp) {
		t.Fatalf("a kind-0 envelope has a stamp: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Mint(ctx, bytes.Clone(raw), 32); err == nil {
		t.Fatal("a cancelled mint succeeded")
	}
}

// TestChannelTagsRevealNothing: the tags of two channels and of one
// channel's periods are all distinct, and a channel's index holds its
// watched periods only.
func TestChannelTagsRevealNothing(t *testing.T) {
	a, b := testChannel(t, "#one", "", 10), testChannel(t, "#two", "", 10)
	seen := map[[16]byte]bool{}
	ones := 0
	for _, c := range []*Channel{a, b, Nearby()} {
		for p := p0; p < p0+3; p++ {
			for _, tag := range c.Tags(p) {
				if seen[tag] {
					t.Fatalf("tag %x repeats", tag)
				}
				seen[tag] = true
				for _, by := range tag {
					for ; by != 0; by &= by - 1 {
						ones++
					}
				}
			}
		}
	}
	if frac := float64(ones) / float64(len(seen)*128); frac < 0.47 || frac > 0.53 {
		t.Fatalf("tag bits are %.3f ones", frac)
	}
	x := NewChannelIndex()
	x.Update(a, p0)
	if want := (ChannelRetention + 2) * TagsPerPeriod; x.Len() != want {
		t.Fatalf("index holds %d tags, want %d", x.Len(), want)
	}
	x.Remove(a)
	if x.Len() != 0 {
		t.Fatal("Remove left tags")
	}
}

// TestForgedAnnouncementsAreRefused: only the owner and its delegates
// write a channel's announcements; anything else fails verification.
func TestForgedAnnouncementsAreRefused(t *testing.T) {
	alice, mallory, bob := newPerson(t, "Alice"), newPerson(t, "Mallory"), newPerson(t, "Bob")
	owner := Owner(alice.id, "clinic")
	var o [32]byte
	copy(o[:], owner.Public().(ed25519.PublicKey))
	content := postText("Clinic open 8-12 tomorrow")
	good, err := Announce(o, owner, nil, p0, content, expiry, 8)
	if err != nil {
		t.Fatal(err)
	}
	a, err := VerifyAnnouncement(good)
	if err != nil || a.Owner != o || a.Signer != o || !bytes.Equal(a.Content, content) {
		t.Fatalf("owner's announcement: %+v, %v", a, err)
	}
	bobKey := Owner(bob.id, "delegate")
	d := Delegate(owner, bobKey.Public().(ed25519.PublicKey), expiry+3600)
	byBob, err := Announce(o, bobKey, &d, p0, content, expiry, 8)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := VerifyAnnouncement(byBob); err != nil || a.Signer != d.Key {
		t.Fatalf("delegate's announcement: %+v, %v", a, err)
	}
	// Mallory signs as herself under Alice's owner key.
	malKey := Owner(mallory.id, "x")
	if _, err := Announce(o, malKey, nil, p0, content, expiry, 8); err == nil {
		t.Fatal("Announce let a non-owner sign without a delegation")
	}
	forged := *good
	forged.Body = bytes.Clone(good.Body)
	copy(forged.Body[len(forged.Body)-64:], ed25519.Sign(malKey, announceSigned(good.Expiry, good.Tag, good.Body[:len(good.Body)-64])))
	// Mallory delegates to herself with her own key as "owner".
	selfD := Delegate(malKey, malKey.Public().(ed25519.PublicKey), expiry+3600)
	selfD.Owner = o
	selfDel, _ := Announce(o, malKey, &selfD, p0, content, expiry, 8)
	// Bob's delegation stretched past its expiry.
	late := *byBob
	late.Expiry = expiry + 7200
	edited := *good
	edited.Body = bytes.Clone(good.Body)
	edited.Body[40] ^= 1
	retagged := *good
	retagged.Tag[0] ^= 1
	for name, e := range map[string]*envelope.Envelope{"signed by a non-owner": &forged, "self-delegated": selfDel,
		"outliving its delegation": &late, "edited": &edited, "retagged": &retagged} {
		if e == nil {
			continue
		}
		if _, err := VerifyAnnouncement(e); err == nil {
			t.Errorf("announcement %s verified", name)
		}
	}
	if _, err := Announce(o, bobKey, &d, p0, content, expiry+7200, 8); err == nil {
		t.Fatal("a delegate announced past its delegation")
	}
}

// TestNearbyIsOneChannelForEveryone: anyone's Nearby reads anyone's post.
func TestNearbyIsOneChannelForEveryone(t *testing.T) {
	alice := newPerson(t, "Alice")
	c := Nearby()
	e, err := c.Seal(alice.id, p0, postText("anyone near the bridge?"), expiry, NearbyHops, newRand("nb"))
	if err != nil {
		t.Fatal(err)
	}
	x := NewChannelIndex()
	x.Update(Nearby(), p0)
	cc, p, ok := x.Lookup(e.Tag)
	if !ok || !cc.Nearby() || p != p0 {
		t.Fatal("Nearby post not recognised")
	}
	post, err := cc.Open(e, p)
	if err != nil || string(post.Content[1:]) != "anyone near the bridge?" {
		t.Fatalf("%+v %v", post, err)
	}
	if first, last := c.Watched(p0); first != p0-1 || last != p0+1 {
		t.Fatalf("Nearby watches %d..%d", first, last)
	}
}

var _ = keys.Period(0)
