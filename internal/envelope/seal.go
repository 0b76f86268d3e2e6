package envelope

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// buckets are the sizes a sealed body is padded to before the AEAD adds its
// 16 bytes: powers of two and, from 96 on, one and a half times a power of
// two, so an observer learns the size to within a factor of 1.5 and padding
// costs at most a third of the body (a 100-character text with a ratchet
// prefix fits 192 rather than 256).
var buckets = [...]int{32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
	6144, 8192, 12288, 16384, 24576, 32768}

// Buckets returns the padded body sizes, smallest first.
func Buckets() []int { return buckets[:] }

// MaxBucket is the largest padded body.
const MaxBucket = 32768

// ErrOpen is returned when a body does not authenticate under the given key.
var ErrOpen = errors.New("envelope does not authenticate")

// paddedSize returns the bucket for content of n bytes when the first reserve
// bytes of the body are taken by a cleartext prefix.
func paddedSize(n, reserve int) (int, error) {
	need := reserve + uvarintLen(n) + n
	for _, b := range buckets {
		if need <= b {
			return b - reserve, nil
		}
	}
	return 0, fmt.Errorf("content of %d bytes exceeds the largest bucket (%d)", n, MaxBucket)
}

func uvarintLen(n int) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(n))
}

// Pad lays out uvarint(len(content)) || content || zero bytes, so that
// reserve+len(result) is a bucket size.
func Pad(content []byte, reserve int) ([]byte, error) {
	size, err := paddedSize(len(content), reserve)
	if err != nil {
		return nil, err
	}
	p := make([]byte, 0, size)
	p = binary.AppendUvarint(p, uint64(len(content)))
	p = append(p, content...)
	return p[:size], nil // the tail of a fresh slice is already zero
}

// Unpad reverses Pad and insists the padding is all zero, so a padded
// plaintext has exactly one valid reading.
func Unpad(p []byte) ([]byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, errors.New("invalid padding: bad length prefix")
	}
	if k != uvarintLen(int(n)) {
		return nil, errors.New("invalid padding: non-minimal length prefix")
	}
	content, pad := p[k:k+int(n)], p[k+int(n):]
	for _, c := range pad {
		if c != 0 {
			return nil, errors.New("invalid padding: non-zero byte")
		}
	}
	return content, nil
}

// Sealing is what a sender needs to build one sealed envelope.
type Sealing struct {
	Key    [32]byte         // the per-envelope AEAD key (never reused)
	Tag    [TagSize]byte    // what the recipient looks up
	Commit [CommitSize]byte // Commitment(receipt secret)
	Expiry uint32
	Hops   uint8
	Prefix []byte // cleartext bytes at the start of the body (first-contact envelopes); authenticated
}

// Seal pads content and encrypts it with ChaCha20-Poly1305 under s.Key with an
// all-zero nonce (each key seals exactly one envelope). The additional data is
// the header without the hop budget, followed by the prefix.
func Seal(s Sealing, content []byte) (*Envelope, error) {
	padded, err := Pad(content, len(s.Prefix))
	if err != nil {
		return nil, fmt.Errorf("failed to pad: %w", err)
	}
	e := &Envelope{Kind: KindSealed, Hops: s.Hops, Expiry: s.Expiry, Tag: s.Tag, Commit: s.Commit}
	aead, err := chacha20poly1305.New(s.Key[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	ad := append(associatedData(e), s.Prefix...)
	body := make([]byte, 0, len(s.Prefix)+len(padded)+Overhead)
	body = append(body, s.Prefix...)
	e.Body = aead.Seal(body, nonce[:], padded, ad)
	return e, nil
}

// Open authenticates and decrypts a sealed envelope whose body starts with
// prefixLen cleartext bytes, and returns the unpadded content.
func Open(key [32]byte, e *Envelope, prefixLen int) ([]byte, error) {
	if e.Kind != KindSealed || len(e.Body) < prefixLen+Overhead {
		return nil, ErrOpen
	}
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	ad := append(associatedData(e), e.Body[:prefixLen]...)
	padded, err := aead.Open(nil, nonce[:], e.Body[prefixLen:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	content, err := Unpad(padded)
	if err != nil {
		return nil, fmt.Errorf("failed to open envelope: %w", err)
	}
	return content, nil
}

const commitLabel = "grapevine receipt v1"

// Commitment is what an envelope carries in the clear about its receipt secret.
func Commitment(secret [SecretSize]byte) [CommitSize]byte {
	h := sha256.New()
	h.Write([]byte(commitLabel))
	h.Write(secret[:])
	var c [CommitSize]byte
	copy(c[:], h.Sum(nil))
	return c
}

// NewReceipt builds the receipt that purges target, revealing its secret. It
// expires with its target: afterwards there is nothing left to purge.
func NewReceipt(target ID, targetExpiry uint32, secret [SecretSize]byte, hops uint8) *Envelope {
	return &Envelope{Kind: KindReceipt, Hops: hops, Expiry: targetExpiry, Target: target, Secret: secret}
}

// Confirms reports whether receipt r proves delivery of the sealed envelope
// target, whose ID is targetID: r names it and reveals a secret matching its
// commitment. A forged receipt confirms nothing. Chunks (KindChunk) carry a
// commitment like sealed envelopes (SPEC §16.2).
func (r *Envelope) Confirms(targetID ID, target *Envelope) bool {
	if r.Kind != KindReceipt || (target.Kind != KindSealed && target.Kind != KindChunk) || r.Target != targetID {
		return false
	}
	c := Commitment(r.Secret)
	return subtle.ConstantTimeCompare(c[:], target.Commit[:]) == 1
}

// ConfirmsCommit is Confirms for a sender that kept only the commitment.
func (r *Envelope) ConfirmsCommit(targetID ID, commit [CommitSize]byte) bool {
	c := Commitment(r.Secret)
	return r.Kind == KindReceipt && r.Target == targetID && subtle.ConstantTimeCompare(c[:], commit[:]) == 1
}

// A first-contact envelope's body starts with a cleartext prefix: the masked
// ephemeral key, then the sender's identity (64 bytes of keys and the
// 64-byte signature that binds them) sealed under the identity key; the
// padded content follows under the first-contact seal key.
const (
	SenderSize      = 128
	IntroPrefixSize = 32 + SenderSize + Overhead
)

// SealIntro builds a first-contact envelope. The identity is sealed with the
// header and masked key as additional data; the content is sealed with the
// whole prefix as additional data (see Seal).
func SealIntro(s Sealing, maskedEK [32]byte, identityKey [32]byte, sender []byte, sealKey [32]byte, content []byte) (*Envelope, error) {
	if len(sender) != SenderSize {
		return nil, fmt.Errorf("sender identity is %d bytes, want %d", len(sender), SenderSize)
	}
	hdr := &Envelope{Kind: KindSealed, Expiry: s.Expiry, Tag: s.Tag, Commit: s.Commit}
	aead, err := chacha20poly1305.New(identityKey[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	ad := append(associatedData(hdr), maskedEK[:]...)
	s.Prefix = aead.Seal(maskedEK[:], nonce[:], sender, ad)
	s.Key = sealKey
	return Seal(s, content)
}

// IntroMaskedKey returns the masked ephemeral key of a first-contact envelope.
func IntroMaskedKey(e *Envelope) ([32]byte, error) {
	var k [32]byte
	if e.Kind != KindSealed || len(e.Body) < IntroPrefixSize+Overhead {
		return k, ErrOpen
	}
	copy(k[:], e.Body)
	return k, nil
}

// OpenIntroSender opens the sender identity of a first-contact envelope.
func OpenIntroSender(identityKey [32]byte, e *Envelope) ([]byte, error) {
	if e.Kind != KindSealed || len(e.Body) < IntroPrefixSize+Overhead {
		return nil, ErrOpen
	}
	aead, err := chacha20poly1305.New(identityKey[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	ad := append(associatedData(e), e.Body[:32]...)
	sender, err := aead.Open(nil, nonce[:], e.Body[32:IntroPrefixSize], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return sender, nil
}
