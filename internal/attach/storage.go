package attach

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Storage keeps a transfer's data and progress, so that a transfer resumes
// across restarts. Data is written at file offsets; progress is a State.
// Sync makes everything written so far durable together with the State, in
// that order: a State names only chunks whose data is durable.
type Storage interface {
	// Load returns the State of the last Sync, or a fresh one if there was
	// none (or it belongs to another manifest, or is damaged).
	Load(m *Manifest) (*State, error)
	WriteAt(p []byte, off int64) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Sync(s *State) error
	// Commit puts the finished, verified file in place; Discard throws the
	// transfer away.
	Commit() error
	Discard() error
}

// State is a transfer's progress: the leaf hash of every chunk held and
// verified; a chunk not held has none.
type State struct {
	manifest [HashSize]byte // SHA-256 of the manifest's encoding
	Have     []bool
	Leaves   [][HashSize]byte
}

// NewState is a fresh State for m: no chunk held. A Storage other than this
// package's returns it from Load when it has no record.
func NewState(m *Manifest) *State { return newState(m) }

func newState(m *Manifest) *State {
	return &State{manifest: sha256.Sum256(m.Marshal()), Have: make([]bool, m.Chunks),
		Leaves: make([][HashSize]byte, m.Chunks)}
}

// State encoding (local only, never on the wire):
//
//	"GVATST01" (8) || SHA-256(manifest) (32) || n (4) || bitmap (ceil(n/8), chunk i is bit 7 − i%8 of byte i/8,
//	bits past n zero) || the leaf of each chunk held, in order (32 each) || SHA-256 of everything before (32)
const stateMagic = "GVATST01"

// ErrState is a damaged or foreign progress record.
var ErrState = errors.New("invalid transfer state")

// Marshal encodes the state.
func (s *State) Marshal() []byte {
	n := len(s.Have)
	b := append([]byte(stateMagic), s.manifest[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	bits := make([]byte, (n+7)/8)
	for i, h := range s.Have {
		if h {
			bits[i/8] |= 0x80 >> (i % 8)
		}
	}
	b = append(b, bits...)
	for i, h := range s.Have {
		if h {
			b = append(b, s.Leaves[i][:]...)
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// ParseState decodes a state strictly, for the manifest m (whose chunk count
// bounds everything it allocates).
func ParseState(b []byte, m *Manifest) (*State, error) {
	const fixed = len(stateMagic) + HashSize + 4
	if len(b) < fixed+HashSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrState, len(b))
	}
	if string(b[:8]) != stateMagic {
		return nil, fmt.Errorf("%w: no magic", ErrState)
	}
	body, sum := b[:len(b)-HashSize], b[len(b)-HashSize:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum does not match", ErrState)
	}
	s := newState(m)
	if !bytes.Equal(b[8:8+HashSize], s.manifest[:]) {
		return nil, fmt.Errorf("%w: it belongs to another manifest", ErrState)
	}
	n := int(binary.BigEndian.Uint32(b[8+HashSize : fixed]))
	if n != m.Chunks {
		return nil, fmt.Errorf("%w: %d chunks, the manifest has %d", ErrState, n, m.Chunks)
	}
	rest := body[fixed:]
	if len(rest) < (n+7)/8 {
		return nil, fmt.Errorf("%w: bitmap cut short", ErrState)
	}
	bits, rest := rest[:(n+7)/8], rest[(n+7)/8:]
	held := 0
	for i := range len(bits) * 8 {
		if bits[i/8]&(0x80>>(i%8)) == 0 {
			continue
		}
		if i >= n {
			return nil, fmt.Errorf("%w: bit %d set past %d chunks", ErrState, i, n)
		}
		if len(rest) < HashSize*(held+1) {
			return nil, fmt.Errorf("%w: leaves cut short", ErrState)
		}
		s.Have[i] = true
		copy(s.Leaves[i][:], rest[HashSize*held:])
		held++
	}
	if len(rest) != HashSize*held {
		return nil, fmt.Errorf("%w: %d bytes after the leaves", ErrState, len(rest)-HashSize*held)
	}
	return s, nil
}

// MemStorage keeps a transfer in memory (tests, the simulator). A new
// Assembler over the same MemStorage resumes from its last Sync.
type MemStorage struct {
	mu        sync.Mutex
	data      []byte
	state     []byte
	Committed []byte // the file, once committed
	discarded bool
}

// NewMemStorage returns an empty MemStorage.
func NewMemStorage() *MemStorage { return &MemStorage{} }

func (s *MemStorage) Load(m *Manifest) (*State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != nil {
		if st, err := ParseState(s.state, m); err == nil {
			return st, nil
		}
	}
	s.data = nil
	return newState(m), nil
}

func (s *MemStorage) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(s.data)) {
		s.data = append(s.data, make([]byte, end-int64(len(s.data)))...)
	}
	return copy(s.data[off:], p), nil
}

func (s *MemStorage) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *MemStorage) Sync(st *State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st.Marshal()
	return nil
}

func (s *MemStorage) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Committed, s.data, s.state = s.data, nil, nil
	if s.Committed == nil {
		s.Committed = []byte{}
	}
	return nil
}

func (s *MemStorage) Discard() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.state, s.discarded = nil, nil, true
	return nil
}

// FileStorage writes a transfer to a temporary file next to its destination
// (dest + ".part") and its progress to dest + ".part-state"; Commit renames
// the temporary file over dest, so dest appears whole or not at all.
type FileStorage struct {
	dest, part, state string
	f                 *os.File
	size              int64
}

// PartSuffix and StateSuffix name the files FileStorage keeps next to dest.
const (
	PartSuffix  = ".part"
	StateSuffix = ".part-state"
)

// NewFileStorage opens (or creates) the temporary file for dest.
func NewFileStorage(dest string) (*FileStorage, error) {
	s := &FileStorage{dest: dest, part: dest + PartSuffix, state: dest + StateSuffix}
	f, err := os.OpenFile(s.part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s.f = f
	return s, nil
}

func (s *FileStorage) Load(m *Manifest) (*State, error) {
	s.size = m.Size
	b, err := os.ReadFile(s.state)
	if err == nil {
		if st, perr := ParseState(b, m); perr == nil {
			return st, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// Nothing usable: start afresh.
	if err := s.f.Truncate(0); err != nil {
		return nil, err
	}
	return newState(m), nil
}

func (s *FileStorage) WriteAt(p []byte, off int64) (int, error) { return s.f.WriteAt(p, off) }
func (s *FileStorage) ReadAt(p []byte, off int64) (int, error)  { return s.f.ReadAt(p, off) }

// Sync fsyncs the data, then replaces the state file atomically.
func (s *FileStorage) Sync(st *State) error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	return writeAtomic(s.state, st.Marshal())
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Commit truncates the temporary file to the file's size, fsyncs it, renames
// it over dest and removes the state file.
func (s *FileStorage) Commit() error {
	if err := s.f.Truncate(s.size); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(s.part, s.dest); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.dest)); err != nil {
		return err
	}
	if err := os.Remove(s.state); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Discard removes the temporary and state files.
func (s *FileStorage) Discard() error {
	s.f.Close()
	var errs []error
	for _, p := range []string{s.part, s.state} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close releases the temporary file without committing; a later
// NewFileStorage for the same dest resumes from the last Sync.
func (s *FileStorage) Close() error { return s.f.Close() }
