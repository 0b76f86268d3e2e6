package store

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func FuzzParseMeta(f *testing.F) {
	kek := detBytes("fuzz kek", keySize)
	dek := detBytes("fuzz dek", keySize)
	var salt [saltSize]byte
	var nonce [nonceSize]byte
	copy(salt[:], detBytes("fuzz salt", saltSize))
	copy(nonce[:], detBytes("fuzz nonce", nonceSize))
	m, err := newMeta(kek, dek, TestKDF, salt, nonce)
	if err != nil {
		f.Fatal(err)
	}
	good := marshalMeta(m)
	f.Add(good)
	f.Add(good[:metaSize-1])
	f.Add([]byte{})
	f.Add([]byte(metaMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeta(b)
		if err != nil {
			return
		}
		if out := marshalMeta(m); !bytes.Equal(out, b) {
			t.Fatalf("round trip mismatch:\n in %x\nout %x", b, out)
		}
		if err := m.KDF.validate(); err != nil {
			t.Fatalf("parsed params do not validate: %v", err)
		}
	})
}

func FuzzOpenValue(f *testing.F) {
	sealKey, indexKey, err := subkeys(detBytes("fuzz dek", keySize))
	if err != nil {
		f.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		f.Fatal(err)
	}
	const coll = "inbox"
	hk := hashKey(indexKey, coll, []byte("key"))
	good := sealValue(aead, coll, hk, 1<<33, detBytes("fuzz value nonce", nonceSize), []byte("hello"))
	f.Add(good)
	f.Add(good[:valueOverhead])
	f.Add(good[:valueOverhead-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, exp, err := openValue(aead, coll, hk, b)
		if err != nil {
			return
		}
		// Only a genuine sealed value may open: resealing with the same
		// nonce and expiry must reproduce the input exactly.
		if again := sealValue(aead, coll, hk, exp, b[8:8+nonceSize], v); !bytes.Equal(again, b) {
			t.Fatalf("opened a value that does not reseal to itself: %x", b)
		}
	})
}
