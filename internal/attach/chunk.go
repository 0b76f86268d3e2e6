package attach

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// Key schedule (SPEC §16.3), from the file key K:
//
//	PK       = HKDF(K, "grapevine attach v1 payload")
//	TK       = HKDF(K, "grapevine attach v1 tags")
//	RK       = HKDF(K, "grapevine attach v1 receipts")
//	NK       = HKDF(K, "grapevine attach v1 no receipts")
//	tag_i    = HMAC(TK, be32(i))[0:16]
//	secret_i = HMAC(RK, be32(i))[0:16]                    the receipt secret, with receipts
//	commit_i = Commitment(secret_i) with receipts, else HMAC(NK, be32(i))[0:16]
//	nonce_i  = 7 zero bytes || be32(i) || last            last = 1 for the file's last chunk, else 0
//	body_i   = ChaCha20-Poly1305(PK, nonce_i, ad = 0x24 || tag_i || commit_i, path_i || data_i || zeros)
const (
	labelPayload   = "grapevine attach v1 payload"
	labelTags      = "grapevine attach v1 tags"
	labelReceipts  = "grapevine attach v1 receipts"
	labelNoReceipt = "grapevine attach v1 no receipts"
)

// Errors from opening and assembling chunks, wrapped with detail.
var (
	ErrMalformed = errors.New("not a chunk envelope")
	ErrForeign   = errors.New("chunk of another file")
	ErrForged    = errors.New("chunk does not authenticate")
	ErrNotInFile = errors.New("chunk is not the file's")
	ErrDuplicate = errors.New("duplicate chunk")
)

// Keys is a file's key schedule, with the tag of every chunk.
type Keys struct {
	m        *Manifest
	aead     cipher.AEAD
	tk, rk   []byte
	nk       []byte
	tags     map[[envelope.TagSize]byte]int
	depth    int
	receipts bool
}

func expand(k Key, label string) []byte {
	b, err := hkdf.Key(sha256.New, k[:], nil, label, 32)
	if err != nil {
		panic(err) // cannot happen for 32 bytes
	}
	return b
}

// NewKeys derives m's key schedule and the tags of all its chunks.
func NewKeys(m *Manifest) *Keys {
	aead, err := chacha20poly1305.New(expand(m.Key, labelPayload))
	if err != nil {
		panic(err)
	}
	ks := &Keys{m: m, aead: aead, tk: expand(m.Key, labelTags), rk: expand(m.Key, labelReceipts),
		nk: expand(m.Key, labelNoReceipt), depth: depthOf(m.Chunks), receipts: m.Receipts}
	ks.tags = make(map[[envelope.TagSize]byte]int, m.Chunks)
	for i := 0; i < m.Chunks; i++ {
		ks.tags[ks.Tag(i)] = i
	}
	return ks
}

func prf16(key []byte, i int) (out [16]byte) {
	h := hmac.New(sha256.New, key)
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(i)))
	copy(out[:], h.Sum(nil))
	return out
}

// Tag is chunk i's tag.
func (ks *Keys) Tag(i int) [envelope.TagSize]byte { return prf16(ks.tk, i) }

// Index returns the chunk whose tag is tag.
func (ks *Keys) Index(tag [envelope.TagSize]byte) (int, bool) {
	i, ok := ks.tags[tag]
	return i, ok
}

// ReceiptSecret is the secret whose receipt purges chunk i; ok is false for
// a file without receipts, whose chunks nobody can purge.
func (ks *Keys) ReceiptSecret(i int) (s [envelope.SecretSize]byte, ok bool) {
	if !ks.receipts {
		return s, false
	}
	return prf16(ks.rk, i), true
}

// Commit is chunk i's receipt commitment.
func (ks *Keys) Commit(i int) [envelope.CommitSize]byte {
	if s, ok := ks.ReceiptSecret(i); ok {
		return envelope.Commitment(s)
	}
	return prf16(ks.nk, i)
}

func (ks *Keys) nonce(i int) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint32(n[7:11], uint32(i))
	if i == ks.m.Chunks-1 {
		n[11] = 1
	}
	return n
}

func (ks *Keys) adFor(tag [16]byte, commit [16]byte) []byte {
	ad := make([]byte, 0, 33)
	ad = append(ad, envelope.Version<<4|byte(envelope.KindChunk))
	ad = append(ad, tag[:]...)
	return append(ad, commit[:]...)
}

// Merkle tree (SPEC §16.3): leaf_i = SHA-256(0x00 || data_i) for the file's
// bytes in chunk i (unpadded), leaves n … 2^d − 1 are 32 zero bytes, and
// node = SHA-256(0x01 || left || right); the root is the node at depth 0.

// LeafHash is the leaf of a chunk holding data.
func LeafHash(data []byte) (h [HashSize]byte) {
	s := sha256.New()
	s.Write([]byte{0})
	s.Write(data)
	s.Sum(h[:0])
	return h
}

func nodeHash(l, r *[HashSize]byte) (h [HashSize]byte) {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// tree builds every level of the tree over leaves, padded to 2^depth.
func tree(leaves [][HashSize]byte, depth int) [][][HashSize]byte {
	level := make([][HashSize]byte, 1<<depth)
	copy(level, leaves)
	levels := [][][HashSize]byte{level}
	for len(level) > 1 {
		next := make([][HashSize]byte, len(level)/2)
		for j := range next {
			next[j] = nodeHash(&level[2*j], &level[2*j+1])
		}
		levels = append(levels, next)
		level = next
	}
	return levels
}

// rootFromPath climbs from a leaf at index i along path.
func rootFromPath(leaf [HashSize]byte, i int, path []byte) [HashSize]byte {
	h := leaf
	for l := 0; l*HashSize < len(path); l++ {
		var sib [HashSize]byte
		copy(sib[:], path[l*HashSize:])
		if i>>l&1 == 0 {
			h = nodeHash(&h, &sib)
		} else {
			h = nodeHash(&sib, &h)
		}
	}
	return h
}

// Root computes the Merkle root of leaves (a file of len(leaves) chunks).
func Root(leaves [][HashSize]byte) [HashSize]byte {
	levels := tree(leaves, depthOf(len(leaves)))
	return levels[len(levels)-1][0]
}

// Options are the sender's choices for a file.
type Options struct {
	MediaType string    // default "application/octet-stream"
	Name      string    // sanitised by Prepare
	Created   time.Time // default now
	Receipts  bool      // pairwise: the recipient's receipts purge the chunks
	Key       *Key      // default a fresh random key; never reuse one for another file
	Limits    Limits
}

// File is a file prepared for sending: its manifest and everything needed
// to seal any of its chunks, read again from the file when sealed.
type File struct {
	m      Manifest
	ks     *Keys
	r      io.ReaderAt
	levels [][][HashSize]byte
}

// Prepare reads the file once (size bytes from r) to build its Merkle tree
// and manifest. r must not change until the last chunk is sealed.
func Prepare(r io.ReaderAt, size int64, o Options) (*File, error) {
	if size > o.Limits.maxFile() {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, o.Limits.maxFile())
	}
	c, n, d, err := Layout(size)
	if err != nil {
		return nil, err
	}
	m := Manifest{Size: size, ChunkSize: c, Chunks: n, MediaType: o.MediaType, Name: SanitiseName(o.Name),
		Receipts: o.Receipts}
	if m.MediaType == "" {
		m.MediaType = "application/octet-stream"
	}
	if err := checkMediaType(m.MediaType); err != nil {
		return nil, err
	}
	created := o.Created
	if created.IsZero() {
		created = time.Now()
	}
	m.Created = uint32(max(created.Unix(), 0))
	if o.Key != nil {
		m.Key = *o.Key
	} else if m.Key, err = NewKey(); err != nil {
		return nil, err
	}
	leaves := make([][HashSize]byte, n)
	buf := make([]byte, c)
	for i := range n {
		data := buf[:m.ChunkLen(i)]
		if err := readFull(r, data, int64(i)*int64(c)); err != nil {
			return nil, fmt.Errorf("reading chunk %d of the file: %w", i, err)
		}
		leaves[i] = LeafHash(data)
	}
	f := &File{m: m, r: r, levels: tree(leaves, d)}
	f.m.Root = f.levels[len(f.levels)-1][0]
	f.ks = NewKeys(&f.m)
	return f, nil
}

// readFull reads len(p) bytes at off; io.EOF with all of them is no error
// (io.ReaderAt allows it at the end), fewer is io.ErrUnexpectedEOF.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ChunkExpiry is the expiry a writer gives chunks written at now to live for
// lifetime: rounded up to the hour, so that every chunk written in the same
// hour, by anyone, carries the same expiry (SPEC §16.9).
func ChunkExpiry(now time.Time, lifetime time.Duration) uint32 {
	t := now.Add(lifetime).Unix()
	return uint32((t + 3599) / 3600 * 3600)
}

// Manifest returns the file's manifest.
func (f *File) Manifest() *Manifest { m := f.m; return &m }

// Keys returns the file's key schedule.
func (f *File) Keys() *Keys { return f.ks }

// Seal reads chunk i from the file and seals it as a chunk envelope with the
// given expiry and hop budget. Sealing a chunk again gives the same bytes
// but for the expiry and hop budget (outside the AEAD), so a sender may
// re-send a file with a later expiry and the recipient keeps what it has.
func (f *File) Seal(i int, expiry uint32, hops uint8) ([]byte, error) {
	if i < 0 || i >= f.m.Chunks {
		return nil, fmt.Errorf("no chunk %d in a file of %d chunks", i, f.m.Chunks)
	}
	// The plaintext is built where its ciphertext goes, in the envelope,
	// and sealed in place: one buffer a chunk, not four.
	raw := make([]byte, envelope.ChunkSize)
	plain := raw[envelope.HeaderSize : envelope.HeaderSize+plainSize]
	path := plain[:0]
	for l := 0; l < f.ks.depth; l++ {
		sib := f.levels[l][(i>>l)^1]
		path = append(path, sib[:]...)
	}
	data := plain[len(path) : len(path)+f.m.ChunkLen(i)]
	if err := readFull(f.r, data, int64(i)*int64(f.m.ChunkSize)); err != nil {
		return nil, fmt.Errorf("reading chunk %d of the file: %w", i, err)
	}
	if LeafHash(data) != f.levels[0][i] {
		return nil, fmt.Errorf("chunk %d of the file changed since it was prepared", i)
	}
	sealInPlace(f.ks, i, raw, expiry, hops)
	return raw, nil
}

// SealChunk seals chunk i holding data (at most the manifest's chunk size)
// with its Merkle path. Callers other than File.Seal are test vectors and
// attacks.
func SealChunk(ks *Keys, i int, path, data []byte, expiry uint32, hops uint8) []byte {
	raw := make([]byte, envelope.ChunkSize)
	plain := raw[envelope.HeaderSize:]
	copy(plain, path)
	copy(plain[len(path):], data)
	sealInPlace(ks, i, raw, expiry, hops)
	return raw
}

// sealInPlace turns raw, a chunk envelope's length holding the chunk's
// plaintext (path, data, zeros) where its body goes, into chunk envelope i:
// the header of §16.2, then the body sealed over the plaintext.
func sealInPlace(ks *Keys, i int, raw []byte, expiry uint32, hops uint8) {
	tag, commit := ks.Tag(i), ks.Commit(i)
	hdr := envelope.Envelope{Kind: envelope.KindChunk, Hops: hops, Expiry: expiry, Tag: tag, Commit: commit}
	copy(raw, hdr.Marshal())
	plain := raw[envelope.HeaderSize : envelope.HeaderSize+plainSize]
	ks.aead.Seal(plain[:0], ks.nonce(i), plain, ks.adFor(tag, commit))
}

// Opened is a chunk that opened and verified.
type Opened struct {
	Index int
	Data  []byte // the file's bytes in this chunk
	Leaf  [HashSize]byte
}

// Open parses raw as a chunk envelope of ks's file, decrypts it and checks
// it against the manifest's root. It errs, naming what is wrong, on anything
// that is not a chunk envelope (ErrMalformed), a chunk of another file
// (ErrForeign), one that does not authenticate under the file key (ErrForged:
// damaged, or its tag moved to another chunk), and one that opens but is not
// the file's chunk (ErrNotInFile: forged by someone holding the file key).
func (ks *Keys) Open(raw []byte) (*Opened, error) {
	e, err := envelope.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Kind != envelope.KindChunk {
		return nil, fmt.Errorf("%w: a %s envelope", ErrMalformed, e.Kind)
	}
	i, ok := ks.tags[e.Tag]
	if !ok {
		return nil, fmt.Errorf("%w: its tag is none of this file's %d", ErrForeign, ks.m.Chunks)
	}
	if want := ks.Commit(i); subtle.ConstantTimeCompare(want[:], e.Commit[:]) != 1 {
		return nil, fmt.Errorf("%w: chunk %d (by its tag) carries another receipt commitment", ErrForged, i)
	}
	plain, err := ks.aead.Open(nil, ks.nonce(i), e.Body, ks.adFor(e.Tag, e.Commit))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d (by its tag) is damaged or was sealed as another chunk", ErrForged, i)
	}
	path := plain[:HashSize*ks.depth]
	data := plain[len(path):]
	n := ks.m.ChunkLen(i)
	for _, b := range data[n:] {
		if b != 0 {
			return nil, fmt.Errorf("%w: chunk %d has non-zero padding after its %d bytes", ErrNotInFile, i, n)
		}
	}
	data = data[:n]
	leaf := LeafHash(data)
	if root := rootFromPath(leaf, i, path); root != ks.m.Root {
		return nil, fmt.Errorf("%w: chunk %d opens but its hash is not under the manifest's root", ErrNotInFile, i)
	}
	return &Opened{Index: i, Data: data, Leaf: leaf}, nil
}
