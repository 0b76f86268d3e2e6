package store

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Churn leaves a store file larger than what it holds: bbolt never shrinks a
// file, pages freed while a reader runs are reused late, and random keys
// leave pages half full. Under a flood of junk that the relay quota keeps
// evicting, that grew a home to over three times its quota (SPEC §12.4).
// Compact rewrites the file with only what it holds.

// compactSuffix names the copy being written; a copy left by a crash is
// removed by the next Compact.
const compactSuffix = ".compact"

// Waste reports how many bytes of the store file hold nothing (free and
// pending pages), and the file's size. A memory store wastes nothing.
func (s *Store) Waste() (waste, size int64, err error) {
	d, ok := s.db.(*boltDB)
	if !ok {
		return 0, 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if size, err = d.size(); err != nil {
		return 0, 0, err
	}
	st := d.db.Stats()
	return min(size, int64(st.FreeAlloc)+int64(st.PendingPageN)*int64(d.db.Info().PageSize)), size, nil
}

// Compact rewrites the store file without its free pages and returns its
// size before and after. Items are copied as they are stored — sealed,
// under the same keys — so nothing is decrypted and the key file does not
// change. The copy is written and fsynced beside the file, locked by this
// process, then renamed over it: a crash leaves the old file or the new one,
// whole, and no other process can open the file in between. It holds the
// store's write lock while it copies. A memory store is left as it is.
func (s *Store) Compact() (before, after int64, err error) {
	d, ok := s.db.(*boltDB)
	if !ok {
		return 0, 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if before, err = d.size(); err != nil {
		return 0, 0, err
	}
	tmp := d.path + compactSuffix
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return 0, 0, fmt.Errorf("failed to remove an old copy: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: defaultLockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, 0, fmt.Errorf("failed to create the compacted copy: %w", err)
	}
	abandon := func(err error) (int64, int64, error) {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("failed to compact the store: %w", err)
	}
	if err := guard(d.path, func() error { return bolt.Compact(dst, d.db, 4<<20) }); err != nil {
		return abandon(err)
	}
	if err := dst.Sync(); err != nil {
		return abandon(err)
	}
	if err := os.Rename(tmp, d.path); err != nil {
		return abandon(err)
	}
	// From here the new file is the store, whatever happens: keep it.
	if err := syncDir(filepath.Dir(d.path)); err != nil {
		s.warnings = append(s.warnings, fmt.Sprintf("compacted store: directory not synced: %v", err))
	}
	old := d.db
	d.db = dst
	if err := old.Close(); err != nil {
		s.warnings = append(s.warnings, fmt.Sprintf("compacted store: closing the old file: %v", err))
	}
	if fi, err := os.Stat(d.path); err == nil {
		if s.ids[0] != nil {
			s.ids[0] = fi // CheckFiles: the new file is ours
		}
		after = fi.Size()
	}
	return before, after, nil
}
