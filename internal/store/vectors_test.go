package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// Regenerate with: go test ./internal/store/ -run TestVectors -update-vectors
var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/store-vectors.json")

const vectorsFile = "testdata/store-vectors.json"

// detBytes returns n deterministic bytes derived from label:
// SHA-256(label || be32(0)) || SHA-256(label || be32(1)) || ... truncated.
func detBytes(label string, n int) []byte {
	var out []byte
	for i := uint32(0); len(out) < n; i++ {
		h := sha256.New()
		h.Write([]byte(label))
		h.Write(binary.BigEndian.AppendUint32(nil, i))
		out = h.Sum(out)
	}
	return out[:n]
}

type vectorKDF struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

type storeVector struct {
	Name       string    `json:"name"`
	Passphrase string    `json:"passphrase_hex"`
	KDF        vectorKDF `json:"kdf"`
	Salt       string    `json:"salt_hex"`
	DEK        string    `json:"dek_hex"`
	WrapNonce  string    `json:"wrap_nonce_hex"`
	Collection string    `json:"collection"`
	Key        string    `json:"key_hex"`
	Value      string    `json:"value_hex"`
	Expiry     uint64    `json:"expiry_unix"`
	ValueNonce string    `json:"value_nonce_hex"`

	// Expected outputs.
	KEK      string `json:"kek_hex"`
	Meta     string `json:"meta_hex"`
	Wrapped  string `json:"wrapped_dek_hex"` // ciphertext||tag, meta bytes [67,115)
	SealKey  string `json:"seal_key_hex"`
	IndexKey string `json:"index_key_hex"`
	HKey     string `json:"hkey_hex"`
	IndexEnt string `json:"expiry_index_key_hex"`
	Sealed   string `json:"sealed_value_hex"`
}

type vectorInput struct {
	name       string
	passphrase []byte
	kdf        KDFParams
	collection string
	key        []byte
	value      []byte
	expiry     uint64
}

func vectorInputs() []vectorInput {
	return []vectorInput{
		{"basic", []byte("correct horse battery staple"), TestKDF, "contacts", []byte("bob"), []byte("SECRET-MARKER-alice"), 1 << 40},
		{"empty value, binary key", []byte("pässwörd"), KDFParams{Time: 2, MemoryKiB: 32, Threads: 2}, "envelopes", detBytes("envelope id", 32), nil, 1893456000},
		{"empty passphrase, long value", nil, KDFParams{Time: 1, MemoryKiB: 16, Threads: 1}, "seen", []byte{}, detBytes("long value", 300), 1},
	}
}

func computeVector(in vectorInput) (storeVector, error) {
	salt := detBytes(in.name+"/salt", saltSize)
	dek := detBytes(in.name+"/dek", keySize)
	wrapNonce := detBytes(in.name+"/wrap nonce", nonceSize)
	valueNonce := detBytes(in.name+"/value nonce", nonceSize)

	kek := deriveKEK(in.passphrase, salt, in.kdf)
	var s16 [saltSize]byte
	var n24 [nonceSize]byte
	copy(s16[:], salt)
	copy(n24[:], wrapNonce)
	m, err := newMeta(kek, dek, in.kdf, s16, n24)
	if err != nil {
		return storeVector{}, err
	}
	sealKey, idxKey, err := subkeys(dek)
	if err != nil {
		return storeVector{}, err
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		return storeVector{}, err
	}
	hk := hashKey(idxKey, in.collection, in.key)
	sealed := sealValue(aead, in.collection, hk, in.expiry, valueNonce, in.value)
	h := hex.EncodeToString
	return storeVector{
		Name:       in.name,
		Passphrase: h(in.passphrase),
		KDF:        vectorKDF{in.kdf.Time, in.kdf.MemoryKiB, in.kdf.Threads},
		Salt:       h(salt),
		DEK:        h(dek),
		WrapNonce:  h(wrapNonce),
		Collection: in.collection,
		Key:        h(in.key),
		Value:      h(in.value),
		Expiry:     in.expiry,
		ValueNonce: h(valueNonce),
		KEK:        h(kek),
		Meta:       h(marshalMeta(m)),
		Wrapped:    h(m.Wrapped[:]),
		SealKey:    h(sealKey),
		IndexKey:   h(idxKey),
		HKey:       h(hk),
		IndexEnt:   h(indexKey(in.expiry, hk, in.collection)),
		Sealed:     h(sealed),
	}, nil
}

func TestWriteVectors(t *testing.T) {
	if !*updateVectors {
		t.Skip("run with -update-vectors to regenerate " + vectorsFile)
	}
	var vs []storeVector
	for _, in := range vectorInputs() {
		v, err := computeVector(in)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	out, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(vectorsFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustHex(t *testing.T, field, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return b
}

// loadVectors reads the vector file.
func loadVectors(t *testing.T) []storeVector {
	t.Helper()
	raw, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []storeVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestVectors recomputes every vector in the file from its inputs alone.
func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			eq := func(field string, got []byte, wantHex string) {
				t.Helper()
				if want := mustHex(t, field, wantHex); !bytes.Equal(got, want) {
					t.Errorf("%s:\n got %x\nwant %x", field, got, want)
				}
			}
			kdf := KDFParams{v.KDF.Time, v.KDF.MemoryKiB, v.KDF.Threads}
			pass := mustHex(t, "passphrase", v.Passphrase)
			salt := mustHex(t, "salt", v.Salt)
			dek := mustHex(t, "dek", v.DEK)
			wrapNonce := mustHex(t, "wrap_nonce", v.WrapNonce)
			valueNonce := mustHex(t, "value_nonce", v.ValueNonce)
			key := mustHex(t, "key", v.Key)
			value := mustHex(t, "value", v.Value)

			kek := deriveKEK(pass, salt, kdf)
			eq("kek", kek, v.KEK)
			var s16 [saltSize]byte
			var n24 [nonceSize]byte
			copy(s16[:], salt)
			copy(n24[:], wrapNonce)
			m, err := newMeta(kek, dek, kdf, s16, n24)
			if err != nil {
				t.Fatal(err)
			}
			eq("meta", marshalMeta(m), v.Meta)
			eq("wrapped_dek", m.Wrapped[:], v.Wrapped)

			// The stored meta record parses and unwraps to the DEK.
			pm, err := parseMeta(mustHex(t, "meta", v.Meta))
			if err != nil {
				t.Fatal(err)
			}
			if pm.KDF != kdf || !bytes.Equal(pm.Salt[:], salt) {
				t.Errorf("parsed meta %+v", pm)
			}
			got, err := unwrapDEK(kek, pm)
			if err != nil {
				t.Fatal(err)
			}
			eq("unwrapped dek", got, v.DEK)
			if _, err := unwrapDEK(deriveKEK(append(pass, 'x'), salt, kdf), pm); err != ErrWrongPassphrase {
				t.Errorf("wrong passphrase unwrap: %v", err)
			}

			sealKey, idxKey, err := subkeys(dek)
			if err != nil {
				t.Fatal(err)
			}
			eq("seal_key", sealKey, v.SealKey)
			eq("index_key", idxKey, v.IndexKey)
			hk := hashKey(idxKey, v.Collection, key)
			eq("hkey", hk, v.HKey)
			eq("expiry_index_key", indexKey(v.Expiry, hk, v.Collection), v.IndexEnt)
			aead, err := chacha20poly1305.NewX(sealKey)
			if err != nil {
				t.Fatal(err)
			}
			eq("sealed_value", sealValue(aead, v.Collection, hk, v.Expiry, valueNonce, value), v.Sealed)

			pt, exp, err := openValue(aead, v.Collection, hk, mustHex(t, "sealed", v.Sealed))
			if err != nil {
				t.Fatal(err)
			}
			eq("opened value", pt, v.Value)
			if exp != v.Expiry {
				t.Errorf("opened expiry %d, want %d", exp, v.Expiry)
			}
			// Binding: the sealed value does not open under another
			// collection or key.
			if _, _, err := openValue(aead, v.Collection+"x", hk, mustHex(t, "sealed", v.Sealed)); err == nil {
				t.Error("sealed value opened under another collection")
			}
			if _, _, err := openValue(aead, v.Collection, hashKey(idxKey, v.Collection, append(key, 0)), mustHex(t, "sealed", v.Sealed)); err == nil {
				t.Error("sealed value opened under another key")
			}
		})
	}
}
