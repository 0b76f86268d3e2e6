package room

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// Stamps (SPEC §15.12). A stamped envelope (kinds 2 and 3) carries an
// 8-byte nonce that its ID does not cover; its stamp is
//
//	S = SHA-256("grapevine stamp" || ID || nonce)        15 + 32 + 8 = 55 bytes: one SHA-256 block
//
// and its difficulty is the number of leading zero bits of S. A relay
// computes the ID of every envelope anyway, so checking a stamp costs one
// more single-block hash and needs no key: it does not know, and need not
// know, the room. The stamp binds to every byte but the hop budget (the ID),
// so it cannot be moved to another envelope, and re-stamping an envelope
// gives the same ID (a duplicate).
const (
	stampLabel = "grapevine stamp"

	// DefaultStampBits is the difficulty of a channel that sets none, of
	// Nearby and of announcements, and the least a relay accepts by
	// default: 2^21 hashes expected, about 0.3 s on one core of the
	// development machine and about a second on a phone-class core
	// (SPEC §15.12, BenchmarkMintDefault).
	DefaultStampBits = 21
	// MinStampBits and MaxStampBits bound the difficulty a channel may set.
	MinStampBits = 8
	MaxStampBits = 32
)

// ErrStamp is returned for an envelope whose stamp is missing or too easy.
var ErrStamp = errors.New("stamp too weak")

// StampBits returns the difficulty of a stamped envelope's stamp: the
// leading zero bits of SHA-256("grapevine stamp" || id || nonce).
func StampBits(id envelope.ID, nonce [envelope.NonceSize]byte) int {
	var buf [len(stampLabel) + envelope.IDSize + envelope.NonceSize]byte
	copy(buf[:], stampLabel)
	copy(buf[len(stampLabel):], id[:])
	copy(buf[len(stampLabel)+envelope.IDSize:], nonce[:])
	return leadingZeros(sha256.Sum256(buf[:]))
}

func leadingZeros(h [32]byte) int {
	n := 0
	for i := 0; i < len(h); i += 8 {
		w := binary.BigEndian.Uint64(h[i:])
		n += bits.LeadingZeros64(w)
		if w != 0 {
			break
		}
	}
	return n
}

// CheckStamp checks the stamp of an encoded envelope against a minimum
// difficulty, as a relay does before storing it: it must be a stamped
// kind, and its stamp must have at least min leading zero bits.
func CheckStamp(raw []byte, min int) error {
	k, ok := envelope.KindOf(raw)
	if !ok || !k.Stamped() || len(raw) < envelope.StampedHeaderSize {
		return fmt.Errorf("%w: not a stamped envelope", ErrStamp)
	}
	var nonce [envelope.NonceSize]byte
	copy(nonce[:], raw[6:14])
	if got := StampBits(envelope.ComputeID(raw), nonce); got < min {
		return fmt.Errorf("%w: %d leading zero bits, %d required", ErrStamp, got, min)
	}
	return nil
}

// Mint grinds the nonce of an encoded stamped envelope, in place, until its
// stamp has at least bits leading zero bits. It returns how many hashes it
// took. The envelope's ID does not change. ctx may stop it.
func Mint(ctx context.Context, raw []byte, bits int) (tries uint64, err error) {
	k, ok := envelope.KindOf(raw)
	if !ok || !k.Stamped() || len(raw) < envelope.StampedHeaderSize {
		return 0, fmt.Errorf("failed to mint a stamp: not a stamped envelope")
	}
	if bits < 0 || bits > MaxStampBits {
		return 0, fmt.Errorf("failed to mint a stamp: difficulty %d outside 0..%d", bits, MaxStampBits)
	}
	id := envelope.ComputeID(raw)
	var buf [len(stampLabel) + envelope.IDSize + envelope.NonceSize]byte
	copy(buf[:], stampLabel)
	copy(buf[len(stampLabel):], id[:])
	tail := buf[len(stampLabel)+envelope.IDSize:]
	for n := uint64(0); ; n++ {
		if n&0xffff == 0xffff && ctx.Err() != nil {
			return n, fmt.Errorf("failed to mint a stamp: %w", ctx.Err())
		}
		binary.BigEndian.PutUint64(tail, n)
		if leadingZeros(sha256.Sum256(buf[:])) >= bits {
			copy(raw[6:14], tail)
			return n + 1, nil
		}
	}
}
