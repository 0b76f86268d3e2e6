package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// prfSum computes HMAC-SHA256 on the stack for short keys and messages and
// falls back to crypto/hmac otherwise: both must give crypto/hmac's answer,
// across the edges (a key of exactly a block and one more, messages that
// fill the stack buffer and one byte more, messages in several parts).
func TestPrfIsHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bytesOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, kl := range []int{0, 1, 16, 32, 63, 64, 65, 100} {
		for _, ml := range []int{0, 1, 3, 34, 55, 56, 64, 127, 128, 129, 300} {
			key := bytesOf(kl)
			msg := bytesOf(ml)
			m := hmac.New(sha256.New, key)
			m.Write(msg)
			want := m.Sum(nil)
			cut := rng.IntN(ml + 1)
			if got := prfSum(key, msg[:cut], nil, msg[cut:]); !bytes.Equal(got[:], want) {
				t.Fatalf("key of %d, message of %d cut at %d: %x, want %x", kl, ml, cut, got, want)
			}
			if got := prf(key, msg); !bytes.Equal(got, want) {
				t.Fatalf("prf, key of %d, message of %d: %x, want %x", kl, ml, got, want)
			}
		}
	}
}

func BenchmarkLinkProof(b *testing.B) {
	key, binding := make([]byte, 32), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		LinkProofWith(key, true, false, binding)
	}
}

// A LinkProver gives LinkProofWith's proof for its key, for either role and
// side, over and over (its HMAC state is reset between proofs).
func TestLinkProverIsLinkProofWith(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for k := range 4 {
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		p := NewLinkProver(key)
		for i := range 20 {
			binding := make([]byte, 32+k)
			for j := range binding {
				binding[j] = byte(rng.Uint32())
			}
			dialled, low := i%2 == 0, i%3 == 0
			if got, want := p.Proof(dialled, low, binding), LinkProofWith(key, dialled, low, binding); got != want {
				t.Fatalf("key %d, proof %d: %x, want %x", k, i, got, want)
			}
		}
	}
}

func BenchmarkLinkProver(b *testing.B) {
	p, binding := NewLinkProver(make([]byte, 32)), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		p.Proof(true, false, binding)
	}
}
