package store

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The pooled keyHasher the Tx code uses must give exactly hashKey, which
// the vectors pin down.
func TestKeyHasherMatchesHashKey(t *testing.T) {
	for _, v := range loadVectors(t) {
		var kh keyHasher
		kh.init(mustHex(t, "index_key", v.IndexKey))
		if hk := kh.hash(v.Collection, mustHex(t, "key", v.Key)); hex.EncodeToString(hk[:]) != v.HKey {
			got := hex.EncodeToString(hk[:])
			t.Errorf("%s: hkey %s, want %s", v.Name, got, v.HKey)
		}
	}

	idx := detBytes("key hasher index key", keySize)
	var kh keyHasher
	kh.init(idx)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for i := range 2000 {
				n := rng.IntN(100)
				if i%500 == 0 {
					n = maxPooledKeyBuf + 1 // not returned to the pool
				}
				key := detBytes(string(rune(i)), n)
				coll := []string{"a", "envelopes", "x\x00y"}[rng.IntN(3)]
				if got, want := kh.hash(coll, key), hashKey(idx, coll, key); !bytes.Equal(got[:], want) {
					t.Errorf("hash(%q, %x) = %x, want %x", coll, key, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// peekItem decrypts the header with the raw XChaCha20 stream; it must read
// what openItem reads from every value sealItem makes, whatever the
// collection name's length (headers of one and of several blocks).
func TestPeekMatchesOpen(t *testing.T) {
	key := detBytes("peek key", keySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	var buf peekBuf
	for _, l := range []int{1, 9, 50, 51, 52, 60, 100, 255} {
		for _, n := range []int{0, 1, 54, 182, 1000} {
			coll := strings.Repeat("c", l)
			hk := hashKey(detBytes("idx", keySize), coll, []byte("k"))
			sealed := sealItem(aead, hk, 12345*day, 12345*day-7, coll, detBytes(fmt.Sprint(l, n), nonceSize), detBytes("v", n))
			p, err := openItem(aead, hk, sealed)
			if err != nil {
				t.Fatal(err)
			}
			c, exact, ok := peekItem(key, sealed, &buf)
			if !ok || string(c) != coll || exact != p.exact || exact != 12345*day-7 {
				t.Fatalf("collection of %d, value of %d: peek %q %d %v", l, n, c, exact, ok)
			}
			if _, _, ok := peekItem(detBytes("another key", keySize), sealed, &buf); ok {
				t.Fatalf("collection of %d, value of %d: a header peeked under another key parses", l, n)
			}
		}
	}
}

// A memory store keeps a value as the plaintext a file store seals, without
// its padding (keepItem): it opens to the same item, and counts for exactly
// the length of the sealed value (keptSize), whatever the lengths of value
// and collection name, size bucket boundaries included.
func TestKeptValuesMatchSealed(t *testing.T) {
	key := detBytes("layout key", keySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"c", "envelopes", strings.Repeat("x", 255)} {
		for _, n := range []int{0, 1, 50, 51, 52, 182, 1000, 4096} {
			hk := hashKey(detBytes("idx", keySize), coll, []byte("k"))
			val := detBytes(fmt.Sprint("v", n), n)
			nonce := detBytes(fmt.Sprint("nonce", n), nonceSize)
			sealed := sealItem(aead, hk, day, day-7, coll, nonce, val)
			kept := keepItem(hk, day-7, coll, val)
			if keptSize(len(kept)) != len(sealed) {
				t.Fatalf("%q, value of %d: kept %d bytes count for %d, sealed %d", coll, n, len(kept), keptSize(len(kept)), len(sealed))
			}
			ad := valueAD(hk, day)
			pt, err := aead.Open(nil, nonce, sealed[valuePrefix:], ad[:])
			if err != nil || !bytes.Equal(kept, pt[:len(kept)]) || !bytes.Equal(pt[len(kept):], make([]byte, len(pt)-len(kept))) {
				t.Fatalf("%q, value of %d: kept %x is not the sealed plaintext %x without its padding (%v)", coll, n, kept, pt, err)
			}
			// The hkey follows the value in its allocation (putKept keeps
			// it as the key), and nothing else does.
			if tail := kept[len(kept):cap(kept)]; !bytes.Equal(tail, hk) {
				t.Fatalf("%q, value of %d: %x after a kept value, want the hkey alone", coll, n, tail)
			}
			want, err := openItem(aead, hk, sealed)
			if err != nil {
				t.Fatal(err)
			}
			p, err := openKept(kept)
			if err != nil || !bytes.Equal(p.value, want.value) || p.exact != want.exact || !bytes.Equal(p.collection, want.collection) {
				t.Fatalf("%q, value of %d: opened %q %d %x, %v; sealed opens to %q %d %x", coll, n, p.collection, p.exact, p.value, err, want.collection, want.exact, want.value)
			}
			for _, bad := range [][]byte{kept[:len(kept)-1], append(bytes.Clone(kept), 0), kept[:plainFixed+len(coll)-1]} {
				if _, err := openKept(bad); err == nil {
					t.Fatalf("%q, value of %d: a kept value of %d bytes instead of %d opens", coll, n, len(bad), len(kept))
				}
			}
		}
	}
}
