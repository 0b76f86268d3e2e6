package attach

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Errors from finishing a transfer.
var (
	ErrIncomplete = errors.New("attachment incomplete")
	ErrDamaged    = errors.New("attachment damaged in storage")
)

// Progress is how far a transfer has come.
type Progress struct {
	Have, Total int // chunks held and verified, of the file's
	// Sources is how many distinct sources (the opaque labels passed to Add)
	// gave at least one new chunk since this Assembler started; Resumed is
	// how many chunks were already held when it started. Sources are kept in
	// memory only: a seized device does not tell who carried what.
	Sources int
	Resumed int
}

func (p Progress) String() string {
	s := fmt.Sprintf("%d of %d chunks", p.Have, p.Total)
	if p.Sources > 0 {
		s += fmt.Sprintf(" from %d source%s", p.Sources, map[bool]string{true: "", false: "s"}[p.Sources == 1])
	}
	if p.Resumed > 0 {
		s += fmt.Sprintf(" (%d resumed)", p.Resumed)
	}
	return s
}

// Assembler rebuilds one file from its chunks as they come, in any order and
// from any source. It is safe for concurrent use.
type Assembler struct {
	mu      sync.Mutex
	m       *Manifest
	ks      *Keys
	st      Storage
	state   *State
	have    int
	resumed int
	sources map[string]bool
	dirty   bool
	done    bool
}

// NewAssembler starts or resumes the transfer of m's file in st.
func NewAssembler(m *Manifest, st Storage) (*Assembler, error) {
	state, err := st.Load(m)
	if err != nil {
		return nil, err
	}
	a := &Assembler{m: m, ks: NewKeys(m), st: st, state: state, sources: map[string]bool{}}
	for _, h := range state.Have {
		if h {
			a.have++
		}
	}
	a.resumed = a.have
	return a, nil
}

// Keys returns the file's key schedule (its tags, to recognise its chunks).
func (a *Assembler) Keys() *Keys { return a.ks }

// Add opens raw as a chunk of the file, checks it (Keys.Open) and writes its
// data. It returns the chunk's index; a chunk already held is ErrDuplicate
// and changes nothing. Progress is durable only after Sync.
func (a *Assembler) Add(raw []byte, source string) (int, error) {
	o, err := a.ks.Open(raw)
	if err != nil {
		return -1, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return o.Index, fmt.Errorf("%w: chunk %d of a finished file", ErrDuplicate, o.Index)
	}
	if a.state.Have[o.Index] {
		return o.Index, fmt.Errorf("%w: chunk %d is already held", ErrDuplicate, o.Index)
	}
	if len(o.Data) > 0 {
		if _, err := a.st.WriteAt(o.Data, int64(o.Index)*int64(a.m.ChunkSize)); err != nil {
			return o.Index, fmt.Errorf("writing chunk %d: %w", o.Index, err)
		}
	}
	a.state.Have[o.Index] = true
	a.state.Leaves[o.Index] = o.Leaf
	a.have++
	a.sources[source] = true
	a.dirty = true
	return o.Index, nil
}

// Sync makes every chunk added so far durable, with the record of which
// they are.
func (a *Assembler) Sync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.syncLocked()
}

func (a *Assembler) syncLocked() error {
	if !a.dirty {
		return nil
	}
	if err := a.st.Sync(a.state); err != nil {
		return err
	}
	a.dirty = false
	return nil
}

// Progress reports how far the transfer has come.
func (a *Assembler) Progress() Progress {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Progress{Have: a.have, Total: a.m.Chunks, Sources: len(a.sources), Resumed: a.resumed}
}

// Complete reports whether every chunk is held.
func (a *Assembler) Complete() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.have == a.m.Chunks
}

// Missing returns the indices of the chunks not yet held.
func (a *Assembler) Missing() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int
	for i, h := range a.state.Have {
		if !h {
			out = append(out, i)
		}
	}
	return out
}

// Finish verifies the whole file — every chunk read back from storage against
// the leaf it had when it was verified, and the root over all of them — and
// commits it. A missing chunk is ErrIncomplete (naming it); a chunk whose
// bytes changed in storage is ErrDamaged and is wanted again (it is dropped
// from the progress, which is synced).
func (a *Assembler) Finish() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return nil
	}
	if a.have < a.m.Chunks {
		var missing []string
		for i, h := range a.state.Have {
			if !h && len(missing) < 8 {
				s := fmt.Sprint(i)
				if i == a.m.Chunks-1 {
					s += " (the last)"
				}
				missing = append(missing, s)
			}
		}
		more := ""
		if n := a.m.Chunks - a.have; n > len(missing) {
			more = ", …"
		}
		return fmt.Errorf("%w: missing %d of %d chunks: %s%s", ErrIncomplete, a.m.Chunks-a.have, a.m.Chunks,
			strings.Join(missing, ", "), more)
	}
	buf := make([]byte, a.m.ChunkSize)
	var damaged []int
	for i := range a.m.Chunks {
		data := buf[:a.m.ChunkLen(i)]
		if len(data) > 0 {
			if _, err := a.st.ReadAt(data, int64(i)*int64(a.m.ChunkSize)); errors.Is(err, io.EOF) {
				damaged = append(damaged, i) // the temporary file was cut short
				continue
			} else if err != nil {
				return fmt.Errorf("reading chunk %d back: %w", i, err)
			}
		}
		if LeafHash(data) != a.state.Leaves[i] {
			damaged = append(damaged, i)
		}
	}
	if len(damaged) > 0 {
		for _, i := range damaged {
			a.state.Have[i] = false
			a.state.Leaves[i] = [HashSize]byte{}
			a.have--
		}
		a.dirty = true
		err := a.syncLocked()
		return errors.Join(fmt.Errorf("%w: chunks %v changed since they were verified; they are wanted again", ErrDamaged, damaged), err)
	}
	if Root(a.state.Leaves) != a.m.Root {
		// Only a damaged progress record gets here (every leaf was checked
		// against the root when its chunk came): start afresh.
		a.state, a.have, a.dirty = newState(a.m), 0, true
		err := a.syncLocked()
		return errors.Join(fmt.Errorf("%w: the chunks' root is not the manifest's; every chunk is wanted again", ErrDamaged), err)
	}
	if err := a.syncLocked(); err != nil {
		return err
	}
	if err := a.st.Commit(); err != nil {
		return err
	}
	a.done = true
	return nil
}
