package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

// Regenerate with: go test ./internal/store/ -run TestVectors -update

const vectorsFile = "testdata/store-vectors.json"

// detBytes returns n deterministic bytes derived from label (testkit.Stream).
func detBytes(label string, n int) []byte { return testkit.Stream(label, n) }

type vectorKDF struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// storeVector is one test vector: inputs, then what they must give.
type storeVector struct {
	Name       string    `json:"name"`
	Passphrase string    `json:"passphrase_hex"`
	KDF        vectorKDF `json:"kdf"`
	Salt       string    `json:"salt_hex"`
	DEK        string    `json:"dek_hex"`
	StoreID    string    `json:"store_id_hex"`
	WrapNonce  string    `json:"wrap_nonce_hex"`
	TableNonce string    `json:"table_nonce_hex"`
	Seq        uint64    `json:"slot_seq"`
	Collection string    `json:"collection"`
	Key        string    `json:"key_hex"`
	Value      string    `json:"value_hex"`
	Expiry     uint64    `json:"exact_expiry_unix"`
	Now        uint64    `json:"now_unix"`
	Jitter     uint64    `json:"jitter"`
	ValueNonce string    `json:"value_nonce_hex"`
	// ItemKey is set for an item of an erasable collection: its value is
	// sealed under it and the slot's table holds it.
	ItemKey string `json:"item_key_hex,omitempty"`

	// Expected outputs.
	KEK       string `json:"kek_hex"`
	Wrapped   string `json:"wrapped_dek_hex"` // slot bytes [93,141)
	SealKey   string `json:"seal_key_hex"`
	IndexKey  string `json:"index_key_hex"`
	TableKey  string `json:"table_key_hex"`
	HKey      string `json:"hkey_hex"`
	Coarse    uint64 `json:"coarse_expiry_unix"`
	IndexEnt  string `json:"expiry_index_key_hex"`
	Plaintext string `json:"plaintext_hex"`
	Sealed    string `json:"sealed_value_hex"`
	NextKey   string `json:"next_item_key_hex,omitempty"`
	Meta      string `json:"db_meta_record_hex"`
	Slot      string `json:"key_file_slot_hex"` // one 8 KiB slot; the file is two copies
}

type vectorInput struct {
	name       string
	passphrase []byte
	kdf        KDFParams
	seq        uint64
	collection string
	key        []byte
	value      []byte
	expiry     uint64
	now        uint64
	jitter     uint64
	erasable   bool
}

func vectorInputs() []vectorInput {
	const y2030 = 1893456000
	return []vectorInput{
		{"erasable contact, forever", []byte("correct horse battery staple"), TestKDF(), 1, "contacts", []byte("bob"), []byte("SECRET-MARKER-alice"), 1 << 40, y2030, 12345, true},
		{"envelope of 54 bytes, binary key", []byte("pässwörd"), KDFParams{Time: 2, MemoryKiB: 32, Threads: 2}, 7, "envelopes", detBytes("envelope id", 32), detBytes("envelope", 54), y2030 + 3*day + 17, y2030 + 1000, 0, false},
		{"empty passphrase, long value, expired", nil, KDFParams{Time: 1, MemoryKiB: 16, Threads: 1}, 1 << 40, "seen", []byte{}, detBytes("long value", 300), 1, 1700000000, day - 1, false},
	}
}

// vectorSlot builds the slot a vector's key file holds.
func vectorSlot(in vectorInput, kek, dek []byte, table cipherAEAD, keys itemKeys) (*keySlot, error) {
	sl := &keySlot{size: slotMinSize, seq: in.seq, kdf: in.kdf}
	copy(sl.salt[:], detBytes(in.name+"/salt", saltSize))
	copy(sl.id[:], detBytes(in.name+"/store id", storeIDSize))
	copy(sl.wrapNonce[:], detBytes(in.name+"/wrap nonce", nonceSize))
	copy(sl.tableNonce[:], detBytes(in.name+"/table nonce", nonceSize))
	if err := sl.wrapDEK(kek, dek); err != nil {
		return nil, err
	}
	sl.sealTable(table, keys)
	return sl, nil
}

func computeVector(in vectorInput) (storeVector, error) {
	h := hex.EncodeToString
	dek := detBytes(in.name+"/dek", keySize)
	valueNonce := detBytes(in.name+"/value nonce", nonceSize)
	salt := detBytes(in.name+"/salt", saltSize)
	kek := deriveKEK(in.passphrase, salt, in.kdf)
	sk, err := subkeys(dek)
	if err != nil {
		return storeVector{}, err
	}
	table, err := chacha20poly1305.NewX(sk.table)
	if err != nil {
		return storeVector{}, err
	}
	hk := hkey(hashKey(sk.index, in.collection, in.key))
	keys := itemKeys{}
	aeadKey := sk.seal
	v := storeVector{}
	if in.erasable {
		ik := [keySize]byte(detBytes(in.name+"/item key", keySize))
		keys[hk] = ik
		aeadKey = ik[:]
		next := nextItemKey(ik)
		v.ItemKey, v.NextKey = h(ik[:]), h(next[:])
	}
	sl, err := vectorSlot(in, kek, dek, table, keys)
	if err != nil {
		return storeVector{}, err
	}
	aead, err := chacha20poly1305.NewX(aeadKey)
	if err != nil {
		return storeVector{}, err
	}
	coarse := coarseExpiry(in.expiry, in.now, in.jitter)
	sealed := sealItem(aead, hk[:], coarse, in.expiry, in.collection, valueNonce, in.value)
	pt, err := aead.Open(nil, valueNonce, sealed[valuePrefix:], func() []byte { ad := valueAD(hk[:], coarse); return ad[:] }())
	if err != nil {
		return storeVector{}, err
	}
	v.Name, v.Passphrase = in.name, h(in.passphrase)
	v.KDF = vectorKDF{in.kdf.Time, in.kdf.MemoryKiB, in.kdf.Threads}
	v.Salt, v.DEK, v.StoreID = h(salt), h(dek), h(sl.id[:])
	v.WrapNonce, v.TableNonce, v.Seq = h(sl.wrapNonce[:]), h(sl.tableNonce[:]), in.seq
	v.Collection, v.Key, v.Value = in.collection, h(in.key), h(in.value)
	v.Expiry, v.Now, v.Jitter, v.ValueNonce = in.expiry, in.now, in.jitter, h(valueNonce)
	v.KEK, v.Wrapped = h(kek), h(sl.wrapped[:])
	v.SealKey, v.IndexKey, v.TableKey = h(sk.seal), h(sk.index), h(sk.table)
	v.HKey, v.Coarse, v.IndexEnt = h(hk[:]), coarse, h(indexKey(coarse, hk[:]))
	v.Plaintext, v.Sealed = h(pt), h(sealed)
	v.Meta = h(append([]byte(storeMagic), sl.id[:]...))
	v.Slot = h(sl.marshal())
	return v, nil
}

func mustHex(t *testing.T, field, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return b
}

// loadVectors reads the vector file; with -update (testkit.Update) it
// writes it from the implementation first.
func loadVectors(t *testing.T) []storeVector {
	t.Helper()
	return testkit.Vectors(t, vectorsFile, func() []storeVector {
		var vs []storeVector
		for _, in := range vectorInputs() {
			v, err := computeVector(in)
			if err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		return vs
	})
}

// TestVectors recomputes every vector in the file from its inputs alone,
// then reads the expected bytes back as Open and Get would.
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
			in := vectorInput{
				name: v.Name, passphrase: mustHex(t, "passphrase", v.Passphrase),
				kdf: KDFParams{v.KDF.Time, v.KDF.MemoryKiB, v.KDF.Threads}, seq: v.Seq,
				collection: v.Collection, key: mustHex(t, "key", v.Key), value: mustHex(t, "value", v.Value),
				expiry: v.Expiry, now: v.Now, jitter: v.Jitter, erasable: v.ItemKey != "",
			}
			// The inputs are the ones the labels give.
			for field, pair := range map[string][2]string{
				"salt":        {v.Salt, hex.EncodeToString(detBytes(v.Name+"/salt", saltSize))},
				"dek":         {v.DEK, hex.EncodeToString(detBytes(v.Name+"/dek", keySize))},
				"value nonce": {v.ValueNonce, hex.EncodeToString(detBytes(v.Name+"/value nonce", nonceSize))},
			} {
				if pair[0] != pair[1] {
					t.Fatalf("%s input %s is not detBytes of its label", field, pair[0])
				}
			}
			got, err := computeVector(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ name, got, want string }{
				{"kek", got.KEK, v.KEK}, {"wrapped_dek", got.Wrapped, v.Wrapped},
				{"seal_key", got.SealKey, v.SealKey}, {"index_key", got.IndexKey, v.IndexKey},
				{"table_key", got.TableKey, v.TableKey}, {"hkey", got.HKey, v.HKey},
				{"expiry_index_key", got.IndexEnt, v.IndexEnt}, {"plaintext", got.Plaintext, v.Plaintext},
				{"sealed_value", got.Sealed, v.Sealed}, {"next_item_key", got.NextKey, v.NextKey},
				{"db_meta_record", got.Meta, v.Meta}, {"key_file_slot", got.Slot, v.Slot},
				{"store_id", got.StoreID, v.StoreID}, {"table_nonce", got.TableNonce, v.TableNonce},
			} {
				if f.got != f.want {
					t.Errorf("%s:\n got %s\nwant %s", f.name, f.got, f.want)
				}
			}
			if got.Coarse != v.Coarse {
				t.Errorf("coarse expiry %d, want %d", got.Coarse, v.Coarse)
			}
			checkVectorReads(t, v, eq)
		})
	}
}

// checkVectorReads parses the expected key file and value as Open and Get
// do, and checks what binds them.
func checkVectorReads(t *testing.T, v storeVector, eq func(string, []byte, string)) {
	t.Helper()
	slot := mustHex(t, "slot", v.Slot)
	best, other, lay, err := scanKeyFile(append(bytes.Clone(slot), slot...))
	if err != nil {
		t.Fatal(err)
	}
	if other == nil || lay.size != slotMinSize || !lay.pos[0].valid || !lay.pos[1].valid || best.seq != v.Seq {
		t.Fatalf("two copies of the slot: layout %+v, seq %d", lay, best.seq)
	}
	kek := mustHex(t, "kek", v.KEK)
	dek, err := best.unwrapDEK(kek)
	if err != nil {
		t.Fatal(err)
	}
	eq("unwrapped dek", dek, v.DEK)
	if _, err := best.unwrapDEK(detBytes("not the kek", keySize)); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("unwrap under another KEK: %v", err)
	}
	table, err := chacha20poly1305.NewX(mustHex(t, "table key", v.TableKey))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := best.openTable(table)
	if err != nil {
		t.Fatal(err)
	}
	hk := hkey(mustHex(t, "hkey", v.HKey))
	aeadKey := mustHex(t, "seal key", v.SealKey)
	if v.ItemKey != "" {
		ik, ok := keys[hk]
		if len(keys) != 1 || !ok {
			t.Fatalf("table %x, want the item's key only", keys)
		}
		eq("table entry", ik[:], v.ItemKey)
		aeadKey = ik[:]
	} else if len(keys) != 0 {
		t.Fatalf("table holds %d keys, want none", len(keys))
	}
	aead, err := chacha20poly1305.NewX(aeadKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustHex(t, "sealed", v.Sealed)
	p, err := openItem(aead, hk[:], sealed)
	if err != nil {
		t.Fatal(err)
	}
	eq("opened value", p.value, v.Value)
	if string(p.collection) != v.Collection || p.exact != v.Expiry {
		t.Errorf("opened %q expiring %d", p.collection, p.exact)
	}
	var buf peekBuf
	if coll, exact, ok := peekItem(aeadKey, sealed, &buf); !ok || string(coll) != v.Collection || exact != v.Expiry {
		t.Errorf("peek: %q %d %v", coll, exact, ok)
	}
	// Binding: another hkey, another clear expiry or another key fails.
	other16 := hk
	other16[0] ^= 1
	if _, err := openItem(aead, other16[:], sealed); err == nil {
		t.Error("sealed value opened under another hkey")
	}
	moved := bytes.Clone(sealed)
	binary.BigEndian.PutUint64(moved, v.Coarse+day)
	if _, err := openItem(aead, hk[:], moved); err == nil {
		t.Error("sealed value opened with another coarse expiry")
	}
	if v.ItemKey != "" {
		seal, _ := chacha20poly1305.NewX(mustHex(t, "seal key", v.SealKey))
		if _, err := openItem(seal, hk[:], sealed); err == nil {
			t.Error("an erasable value opened under the seal key")
		}
	}
}
