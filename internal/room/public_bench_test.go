package room

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// BenchmarkChannelWireSize reports the bytes of a 100-character channel
// post, stamp included.
func BenchmarkChannelWireSize(b *testing.B) {
	c := testChannel(b, "#rescue-kathmandu", "", MinStampBits)
	alice := newPerson(b, "Alice")
	rnd := newRand("wire")
	var n int
	for b.Loop() {
		e, err := c.Seal(alice.id, p0, postText(strings.Repeat("x", 100)), expiry, 3, rnd)
		if err != nil {
			b.Fatal(err)
		}
		n = len(e.Marshal())
	}
	b.ReportMetric(float64(n), "bytes")
}

// BenchmarkMintDefault grinds stamps of the default difficulty: the
// expected cost is 2^DefaultStampBits hashes; ns/op is one post's.
func BenchmarkMintDefault(b *testing.B) {
	c := testChannel(b, "#rescue-kathmandu", "", MinStampBits)
	alice := newPerson(b, "Alice")
	rnd := newRand("mint")
	var tries uint64
	for b.Loop() {
		e, _ := c.Seal(alice.id, p0, postText(strings.Repeat("x", 100)), expiry, 3, rnd)
		n, err := Mint(context.Background(), e.Marshal(), DefaultStampBits)
		if err != nil {
			b.Fatal(err)
		}
		tries += n
	}
	b.ReportMetric(float64(tries)/float64(b.N), "hashes/op")
}

// BenchmarkStampHash is one try of the grind: one single-block SHA-256.
func BenchmarkStampHash(b *testing.B) {
	var id envelope.ID
	var nonce [8]byte
	for i := 0; b.Loop(); i++ {
		nonce[0] = byte(i)
		StampBits(id, nonce)
	}
}

// BenchmarkCheckStamp is a relay's whole check: the ID and the stamp.
func BenchmarkCheckStamp(b *testing.B) {
	c := testChannel(b, "#rescue-kathmandu", "", MinStampBits)
	alice := newPerson(b, "Alice")
	raw := sealPost(b, c, alice, strings.Repeat("x", 100), newRand("check"))
	for b.Loop() {
		if err := CheckStamp(raw, MinStampBits); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChannelRecognise looks up a post's tag among 1, 10 and 100
// joined channels (Nearby included in each).
func BenchmarkChannelRecognise(b *testing.B) {
	alice := newPerson(b, "Alice")
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			x := NewChannelIndex()
			x.Update(Nearby(), p0)
			var last *Channel
			for i := range n {
				// channelFrom skips Argon2id: recognition does not depend on it.
				last = channelFrom(fmt.Sprintf("#c%d", i), MinStampBits, []byte(fmt.Sprintf("seed %d", i)), false)
				x.Update(last, p0)
			}
			e, _ := last.Seal(alice.id, p0, postText("hi"), expiry, 3, newRand("rec"))
			b.ResetTimer()
			for b.Loop() {
				if _, _, ok := x.Lookup(e.Tag); !ok {
					b.Fatal("not recognised")
				}
			}
			b.ReportMetric(float64(x.Len()), "tags")
		})
	}
}

// BenchmarkJoinChannel is the Argon2id a join (and every guess at a
// channel's name) costs.
func BenchmarkJoinChannel(b *testing.B) {
	for b.Loop() {
		if _, err := JoinChannel("#rescue-kathmandu", "", 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostSealOpen seals and opens one 100-character post (no stamp).
func BenchmarkPostSealOpen(b *testing.B) {
	c := testChannel(b, "#rescue-kathmandu", "", MinStampBits)
	alice := newPerson(b, "Alice")
	rnd := newRand("so")
	for b.Loop() {
		e, _ := c.Seal(alice.id, p0, postText(strings.Repeat("x", 100)), expiry, 3, rnd)
		if _, err := c.Open(e, p0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAnnouncement is what a relay spends on an announcement
// by a delegate (two Ed25519 verifications).
func BenchmarkVerifyAnnouncement(b *testing.B) {
	alice := newPerson(b, "Alice")
	owner := Owner(alice.id, "clinic")
	var o [32]byte
	copy(o[:], owner[32:])
	d := Delegate(owner, owner.Public().(ed25519.PublicKey), expiry)
	e, _ := Announce(o, owner, &d, p0, postText(strings.Repeat("x", 100)), expiry, 8)
	for b.Loop() {
		if _, err := VerifyAnnouncement(e); err != nil {
			b.Fatal(err)
		}
	}
}
