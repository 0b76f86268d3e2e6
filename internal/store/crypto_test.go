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

// A memory store keeps values clear (clearAEAD), laid out exactly as sealed
// ones: the same length for the same item in either store, and a value
// whose zero tag is damaged is refused like one that fails to authenticate.
func TestClearValuesKeepTheSealedLayout(t *testing.T) {
	key := detBytes("layout key", keySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 50, 51, 182, 1000} {
		hk := hashKey(detBytes("idx", keySize), "coll", []byte("k"))
		val := detBytes(fmt.Sprint("v", n), n)
		nonce := make([]byte, nonceSize)
		sealed := sealItem(aead, hk, day, day-7, "coll", nonce, val)
		kept := sealItem(clearAEAD{}, hk, day, day-7, "coll", nonce, val)
		if len(kept) != len(sealed) || !bytes.Equal(kept[:valuePrefix], sealed[:valuePrefix]) {
			t.Fatalf("value of %d: clear layout %d bytes, sealed %d", n, len(kept), len(sealed))
		}
		// The hkey follows the value in its allocation (putItem keeps it as
		// the key); a clear value has nothing else there.
		if tail := kept[len(kept):cap(kept)]; !bytes.Equal(tail, hk) {
			t.Fatalf("value of %d: %x after a clear value, want the hkey alone", n, tail)
		}
		if tail := sealed[len(sealed):cap(sealed)]; !bytes.Equal(tail[:hkeySize], hk) || len(tail) != hkeySize+8 {
			t.Fatalf("value of %d: %x after a sealed value, want the AD", n, tail)
		}
		p, err := openItem(clearAEAD{}, hk, kept)
		if err != nil || !bytes.Equal(p.value, val) || p.exact != day-7 || string(p.collection) != "coll" {
			t.Fatalf("value of %d: opened %q %d %x, %v", n, p.collection, p.exact, p.value, err)
		}
		if q, err := openClear(kept); err != nil || !bytes.Equal(q.value, val) || q.exact != p.exact {
			t.Fatalf("value of %d: openClear %x %d, %v", n, q.value, q.exact, err)
		}
		for _, i := range []int{len(kept) - 1, len(kept) - tagSize} {
			bad := bytes.Clone(kept)
			bad[i] ^= 1
			if _, err := openItem(clearAEAD{}, hk, bad); err == nil {
				t.Fatalf("value of %d: a damaged tag (byte %d) opens", n, i)
			}
			if _, err := openClear(bad); err == nil {
				t.Fatalf("value of %d: a damaged tag (byte %d) opens in place", n, i)
			}
		}
		if _, err := openItem(aead, hk, kept); err == nil {
			t.Fatalf("value of %d: a clear value opens under a real key", n)
		}
	}
}
