// Package room owns the cryptographic and format core of rooms (SPEC §15):
// a private group's identity, the admin-signed membership changes and the
// rule that orders them so every member converges on one member list, the
// per-epoch group secret and the welcome that carries it over a pairwise
// session, the per-member sender chains that give every group message its
// own key and tag, and sealing and opening a group message as an ordinary
// sealed envelope (package envelope), one envelope for all members.
//
// The package keeps state in memory and draws no randomness of its own: the
// caller (package node) stores what it returns and hands it randomness and
// the trusted period. Channels, Nearby and announcements are meant to reuse
// the same envelope framing with other key schedules.
package room

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// Limits. Every one bounds memory or work a hostile member or relay could
// otherwise make unbounded.
const (
	// MaxMembers bounds a group's member list (issue 15 asks for 250).
	MaxMembers = 1000
	// MaxChanges bounds the changes a room keeps, pending ones included.
	MaxChanges = 4096
	// MaxPending bounds changes held because their parent has not arrived.
	MaxPending = 256
	// Window is how many counters past the highest opened a receiver
	// watches for each sender of an epoch: how far one envelope may move a
	// sender's chain (one further on is recognised once the gap closes).
	Window = 8
	// MaxSkipped bounds the skipped keys one epoch keeps (the oldest go
	// first).
	MaxSkipped = 512
	// MaxEpochs is how many epochs a member keeps open for late messages.
	MaxEpochs = 4
	// Retention is how many periods an epoch's message keys are kept:
	// a receiver moves its period chains to now - Retention.
	Retention = 8
)

// Errors a caller can tell apart with errors.Is; each is wrapped with
// detail naming what is wrong.
var (
	ErrMalformed = errors.New("malformed")
	ErrOtherRoom = errors.New("belongs to another room")
	ErrDuplicate = errors.New("already known")
	ErrNotAdmin  = errors.New("signer is not an admin")
	ErrParent    = errors.New("wrong parent")
	ErrSignature = errors.New("signature does not verify")
	ErrInvalid   = errors.New("invalid change")
	ErrFull      = errors.New("room full")
	ErrUnknown   = errors.New("tag not expected")
	ErrReplay    = errors.New("envelope already opened")
	ErrOpen      = errors.New("envelope does not open")
	ErrExpired   = errors.New("period no longer kept")
	ErrNoKey     = errors.New("epoch key unknown")
	ErrNotMember = errors.New("not a member")
)

// kdf is HKDF-SHA256 with an empty salt: its inputs are uniform secrets.
func kdf(secret []byte, info string) (k [32]byte) {
	out, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		panic(err) // only for lengths above 255*32
	}
	copy(k[:], out)
	return k
}

// prf is HMAC-SHA256.
func prf(key []byte, msg ...[]byte) (out [32]byte) {
	m := hmac.New(sha256.New, key)
	for _, b := range msg {
		m.Write(b)
	}
	m.Sum(out[:0])
	return out
}
