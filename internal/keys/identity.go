// Package keys owns every key Grapevine derives: the user's identity
// (Ed25519 for signing, X25519 for key agreement), display names, the
// fingerprint and the safety number two people compare, invites with their
// one-time prekeys, the first-contact and re-key agreements (X25519 and
// ML-KEM-768), and the pairwise sessions: a Double Ratchet over
// precomputable tags whose epochs, period chains and message chains yield
// the tags, keys, prefixes and receipt secrets of pairwise envelopes.
//
// Every construction here is written down in SPEC.md ("Keys") with test
// vectors in testdata/vectors/keys.json.
package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Public is the public half of an identity: what contacts know of each other.
type Public struct {
	Sign ed25519.PublicKey // 32 bytes
	DH   [32]byte          // X25519
}

// Identity is a user's long-term key pair and chosen display name.
type Identity struct {
	Name string
	Sign ed25519.PrivateKey
	DH   *ecdh.PrivateKey
}

// NewIdentity generates a fresh identity from rand.
func NewIdentity(name string, rand io.Reader) (*Identity, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	_, sign, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("failed to generate signing key: %w", err)
	}
	dh, err := NewX25519(rand)
	if err != nil {
		return nil, fmt.Errorf("failed to generate key agreement key: %w", err)
	}
	return &Identity{Name: name, Sign: sign, DH: dh}, nil
}

// NewX25519 makes an X25519 private key from 32 bytes of rand. Since Go
// 1.26 ecdh's GenerateKey ignores its reader; the node's injected
// randomness must reach its keys, or the simulator cannot replay a run.
func NewX25519(rand io.Reader) (*ecdh.PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, err
	}
	defer clear(b[:])
	return ecdh.X25519().NewPrivateKey(b[:])
}

// IdentityFromSeeds rebuilds an identity from its stored secrets.
func IdentityFromSeeds(name string, signSeed, dhPriv []byte) (*Identity, error) {
	if len(signSeed) != ed25519.SeedSize {
		return nil, errors.New("invalid signing seed length")
	}
	dh, err := ecdh.X25519().NewPrivateKey(dhPriv)
	if err != nil {
		return nil, fmt.Errorf("invalid key agreement key: %w", err)
	}
	return &Identity{Name: name, Sign: ed25519.NewKeyFromSeed(signSeed), DH: dh}, nil
}

// Public returns the identity's public keys.
func (id *Identity) Public() Public {
	var p Public
	p.Sign = id.Sign.Public().(ed25519.PublicKey)
	copy(p.DH[:], id.DH.PublicKey().Bytes())
	return p
}

// Bytes is the 64-byte canonical encoding: Ed25519 key || X25519 key.
func (p Public) Bytes() []byte {
	b := make([]byte, 0, 64)
	b = append(b, p.Sign...)
	return append(b, p.DH[:]...)
}

// Equal reports whether two public identities are the same.
func (p Public) Equal(q Public) bool { return hmac.Equal(p.Bytes(), q.Bytes()) }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Fingerprint is the human-checkable name of a public identity: the first
// 20 bytes of SHA-256("grapevine fingerprint v1" || Ed25519 || X25519) in
// lower-case base32 (32 characters).
func (p Public) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("grapevine fingerprint v1"))
	h.Write(p.Bytes())
	return strings.ToLower(b32.EncodeToString(h.Sum(nil)[:20]))
}

// SafetyNumber is what two people read to each other to check that each has
// the other's real keys: 30 digits in six groups, the same on both sides.
func SafetyNumber(a, b Public) string {
	x, y := a.Bytes(), b.Bytes()
	if string(x) > string(y) {
		x, y = y, x
	}
	h := sha256.New()
	h.Write([]byte("grapevine safety number v1"))
	h.Write(x)
	h.Write(y)
	sum := h.Sum(nil)
	groups := make([]string, 6)
	for i := range groups {
		var v [8]byte
		copy(v[3:], sum[5*i:5*i+5])
		groups[i] = fmt.Sprintf("%05d", binary.BigEndian.Uint64(v[:])%100000)
	}
	return strings.Join(groups, " ")
}

// kdf is HKDF-SHA256 with no salt: every input it is given is already a
// uniformly random key or a concatenation of Diffie-Hellman outputs.
func kdf(secret []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, nil, info, n)
	if err != nil {
		panic(err) // only for n > 255*32, which no caller asks for
	}
	return out
}

// prf is HMAC-SHA256.
func prf(key []byte, msg ...[]byte) []byte {
	sum := prfSum(key, msg...)
	return sum[:]
}

// prfSum is HMAC-SHA256 (RFC 2104) computed on the stack when the key is
// at most a block and the message short, as every key and message here
// are: hmac.New allocates two hash states and two padded keys per call,
// and a node computes an HMAC per tag, per Hello proof and per chain step,
// hundreds per link (TestPrfIsHMAC pins it to crypto/hmac).
func prfSum(key []byte, msg ...[]byte) (sum [sha256.Size]byte) {
	const block = sha256.BlockSize
	n := 0
	for _, b := range msg {
		n += len(b)
	}
	var in [block + 2*block]byte // ipad key || message
	if len(key) > block || n > len(in)-block {
		m := hmac.New(sha256.New, key)
		m.Write(bytes.Join(msg, nil)) // a copy: msg stays on the caller's stack
		return [sha256.Size]byte(m.Sum(nil))
	}
	copy(in[:], key)
	for i := range block {
		in[i] ^= 0x36
	}
	off := block
	for _, b := range msg {
		off += copy(in[off:], b)
	}
	inner := sha256.Sum256(in[:off])
	var out [block + sha256.Size]byte // opad key || inner hash
	copy(out[:], key)
	for i := range block {
		out[i] ^= 0x5c
	}
	copy(out[block:], inner[:])
	return sha256.Sum256(out[:])
}
