package release

// Minisign signatures (https://jedisct1.github.io/minisign/), made and checked
// with the standard library and golang.org/x/crypto only: Ed25519 over the
// BLAKE2b-512 hash of the file ("ED", what minisign writes by default), and a
// second Ed25519 signature over the first and the trusted comment. Keys and
// signatures are the files minisign reads and writes, so either tool can
// check what the other signed.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"
)

var (
	algEd          = [2]byte{'E', 'd'} // key algorithm; legacy signatures of the whole file
	algPrehash     = [2]byte{'E', 'D'} // signatures of the file's BLAKE2b-512
	kdfScrypt      = [2]byte{'S', 'c'}
	kdfNone        = [2]byte{0, 0}
	chkBLAKE2b     = [2]byte{'B', '2'}
	errNotMinisign = errors.New("not in minisign format")
)

// ErrBadSignature is wrapped by Verify when the signature does not match the
// file under the key: the file was altered, or signed by another key.
var ErrBadSignature = errors.New("the signature does not match")

// KeyID names a key pair: 8 random bytes, shown as minisign shows them.
type KeyID [8]byte

func (id KeyID) String() string { return fmt.Sprintf("%016X", binary.LittleEndian.Uint64(id[:])) }

// PublicKey is a minisign public key.
type PublicKey struct {
	ID  KeyID
	Key ed25519.PublicKey
}

// PrivateKey is a minisign secret key.
type PrivateKey struct {
	ID  KeyID
	Key ed25519.PrivateKey
}

// Public returns the public half of k.
func (k PrivateKey) Public() PublicKey {
	return PublicKey{ID: k.ID, Key: k.Key.Public().(ed25519.PublicKey)}
}

// GenerateKey makes a new key pair.
func GenerateKey(r io.Reader) (PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var id KeyID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("failed to generate a key id: %w", err)
	}
	_, sk, err := ed25519.GenerateKey(r)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("failed to generate a key: %w", err)
	}
	return PrivateKey{ID: id, Key: sk}, nil
}

// MarshalText writes k as a minisign .pub file.
func (k PublicKey) MarshalText() ([]byte, error) {
	raw := append(append(algEd[:], k.ID[:]...), k.Key...)
	return fmt.Appendf(nil, "untrusted comment: minisign public key %s\n%s\n", k.ID, base64.StdEncoding.EncodeToString(raw)), nil
}

// ParsePublicKey reads a minisign public key: the .pub file, or its base64
// line alone (as minisign -P takes it).
func ParsePublicKey(text []byte) (PublicKey, error) {
	lines := nonEmptyLines(text)
	if len(lines) == 2 && strings.HasPrefix(lines[0], "untrusted comment:") {
		lines = lines[1:]
	}
	if len(lines) != 1 {
		return PublicKey{}, fmt.Errorf("public key: %w: want a comment line and a base64 line", errNotMinisign)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[0])
	if err != nil || len(raw) != 2+8+ed25519.PublicKeySize || !bytes.Equal(raw[:2], algEd[:]) {
		return PublicKey{}, fmt.Errorf("public key: %w: want 42 bytes of base64 starting with Ed", errNotMinisign)
	}
	var k PublicKey
	copy(k.ID[:], raw[2:10])
	k.Key = ed25519.PublicKey(raw[10:])
	return k, nil
}

// KDFLimits are scrypt parameters as minisign stores them (libsodium's
// opslimit and memlimit).
type KDFLimits struct{ Ops, Mem uint64 }

// KDFSensitive is what minisign -G uses (1 GiB of memory).
func KDFSensitive() KDFLimits { return KDFLimits{Ops: 33554432, Mem: 1073741824} }

const (
	kdfLimitOps    = uint64(1) << 40 // refuse files that would take forever
	kdfLimitMemory = uint64(4) << 30
)

// scryptParams turns libsodium's limits into scrypt's N, r, p, as libsodium's
// pickparams does.
func scryptParams(l KDFLimits) (n, r, p int) {
	ops := max(l.Ops, 32768)
	r = 8
	var logN uint
	if ops < l.Mem/32 {
		p = 1
		maxN := ops / (uint64(r) * 4)
		for logN = 1; logN < 63; logN++ {
			if uint64(1)<<logN > maxN/2 {
				break
			}
		}
	} else {
		maxN := l.Mem / (uint64(r) * 128)
		for logN = 1; logN < 63; logN++ {
			if uint64(1)<<logN > maxN/2 {
				break
			}
		}
		maxrp := (ops / 4) / (uint64(1) << logN)
		maxrp = min(maxrp, 0x3fffffff)
		p = int(uint32(maxrp) / uint32(r))
	}
	return 1 << logN, r, p
}

// secret key layout: sig_alg(2) kdf_alg(2) chk_alg(2) salt(32) ops(8) mem(8)
// then, encrypted with scrypt for kdf "Sc": keynum(8) sk(64) chk(32).
const (
	skHeader = 2 + 2 + 2 + 32 + 8 + 8
	skSecret = 8 + 64 + 32
)

// MarshalPrivateKey writes k as a minisign secret key file, encrypted under
// passphrase with scrypt (limits l), or unencrypted if passphrase is nil (as
// minisign -G -W).
func MarshalPrivateKey(k PrivateKey, passphrase []byte, l KDFLimits) ([]byte, error) {
	raw := make([]byte, skHeader+skSecret)
	copy(raw[0:2], algEd[:])
	copy(raw[4:6], chkBLAKE2b[:])
	sec := raw[skHeader:]
	copy(sec[0:8], k.ID[:])
	copy(sec[8:72], k.Key)
	sum := keyChecksum(k.ID, k.Key)
	copy(sec[72:], sum[:])
	comment := "minisign secret key"
	if passphrase != nil {
		copy(raw[2:4], kdfScrypt[:])
		if _, err := rand.Read(raw[6:38]); err != nil {
			return nil, err
		}
		binary.LittleEndian.PutUint64(raw[38:46], l.Ops)
		binary.LittleEndian.PutUint64(raw[46:54], l.Mem)
		n, r, p := scryptParams(l)
		stream, err := scrypt.Key(passphrase, raw[6:38], n, r, p, skSecret)
		if err != nil {
			return nil, fmt.Errorf("failed to derive the key encryption key: %w", err)
		}
		subtle.XORBytes(sec, sec, stream)
		comment = "minisign encrypted secret key"
	}
	return fmt.Appendf(nil, "untrusted comment: %s\n%s\n", comment, base64.StdEncoding.EncodeToString(raw)), nil
}

// ParsePrivateKey reads a minisign secret key file; passphrase is asked
// only if the key is encrypted.
func ParsePrivateKey(text []byte, passphrase func() ([]byte, error)) (PrivateKey, error) {
	lines := nonEmptyLines(text)
	if len(lines) == 2 && strings.HasPrefix(lines[0], "untrusted comment:") {
		lines = lines[1:]
	}
	if len(lines) != 1 {
		return PrivateKey{}, fmt.Errorf("secret key: %w", errNotMinisign)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[0])
	if err != nil || len(raw) != skHeader+skSecret || !bytes.Equal(raw[0:2], algEd[:]) || !bytes.Equal(raw[4:6], chkBLAKE2b[:]) {
		return PrivateKey{}, fmt.Errorf("secret key: %w: want 158 bytes of base64 starting with Ed", errNotMinisign)
	}
	sec := raw[skHeader:]
	switch kdf := [2]byte(raw[2:4]); kdf {
	case kdfNone:
	case kdfScrypt:
		l := KDFLimits{Ops: binary.LittleEndian.Uint64(raw[38:46]), Mem: binary.LittleEndian.Uint64(raw[46:54])}
		if l.Ops > kdfLimitOps || l.Mem > kdfLimitMemory {
			return PrivateKey{}, fmt.Errorf("secret key: scrypt limits %d/%d are beyond what this tool accepts", l.Ops, l.Mem)
		}
		if passphrase == nil {
			return PrivateKey{}, errors.New("secret key: it is encrypted and no passphrase was given")
		}
		pass, err := passphrase()
		if err != nil {
			return PrivateKey{}, err
		}
		n, r, p := scryptParams(l)
		stream, err := scrypt.Key(pass, raw[6:38], n, r, p, skSecret)
		if err != nil {
			return PrivateKey{}, fmt.Errorf("failed to derive the key encryption key: %w", err)
		}
		subtle.XORBytes(sec, sec, stream)
	default:
		return PrivateKey{}, fmt.Errorf("secret key: unknown key derivation %q", kdf[:])
	}
	var k PrivateKey
	copy(k.ID[:], sec[0:8])
	k.Key = ed25519.NewKeyFromSeed(sec[8:40])
	sum := keyChecksum(k.ID, sec[8:72])
	// minisign leaves the checksum of an unencrypted key zero.
	unchecked := [2]byte(raw[2:4]) == kdfNone && bytes.Equal(sec[72:], make([]byte, 32))
	if !bytes.Equal(k.Key, sec[8:72]) || (!unchecked && subtle.ConstantTimeCompare(sum[:], sec[72:]) != 1) {
		return PrivateKey{}, errors.New("secret key: wrong passphrase, or a damaged key file")
	}
	return k, nil
}

func keyChecksum(id KeyID, sk []byte) [32]byte {
	h, _ := blake2b.New256(nil)
	h.Write(algEd[:])
	h.Write(id[:])
	h.Write(sk)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Sign signs the content of r (hashed with BLAKE2b-512, as minisign does by
// default) and returns the .minisig file. The trusted comment is signed too;
// it must be one line.
func Sign(k PrivateKey, r io.Reader, trusted string) ([]byte, error) {
	if strings.ContainsAny(trusted, "\r\n") {
		return nil, errors.New("the trusted comment must be one line")
	}
	digest, err := hashFile(r)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(k.Key, digest)
	global := ed25519.Sign(k.Key, append(append([]byte{}, sig...), trusted...))
	line := append(append(algPrehash[:], k.ID[:]...), sig...)
	return fmt.Appendf(nil, "untrusted comment: signature from grapevine release key %s\n%s\ntrusted comment: %s\n%s\n",
		k.ID, base64.StdEncoding.EncodeToString(line), trusted, base64.StdEncoding.EncodeToString(global)), nil
}

// MaxLegacySigned bounds what Verify reads for a legacy ("Ed") signature,
// which covers the whole file rather than its hash.
const MaxLegacySigned = 1 << 30

// Verify checks the minisign signature sig of the content of r under k and
// returns its trusted comment. Both the file's signature and the one over
// the trusted comment must hold.
func Verify(k PublicKey, r io.Reader, sig []byte) (trusted string, err error) {
	p, err := parseSig(k, sig)
	if err != nil {
		return "", err
	}
	var msg []byte
	switch p.alg {
	case algPrehash:
		if msg, err = hashFile(r); err != nil {
			return "", err
		}
	case algEd:
		if msg, err = io.ReadAll(io.LimitReader(r, MaxLegacySigned+1)); err != nil {
			return "", fmt.Errorf("failed to read the file: %w", err)
		}
		if len(msg) > MaxLegacySigned {
			return "", errors.New("the file is too large for a legacy (unhashed) signature")
		}
	}
	if !ed25519.Verify(k.Key, msg, p.sig) {
		return "", fmt.Errorf("%w: the file is not the one that was signed", ErrBadSignature)
	}
	return p.trusted, nil
}

// VerifyComment checks, without the file, that sig was made by k and that
// its trusted comment is the one k signed, and returns the comment. It
// tells a file worth fetching from one that cannot verify (the wrong key,
// an altered comment) before the file is there; only Verify vouches for the
// file itself.
func VerifyComment(k PublicKey, sig []byte) (trusted string, err error) {
	p, err := parseSig(k, sig)
	if err != nil {
		return "", err
	}
	return p.trusted, nil
}

// parsedSig is a signature whose form, key ID and trusted comment were
// checked against a key.
type parsedSig struct {
	alg     [2]byte
	sig     []byte // the file's signature
	trusted string
}

// parseSig reads a .minisig file and checks what can be checked without
// the file: its form, that k made it, and the signature over the trusted
// comment.
func parseSig(k PublicKey, sig []byte) (parsedSig, error) {
	lines := nonEmptyLines(sig)
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "untrusted comment:") || !strings.HasPrefix(lines[2], "trusted comment: ") {
		return parsedSig{}, fmt.Errorf("signature: %w: want four lines (untrusted comment, signature, trusted comment, signature)", errNotMinisign)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(raw) != 2+8+ed25519.SignatureSize {
		return parsedSig{}, fmt.Errorf("signature: %w: its second line is not 74 bytes of base64", errNotMinisign)
	}
	global, err := base64.StdEncoding.DecodeString(lines[3])
	if err != nil || len(global) != ed25519.SignatureSize {
		return parsedSig{}, fmt.Errorf("signature: %w: its last line is not 64 bytes of base64", errNotMinisign)
	}
	if id := KeyID(raw[2:10]); id != k.ID {
		return parsedSig{}, fmt.Errorf("%w: it was made by key %s, not by key %s", ErrBadSignature, id, k.ID)
	}
	p := parsedSig{alg: [2]byte(raw[0:2]), sig: raw[10:], trusted: strings.TrimPrefix(lines[2], "trusted comment: ")}
	if p.alg != algPrehash && p.alg != algEd {
		return parsedSig{}, fmt.Errorf("signature: unknown algorithm %q", p.alg[:])
	}
	if !ed25519.Verify(k.Key, append(append([]byte{}, p.sig...), p.trusted...), global) {
		return parsedSig{}, fmt.Errorf("%w: the trusted comment was altered", ErrBadSignature)
	}
	return p, nil
}

func hashFile(r io.Reader) ([]byte, error) {
	h, _ := blake2b.New512(nil)
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("failed to read the file: %w", err)
	}
	return h.Sum(nil), nil
}

// nonEmptyLines splits text into lines (LF or CRLF), dropping empty ones.
func nonEmptyLines(text []byte) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
