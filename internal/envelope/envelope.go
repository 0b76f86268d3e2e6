// Package envelope owns the sealed unit that the mesh carries: its binary layout,
// its content-addressed ID, plaintext padding, the AEAD that seals the padded
// plaintext, and the delivery receipts that purge delivered envelopes.
//
// The package knows nothing about keys or contacts: callers hand it 32-byte keys
// and 16-byte tags derived elsewhere (package keys). See SPEC.md, "Envelopes".
package envelope

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Wire layout of version 2 (all integers big-endian):
//
//	sealed envelope:
//	  0      1   version<<4 | kind        (0x20)
//	  1      1   hop budget               (mutable: not covered by the ID or the AEAD)
//	  2      4   expiry, Unix seconds
//	  6     16   tag                      (recognisable only by the recipient)
//	  22    16   receipt commitment       SHA-256("grapevine receipt v1" || secret)[:16]
//	  38     n   body                     AEAD ciphertext, n = padded size + 16
//
//	chunk of an attachment: the sealed layout with 0x24, exactly ChunkSize bytes
//
//	receipt:
//	  0      1   version<<4 | kind        (0x21)
//	  1      1   hop budget
//	  2      4   expiry, Unix seconds     (the expiry of the envelope it purges)
//	  6     32   target envelope ID
//	  38    16   receipt secret
const (
	Version = 2

	TagSize     = 16
	CommitSize  = 16
	SecretSize  = 16
	IDSize      = 32
	HeaderSize  = 38 // sealed envelope header, before the body
	ReceiptSize = 54
	Overhead    = 16 // the AEAD's authentication tag

	// MaxSize bounds any envelope on any wire or disk; decoders refuse larger input.
	MaxSize = 65536
)

// Kind says how an envelope is laid out after its common 6-byte prefix.
type Kind uint8

const (
	KindSealed  Kind = 0
	KindReceipt Kind = 1
	// KindPublic is a stamped post of a public room (a channel or Nearby,
	// SPEC §15.11): relays check its stamp before storing it.
	KindPublic Kind = 2
	// KindAnnounce is a stamped, owner-signed announcement (SPEC §15.14):
	// relays check its stamp and its signatures before storing it.
	KindAnnounce Kind = 3
	// KindChunk is one chunk of an attachment (SPEC §16): the sealed
	// layout, always exactly ChunkSize bytes, so relays can rank and count
	// chunks apart from texts without learning anything else.
	KindChunk Kind = 4
)

// ChunkSize is the exact size of every chunk envelope (SPEC §16.2): with the
// store's 23 bytes of record overhead it fits a 32 KiB store bucket.
const ChunkSize = 32704

// Stamped envelopes (kinds 2 and 3) carry an 8-byte stamp nonce after the
// expiry and no receipt commitment:
//
//	0      1   version<<4 | kind        (0x22 or 0x23)
//	1      1   hop budget
//	2      4   expiry
//	6      8   stamp nonce              (not covered by the ID, like the hop budget)
//	14    16   tag
//	30     n   body (n >= 16)
const (
	NonceSize         = 8
	StampedHeaderSize = 30
)

// Stamped reports whether envelopes of kind k carry a stamp.
func (k Kind) Stamped() bool { return k == KindPublic || k == KindAnnounce }

func (k Kind) String() string {
	switch k {
	case KindSealed:
		return "sealed"
	case KindReceipt:
		return "receipt"
	case KindPublic:
		return "public"
	case KindAnnounce:
		return "announce"
	case KindChunk:
		return "chunk"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ID is the content address of an envelope: SHA-256 over every byte but the hop budget.
type ID [IDSize]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads the 64-hex-digit form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != IDSize {
		return id, fmt.Errorf("invalid envelope ID %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// Envelope is a decoded envelope. Fields that do not belong to its Kind are zero.
type Envelope struct {
	Kind   Kind
	Hops   uint8
	Expiry uint32 // Unix seconds

	// KindSealed
	Tag    [TagSize]byte
	Commit [CommitSize]byte
	Body   []byte

	// KindPublic and KindAnnounce (with Tag and Body)
	Nonce [NonceSize]byte

	// KindReceipt
	Target ID
	Secret [SecretSize]byte
}

// Errors returned by Parse, wrapped with detail.
var (
	ErrTooShort = errors.New("envelope too short")
	ErrTooLarge = errors.New("envelope too large")
	ErrVersion  = errors.New("unsupported envelope version")
	ErrKind     = errors.New("unknown envelope kind")
)

// ExpiresAt returns the expiry as a time.
func (e *Envelope) ExpiresAt() time.Time { return time.Unix(int64(e.Expiry), 0).UTC() }

// Expired reports whether the envelope is past its expiry at now.
func (e *Envelope) Expired(now time.Time) bool { return now.Unix() >= int64(e.Expiry) }

// Size is the encoded length in bytes.
func (e *Envelope) Size() int {
	if e.Kind == KindReceipt {
		return ReceiptSize
	}
	if e.Kind.Stamped() {
		return StampedHeaderSize + len(e.Body)
	}
	return HeaderSize + len(e.Body)
}

// Marshal encodes the envelope in its wire layout.
func (e *Envelope) Marshal() []byte {
	b := make([]byte, 0, e.Size())
	b = append(b, Version<<4|byte(e.Kind), e.Hops)
	b = binary.BigEndian.AppendUint32(b, e.Expiry)
	switch e.Kind {
	case KindReceipt:
		b = append(b, e.Target[:]...)
		b = append(b, e.Secret[:]...)
	case KindPublic, KindAnnounce:
		b = append(b, e.Nonce[:]...)
		b = append(b, e.Tag[:]...)
		b = append(b, e.Body...)
	default:
		b = append(b, e.Tag[:]...)
		b = append(b, e.Commit[:]...)
		b = append(b, e.Body...)
	}
	return b
}

// Parse decodes and strictly validates one envelope. The Body of the result
// aliases b. Parse never interprets the body.
func Parse(b []byte) (*Envelope, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	if len(b) < 6 {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooShort, len(b))
	}
	if v := b[0] >> 4; v != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	e := &Envelope{Kind: Kind(b[0] & 0x0f), Hops: b[1], Expiry: binary.BigEndian.Uint32(b[2:6])}
	switch e.Kind {
	case KindSealed:
		if len(b) < HeaderSize+Overhead {
			return nil, fmt.Errorf("%w: sealed envelope of %d bytes, minimum %d", ErrTooShort, len(b), HeaderSize+Overhead)
		}
		copy(e.Tag[:], b[6:22])
		copy(e.Commit[:], b[22:38])
		e.Body = b[HeaderSize:]
	case KindChunk:
		if len(b) != ChunkSize {
			return nil, fmt.Errorf("invalid chunk envelope: %d bytes, want %d", len(b), ChunkSize)
		}
		copy(e.Tag[:], b[6:22])
		copy(e.Commit[:], b[22:38])
		e.Body = b[HeaderSize:]
	case KindReceipt:
		if len(b) != ReceiptSize {
			return nil, fmt.Errorf("invalid receipt: %d bytes, want %d", len(b), ReceiptSize)
		}
		copy(e.Target[:], b[6:38])
		copy(e.Secret[:], b[38:54])
	case KindPublic, KindAnnounce:
		if len(b) < StampedHeaderSize+Overhead {
			return nil, fmt.Errorf("%w: %s envelope of %d bytes, minimum %d", ErrTooShort, e.Kind, len(b), StampedHeaderSize+Overhead)
		}
		copy(e.Nonce[:], b[6:14])
		copy(e.Tag[:], b[14:30])
		e.Body = b[StampedHeaderSize:]
	default:
		return nil, fmt.Errorf("%w: %d", ErrKind, e.Kind)
	}
	return e, nil
}

// KindOf returns the kind an encoded envelope says it is, without parsing
// (or allocating) the rest; ok is false if it is too short or of another
// version. Parse still decides whether the envelope is valid.
func KindOf(b []byte) (k Kind, ok bool) {
	if len(b) < 6 || b[0]>>4 != Version {
		return 0, false
	}
	return Kind(b[0] & 0x0f), true
}

// ComputeID returns the ID of an encoded envelope: SHA-256 of every byte except
// byte 1, the hop budget, which relays change — and, for a stamped envelope,
// except its stamp nonce (bytes 6..14), which the stamp is ground over
// (SPEC §15.12), so the stamp binds to the ID and one hash checks it.
func ComputeID(raw []byte) ID {
	h := sha256.New()
	h.Write(raw[:1])
	if k := Kind(raw[0] & 0x0f); k.Stamped() && len(raw) >= StampedHeaderSize {
		h.Write(raw[2:6])
		h.Write(raw[14:])
	} else {
		h.Write(raw[2:])
	}
	var id ID
	h.Sum(id[:0])
	return id
}

// ID returns the envelope's content address.
func (e *Envelope) ID() ID { return ComputeID(e.Marshal()) }

// SetHops rewrites the hop budget of an encoded envelope in place; the ID is unchanged.
func SetHops(raw []byte, hops uint8) { raw[1] = hops }

// associatedData is what the AEAD authenticates besides the body: the header
// without the mutable hop budget.
func associatedData(e *Envelope) []byte {
	ad := make([]byte, 0, HeaderSize-1)
	ad = append(ad, Version<<4|byte(KindSealed))
	ad = binary.BigEndian.AppendUint32(ad, e.Expiry)
	ad = append(ad, e.Tag[:]...)
	ad = append(ad, e.Commit[:]...)
	return ad
}
