package attach

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// Manifest layout (SPEC §16.5), all integers big-endian:
//
//	0    1  version (1)
//	1    1  flags: bit 0 = receipts purge the chunks; other bits zero
//	2    8  file size in bytes
//	10   4  chunk size: file bytes per chunk
//	14   4  chunk count
//	18  32  Merkle root over the chunks
//	50  32  file key
//	82   4  created, Unix seconds
//	86   1  media type length m, 1 ≤ m ≤ 127
//	87   m  media type (lower-case RFC 6838 type "/" subtype)
//	..   1  name length k, 0 ≤ k ≤ 255
//	..   k  file name (UTF-8, in its sanitised form), may be empty
const (
	ManifestVersion = 1

	KeySize  = 32
	HashSize = 32

	manifestFixed = 87
	// MaxManifestSize is the longest valid manifest.
	MaxManifestSize = manifestFixed + maxMediaType + 1 + MaxNameSize
	maxMediaType    = 127
	// MaxNameSize bounds a file name in bytes.
	MaxNameSize = 255

	flagReceipts = 0x01

	// DefaultMaxFileSize is the per-file limit on the mesh.
	DefaultMaxFileSize = 16 << 20
	// MaxFileSize is the protocol's ceiling: no limit may exceed it.
	MaxFileSize = 4 << 30

	// bodySize and plainSize are a chunk envelope's body and its plaintext.
	bodySize  = envelope.ChunkSize - envelope.HeaderSize
	plainSize = bodySize - envelope.Overhead
	// MaxDepth bounds the Merkle tree; MaxFileSize needs 18.
	MaxDepth = 20
)

// Key is a file key: 32 random bytes, one per file, never reused.
type Key [KeySize]byte

// NewKey draws a fresh file key.
func NewKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// Limits bounds what a node accepts. The zero value means the defaults.
type Limits struct {
	// MaxFileSize is the largest file accepted, in bytes: default
	// DefaultMaxFileSize, at most MaxFileSize.
	MaxFileSize int64
}

func (l Limits) maxFile() int64 {
	switch {
	case l.MaxFileSize <= 0:
		return DefaultMaxFileSize
	case l.MaxFileSize > MaxFileSize:
		return MaxFileSize
	}
	return l.MaxFileSize
}

// MaxChunks is the largest chunk count the limits allow.
func (l Limits) MaxChunks() int {
	_, n, _, _ := Layout(l.maxFile())
	return n
}

// Manifest describes one file. It travels inside a sealed message.
type Manifest struct {
	Size      int64
	ChunkSize int // file bytes per chunk (the last holds the rest)
	Chunks    int
	Root      [HashSize]byte
	Key       Key
	Created   uint32 // Unix seconds
	MediaType string
	Name      string // sanitised; may be empty
	// Receipts says the recipient may purge delivered chunks with receipts
	// (a pairwise attachment). Without it nobody can: a file for many
	// readers (a room) is carried until it expires.
	Receipts bool
}

// Errors, wrapped with detail.
var (
	ErrManifest = errors.New("invalid attachment manifest")
	ErrTooLarge = errors.New("attachment too large")
)

// Layout says how a file of size bytes is cut: file bytes per chunk, the
// chunk count (at least 1; an empty file is one chunk of padding) and the
// depth of the Merkle tree. Each chunk's plaintext holds its path (32 bytes
// per level) and then its share of the file, so the chunk size shrinks as
// the tree grows: the smallest depth d with ceil(size / (32,650 − 32·d)) ≤ 2^d.
func Layout(size int64) (chunkSize, chunks, depth int, err error) {
	if size < 0 || size > MaxFileSize {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, ceiling %d", ErrTooLarge, size, int64(MaxFileSize))
	}
	for d := 0; d <= MaxDepth; d++ {
		c := int64(plainSize - HashSize*d)
		n := max((size+c-1)/c, 1)
		if n <= 1<<d {
			return int(c), int(n), d, nil
		}
	}
	return 0, 0, 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
}

func depthOf(chunks int) int {
	d := 0
	for 1<<d < chunks {
		d++
	}
	return d
}

// Marshal encodes the manifest. It does not validate: ParseManifest does.
func (m *Manifest) Marshal() []byte {
	b := make([]byte, 0, manifestFixed+len(m.MediaType)+1+len(m.Name))
	var flags byte
	if m.Receipts {
		flags |= flagReceipts
	}
	b = append(b, ManifestVersion, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = binary.BigEndian.AppendUint32(b, uint32(m.ChunkSize))
	b = binary.BigEndian.AppendUint32(b, uint32(m.Chunks))
	b = append(b, m.Root[:]...)
	b = append(b, m.Key[:]...)
	b = binary.BigEndian.AppendUint32(b, m.Created)
	b = append(b, byte(len(m.MediaType)))
	b = append(b, m.MediaType...)
	b = append(b, byte(len(m.Name)))
	b = append(b, m.Name...)
	return b
}

// ParseManifest decodes and strictly checks a manifest against lim: there is
// exactly one valid encoding of every manifest, and every error says which
// field is wrong.
func ParseManifest(b []byte, lim Limits) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, longest %d", ErrManifest, len(b), MaxManifestSize)
	}
	if len(b) < manifestFixed+1+1 {
		return nil, fmt.Errorf("%w: %d bytes, shortest %d", ErrManifest, len(b), manifestFixed+2)
	}
	if b[0] != ManifestVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrManifest, b[0], ManifestVersion)
	}
	if b[1]&^flagReceipts != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#02x", ErrManifest, b[1])
	}
	m := &Manifest{Receipts: b[1]&flagReceipts != 0}
	size := binary.BigEndian.Uint64(b[2:10])
	if size > uint64(lim.maxFile()) {
		return nil, fmt.Errorf("%w: the manifest says %d bytes, the limit is %d", ErrTooLarge, size, lim.maxFile())
	}
	m.Size = int64(size)
	m.ChunkSize = int(binary.BigEndian.Uint32(b[10:14]))
	m.Chunks = int(binary.BigEndian.Uint32(b[14:18]))
	c, n, _, err := Layout(m.Size)
	if err != nil {
		return nil, err
	}
	if m.ChunkSize != c {
		return nil, fmt.Errorf("%w: chunk size %d, a file of %d bytes has chunks of %d", ErrManifest, m.ChunkSize, m.Size, c)
	}
	if m.Chunks != n {
		return nil, fmt.Errorf("%w: chunk count %d, a file of %d bytes has %d chunks", ErrManifest, m.Chunks, m.Size, n)
	}
	copy(m.Root[:], b[18:50])
	copy(m.Key[:], b[50:82])
	m.Created = binary.BigEndian.Uint32(b[82:86])
	rest := b[86:]
	mt, rest, ok := lengthPrefixed(rest)
	if !ok {
		return nil, fmt.Errorf("%w: media type runs past the end", ErrManifest)
	}
	if err := checkMediaType(string(mt)); err != nil {
		return nil, err
	}
	m.MediaType = string(mt)
	name, rest, ok := lengthPrefixed(rest)
	if !ok {
		return nil, fmt.Errorf("%w: file name runs past the end", ErrManifest)
	}
	if s := SanitiseName(string(name)); s != string(name) {
		return nil, fmt.Errorf("%w: file name %q is not in its sanitised form %q", ErrManifest, name, s)
	}
	m.Name = string(name)
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the file name", ErrManifest, len(rest))
	}
	return m, nil
}

func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 1 || len(b)-1 < int(b[0]) {
		return nil, nil, false
	}
	return b[1 : 1+int(b[0])], b[1+int(b[0]):], true
}

// checkMediaType accepts a lower-case RFC 6838 "type/subtype" (restricted
// names: a letter or digit, then letters, digits and !#$&-^_.+), no
// parameters, at most 127 bytes.
func checkMediaType(s string) error {
	if len(s) == 0 || len(s) > maxMediaType {
		return fmt.Errorf("%w: media type of %d bytes, want 1 to %d", ErrManifest, len(s), maxMediaType)
	}
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || !restrictedName(typ) || !restrictedName(sub) {
		return fmt.Errorf("%w: media type %q is not a lower-case type/subtype", ErrManifest, s)
	}
	return nil
}

func restrictedName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("!#$&-^_.+", rune(c))) {
			return false
		}
	}
	return true
}

// SanitiseName makes a received or offered file name safe to show and to use
// as the last element of a path: it keeps what follows the last '/' or '\',
// replaces control, format (bidirectional overrides, zero-width characters),
// line and paragraph separators, invalid UTF-8 and the characters <>:"|?* by
// '_', drops leading dots and spaces and trailing dots and spaces, and cuts it
// to 255 bytes on a character boundary. "" means no name. It is idempotent,
// and ParseManifest accepts only names it leaves unchanged.
func SanitiseName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	var b strings.Builder
	for _, r := range s { // invalid UTF-8 comes as RuneError
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) ||
			strings.ContainsRune(`<>:"|?*`, r) {
			r = '_'
		}
		b.WriteRune(r)
	}
	s = strings.Trim(b.String(), ". ")
	if len(s) > MaxNameSize {
		cut := MaxNameSize
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimRight(s[:cut], ". ")
	}
	return s
}

// CreatedAt returns the manifest's creation time.
func (m *Manifest) CreatedAt() time.Time { return time.Unix(int64(m.Created), 0).UTC() }

// ChunkLen is how many file bytes chunk i holds.
func (m *Manifest) ChunkLen(i int) int {
	if i < 0 || i >= m.Chunks {
		return 0
	}
	if i < m.Chunks-1 {
		return m.ChunkSize
	}
	return int(m.Size - int64(m.Chunks-1)*int64(m.ChunkSize))
}
