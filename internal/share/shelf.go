// Package share owns the shelf of Grapevine releases a node hands on to
// others — files it verified against the release key, each beside its
// minisign signature — and the download page that serves them to someone
// without Grapevine, over a hotspot, to any browser.
//
// Nothing is offered unverified: a file is verified when it is put on the
// shelf and again whenever the shelf is scanned, and a file that changed
// since its scan is not served.
package share

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/release"
)

// MaxSig bounds a signature file (minisign's are about 300 bytes).
const MaxSig = 4096

// Item is one verified release file on the shelf.
type Item struct {
	Name     string    `json:"name"` // the file name, as the signature names it
	Version  string    `json:"version,omitempty"`
	Platform string    `json:"platform,omitempty"` // GOOS/GOARCH; empty for a file that is not a binary
	Commit   string    `json:"commit,omitempty"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	modTime  time.Time // when it was verified, to notice a change
}

// Shelf is a directory of release files and their signatures.
type Shelf struct {
	dir string
	key release.PublicKey
}

// Open opens the shelf in dir (creating it), whose files must verify under key.
func Open(dir string, key release.PublicKey) (*Shelf, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create the shelf %s: %w", dir, err)
	}
	return &Shelf{dir: dir, key: key}, nil
}

// Dir is the shelf's directory.
func (s *Shelf) Dir() string { return s.dir }

// Key is the key the shelf's files verify under.
func (s *Shelf) Key() release.PublicKey { return s.key }

// Add verifies the file at path against its signature (sigPath, or
// path.minisig when empty) and copies both onto the shelf under the name
// the signature vouches for. A file that does not verify is refused, and
// nothing on the shelf changes.
func (s *Shelf) Add(path, sigPath string) (Item, error) {
	if sigPath == "" {
		sigPath = path + release.SigSuffix
	}
	sig, err := readSig(sigPath)
	if err != nil {
		return Item{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Item{}, fmt.Errorf("failed to open the release file: %w", err)
	}
	defer f.Close()
	return s.add(f, sig, filepath.Base(path))
}

// ErrRefused is wrapped by AddData's errors when the file does not verify
// (rather than when the shelf failed).
var ErrRefused = errors.New("refused")

type refusal struct{ err error }

func (r refusal) Error() string   { return r.err.Error() }
func (r refusal) Unwrap() []error { return []error{r.err, ErrRefused} }

// AddData is Add for a file held in memory (one fetched over the mesh):
// data must verify against sig and be the file the signature names, want.
// A file that does not is refused (ErrRefused) and nothing is written.
func (s *Shelf) AddData(data, sig []byte, want string) (Item, error) {
	it, err := s.verify(bytes.NewReader(data), sig, "")
	if err != nil {
		return Item{}, refusal{err}
	}
	if it.Name != want {
		return Item{}, refusal{fmt.Errorf("REFUSED: the signature is for %q, not %q", it.Name, want)}
	}
	return s.add(bytes.NewReader(data), sig, want)
}

// add verifies the content of f against sig and writes both onto the shelf.
func (s *Shelf) add(f io.ReadSeeker, sig []byte, fallback string) (Item, error) {
	it, err := s.verify(f, sig, fallback)
	if err != nil {
		return Item{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Item{}, fmt.Errorf("failed to read the release file again: %w", err)
	}
	dst := filepath.Join(s.dir, it.Name)
	if err := writeAtomic(dst, f); err != nil {
		return Item{}, err
	}
	if err := writeAtomic(dst+release.SigSuffix, bytes.NewReader(sig)); err != nil {
		return Item{}, err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return Item{}, fmt.Errorf("failed to add the release file: %w", err)
	}
	it.modTime = st.ModTime()
	return it, nil
}

// Has reports whether the shelf holds a file named name (verified or not:
// a name taken is not fetched again).
func (s *Shelf) Has(name string) bool {
	if checkName(name) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.dir, name))
	return err == nil
}

// Load reads a file of the shelf and its signature, verified again as they
// are read: what is offered is what the key signed now, not at some scan.
func (s *Shelf) Load(name string) (data, sig []byte, it Item, err error) {
	if err := checkName(name); err != nil {
		return nil, nil, Item{}, err
	}
	path := filepath.Join(s.dir, name)
	if sig, err = readSig(path + release.SigSuffix); err != nil {
		return nil, nil, Item{}, err
	}
	if data, err = os.ReadFile(path); err != nil {
		return nil, nil, Item{}, fmt.Errorf("failed to read %s from the shelf: %w", name, err)
	}
	if it, err = s.verify(bytes.NewReader(data), sig, name); err != nil {
		return nil, nil, Item{}, fmt.Errorf("%s: %w", name, err)
	}
	if it.Name != name {
		return nil, nil, Item{}, fmt.Errorf("%s: the signature is for %q", name, it.Name)
	}
	return data, sig, it, nil
}

// Scan verifies every file on the shelf. It returns the files that verify,
// sorted by name, and an error naming each file that does not (or a
// signature without its file).
func (s *Shelf) Scan() ([]Item, []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("failed to read the shelf %s: %w", s.dir, err)}
	}
	var items []Item
	var problems []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case !e.Type().IsRegular() || strings.HasPrefix(name, "."):
			continue
		case strings.HasSuffix(name, release.SigSuffix):
			if _, err := os.Stat(filepath.Join(s.dir, strings.TrimSuffix(name, release.SigSuffix))); err != nil {
				problems = append(problems, fmt.Errorf("%s: a signature without its file", name))
			}
			continue
		}
		it, err := s.check(name)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			continue
		}
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b Item) int { return strings.Compare(a.Name, b.Name) })
	return items, problems
}

// check verifies the shelf's file name against its signature.
func (s *Shelf) check(name string) (Item, error) {
	path := filepath.Join(s.dir, name)
	sig, err := readSig(path + release.SigSuffix)
	if err != nil {
		return Item{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Item{}, fmt.Errorf("failed to open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Item{}, fmt.Errorf("failed to read: %w", err)
	}
	it, err := s.verify(f, sig, name)
	if err != nil {
		return Item{}, err
	}
	if it.Name != name {
		return Item{}, fmt.Errorf("the signature is for %q", it.Name)
	}
	it.modTime = st.ModTime()
	return it, nil
}

// verify checks the content of r against sig and describes it; fallback
// names a file whose signature names none.
func (s *Shelf) verify(r io.Reader, sig []byte, fallback string) (Item, error) {
	h := sha256.New()
	n := &counter{}
	trusted, err := release.Verify(s.key, io.TeeReader(r, io.MultiWriter(h, n)), sig)
	if errors.Is(err, release.ErrBadSignature) {
		return Item{}, fmt.Errorf("REFUSED, not what the release key signed: %w", err)
	} else if err != nil {
		return Item{}, fmt.Errorf("failed to verify: %w", err)
	}
	tc := release.ParseTrustedComment(trusted)
	name := tc["file"]
	if name == "" {
		name = fallback
	}
	if err := checkName(name); err != nil {
		return Item{}, err
	}
	return Item{Name: name, Version: tc["version"], Platform: tc["platform"], Commit: tc["commit"],
		Size: n.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkName accepts the names releases have (grapevine-v0.3.0-linux-arm64,
// SHA256SUMS): letters, digits and ".-+_", not starting with a dot, and
// never a signature's name.
func checkName(name string) error {
	switch {
	case name == "" || len(name) > 128 || name[0] == '.':
		return fmt.Errorf("the signed file name %q is not a release file's name", name)
	case strings.HasSuffix(name, release.SigSuffix):
		return fmt.Errorf("the signed file name %q is a signature's", name)
	case !release.PlainName(name):
		return fmt.Errorf("the signed file name %q has characters a release file's name does not", name)
	}
	return nil
}

func readSig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no signature %s beside the file", filepath.Base(path))
	} else if err != nil {
		return nil, fmt.Errorf("failed to open the signature: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSig+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read the signature: %w", err)
	}
	if len(b) > MaxSig {
		return nil, fmt.Errorf("the signature %s is over %d bytes: not a minisign signature", filepath.Base(path), MaxSig)
	}
	return b, nil
}

// writeAtomic writes r to path through a temporary file in its directory,
// so that a reader never sees half a file.
func writeAtomic(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".adding-*")
	if err != nil {
		return fmt.Errorf("failed to add to the shelf: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to copy onto the shelf: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to copy onto the shelf: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to copy onto the shelf: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("failed to add to the shelf: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to add to the shelf: %w", err)
	}
	return nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
