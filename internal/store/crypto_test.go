package store

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"testing"
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
