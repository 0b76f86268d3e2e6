package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
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

// A LinkProver keys HMAC-SHA256 as crypto/hmac does for keys of any length
// (empty, shorter than a block, a block, longer ones hashed first).
func TestLinkProverKeyLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, kl := range []int{0, 1, 32, 63, 64, 65, 100} {
		key := make([]byte, kl)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		binding := make([]byte, 32)
		for i := range binding {
			binding[i] = byte(rng.Uint32())
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("IL"))
		m.Write(binding)
		if got, want := NewLinkProver(key).Proof(true, true, binding), [16]byte(m.Sum(nil)); got != want {
			t.Fatalf("key of %d: %x, want %x", kl, got, want)
		}
	}
}

// Several goroutines may prove with one LinkProver at once (it keeps no
// state of a proof); run with -race to see it read-only.
func TestLinkProverConcurrent(t *testing.T) {
	key := []byte("a recognition key of 32 bytes...")
	p := NewLinkProver(key)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			binding := make([]byte, 32)
			for i := range 500 {
				binding[0], binding[1] = byte(g), byte(i)
				dialled, low := i%2 == 0, (i+g)%3 == 0
				if got, want := p.Proof(dialled, low, binding), LinkProofWith(key, dialled, low, binding); got != want {
					errs <- fmt.Errorf("goroutine %d, proof %d: %x, want %x", g, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkLinkProver(b *testing.B) {
	p, binding := NewLinkProver(make([]byte, 32)), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		p.Proof(true, false, binding)
	}
}

// BenchmarkLinkProverHeap reports the live heap a LinkProver holds once it
// has made a proof: a node keeps one per recognition key of the period, and
// a simulated city keeps every node's.
func BenchmarkLinkProverHeap(b *testing.B) {
	const n = 10000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte{byte(i), byte(i >> 8), 31: 1}
	}
	provers := make([]*LinkProver, n)
	var before, after runtime.MemStats
	for b.Loop() {
		clear(provers)
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, key := range keys {
			provers[i] = NewLinkProver(key)
			provers[i].Proof(true, true, key)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/prover")
}
