package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/crypto/chacha20poly1305"
)

// FileName is the name of the database file inside the Grapevine home.
const FileName = "grapevine.db"

var (
	// ErrWrongPassphrase is returned by Open when the data key cannot be
	// unwrapped with the given passphrase.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNotInitialized is returned by Open when the home holds no store.
	ErrNotInitialized = errors.New("no grapevine store in this home")
	// ErrExists is returned by Create when the home already holds a store
	// (either of its two files).
	ErrExists = errors.New("a grapevine store already exists in this home")
	// ErrInUse is returned when the database stays locked by another
	// process (or another Store in this process) for Options.LockTimeout.
	ErrInUse = errors.New("the home is in use by another grapevine process")
)

// KDFParams are the Argon2id parameters used to derive the key-encryption key
// from the passphrase. They are stored in plaintext in the key file.
type KDFParams struct {
	Time      uint32 // iterations
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // parallelism (lanes)
}

// DefaultKDF is RFC 9106's second recommended option (t=3, m=64 MiB, p=4).
func DefaultKDF() KDFParams { return KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4} }

// TestKDF is deliberately weak and fast. Tests only.
func TestKDF() KDFParams { return KDFParams{Time: 1, MemoryKiB: 64, Threads: 1} }

// Options tune Create and Open.
type Options struct {
	KDF         KDFParams        // used by Create only; zero value means DefaultKDF()
	Now         func() time.Time // nil means time.Now; used for expiry decisions
	LockTimeout time.Duration    // zero (or negative) means 2s; on timeout ErrInUse
	// Erasable names the collections whose items must be really erased
	// when overwritten or deleted: each such item is sealed under its own
	// key, kept only in the key file and destroyed with the item (SPEC §7).
	// Writes decide by it; reads need not know it. A memory store ignores
	// it (nothing it holds outlives the process).
	Erasable []string
}

// Forever is the expiry for items that live until deleted (identity, active
// contacts): Unix second 2^40, in the year 36812. Expiries are stored as
// whole Unix seconds, so any expiry in [1970, Forever] round-trips exactly
// when it has no sub-second part.
var Forever = time.Unix(1<<40, 0).UTC()

const defaultLockTimeout = 2 * time.Second

// Buckets of the database, and its meta record.
const (
	bucketMeta   = "meta"
	bucketItems  = "items"
	bucketExpiry = "expiry"
	metaKey      = "store"
	storeMagic   = "grapevine-store-v2"
	metaSize     = len(storeMagic) + storeIDSize

	maxCollectionLen = 255
)

// Store is an open, unlocked store.
type Store struct {
	// mu makes a write transaction exclusive with every other transaction,
	// because the directory and the erasure table it changes are shared.
	mu      sync.RWMutex
	db      kvDB // *boltDB, or *memDB for CreateMemory
	now     func() time.Time
	seal    cipherAEAD
	sealKey []byte // for peekItem
	hasher  keyHasher
	// erasable is Options.Erasable; nil on a memory store.
	erasable map[string]bool
	// memory: a memory store, whose values never rest anywhere to be
	// sealed against: they are kept as their plaintexts, unpadded
	// (keepItem), and there is no expiry index to hide exact expiries
	// with: Sweep works from the directory's (sweepExact).
	memory  bool
	dir     directory
	undoBuf []dirUndo // lent to one write transaction at a time

	// File stores only.
	kf   *keyFile
	dek  []byte   // kept to rewrap it under a new passphrase
	keys itemKeys // the erasure table as committed; nil on a memory store
	// keysDirty means the key file may not hold exactly keys (a write to
	// it failed, or a commit failed after one): the next transaction
	// rewrites both slots first.
	keysDirty bool
	// commitHook, if set (tests only), runs just before the database
	// commit, after the key file holds the new keys.
	commitHook func()

	// warnings says what Open found wrong that did not stop it; unreadable
	// counts the items it could not read; ids are the files it opened.
	warnings   []string
	unreadable int
	ids        [2]os.FileInfo

	closeOnce sync.Once
	closeErr  error
}

// Exists reports whether dir holds a store: its database or its key file.
func Exists(dir string) bool {
	return isRegular(filepath.Join(dir, FileName)) || isRegular(filepath.Join(dir, KeyFileName))
}

func isRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func (o Options) boltOptions() *bolt.Options {
	t := o.LockTimeout
	if t <= 0 {
		t = defaultLockTimeout
	}
	return &bolt.Options{
		Timeout:      t,
		FreelistType: bolt.FreelistMapType,
		NoSync:       false,
	}
}

func (o Options) clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

func openBolt(path string, o Options) (*bolt.DB, error) {
	db, _, err := openBoltWith(path, o.boltOptions())
	return db, err
}

// openBoltWith opens the database under guard. If bbolt panics on a
// damaged page halfway through opening, the file it opened (and locked) is
// closed here, so that the lock does not outlive the failed open.
func openBoltWith(path string, bo *bolt.Options) (*bolt.DB, [2]rawMeta, error) {
	metas, err := precheck(path)
	if err != nil {
		return nil, metas, err
	}
	var file *os.File
	bo.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, bo)
		return err
	})
	if db == nil && file != nil {
		file.Close() // bbolt closes it on an error it returns; not on a panic
	}
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, metas, ErrInUse
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, metas, &CorruptError{File: path, Detail: fmt.Sprintf("neither of its two meta pages is intact (%v)", err)}
	case err != nil:
		return nil, metas, err
	}
	return db, metas, nil
}

// newStore derives the subkeys from dek (which it copies) and returns the
// store and the erasure table's cipher; the caller sets s.db.
func newStore(dek []byte, opts Options) (*Store, cipherAEAD, error) {
	keys, err := subkeys(dek)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to derive store subkeys: %w", err)
	}
	defer clear(keys.index)
	defer clear(keys.table)
	seal, err := chacha20poly1305.NewX(keys.seal)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to derive store subkeys: %w", err)
	}
	table, err := chacha20poly1305.NewX(keys.table)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to derive store subkeys: %w", err)
	}
	s := &Store{now: opts.clock(), seal: seal, sealKey: keys.seal, dek: bytes.Clone(dek), dir: newDirectory()}
	s.hasher.init(keys.index)
	s.erasable = make(map[string]bool, len(opts.Erasable))
	for _, c := range opts.Erasable {
		s.erasable[c] = true
	}
	return s, table, nil
}

// Create makes a new store in dir (created 0700 if missing) protected by
// passphrase: the key file first, then the database, both 0600. It refuses
// a home holding either file with ErrExists, and removes what it created
// if it fails.
func Create(dir string, passphrase []byte, opts Options) (*Store, error) {
	kdf := opts.KDF
	if kdf == (KDFParams{}) {
		kdf = DefaultKDF()
	}
	if err := kdf.validate(); err != nil {
		return nil, fmt.Errorf("failed to create store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create store directory: %w", err)
	}
	if Exists(dir) {
		return nil, ErrExists
	}
	s, err := create(dir, passphrase, kdf, opts)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		s.Close()
		removeStoreFiles(dir)
		return nil, err
	}
	return s, nil
}

func create(dir string, passphrase []byte, kdf KDFParams, opts Options) (*Store, error) {
	hdr := keySlot{kdf: kdf}
	dek := make([]byte, keySize)
	defer clear(dek)
	for _, b := range [][]byte{hdr.salt[:], hdr.wrapNonce[:], hdr.id[:], dek} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("failed to generate store keys: %w", err)
		}
	}
	kek := deriveKEK(passphrase, hdr.salt[:], kdf)
	defer clear(kek)
	if err := hdr.wrapDEK(kek, dek); err != nil {
		return nil, fmt.Errorf("failed to wrap data key: %w", err)
	}
	s, tableAEAD, err := newStore(dek, opts)
	if err != nil {
		return nil, err
	}
	s.keys = itemKeys{}
	keyPath, dbPath := filepath.Join(dir, KeyFileName), filepath.Join(dir, FileName)
	if s.kf, err = createKeyFile(keyPath, hdr, tableAEAD); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrExists
		}
		_ = os.Remove(keyPath)
		return nil, fmt.Errorf("failed to create key file: %w", err)
	}
	if err := createDB(s, dbPath, hdr.id, opts); err != nil {
		s.kf.close()
		_ = os.Remove(keyPath)
		return nil, err
	}
	return s, nil
}

// createDB creates the database file (refusing an existing one) with its
// meta record and empty buckets.
func createDB(s *Store, path string, id [storeIDSize]byte, opts Options) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return fmt.Errorf("failed to create store file: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("failed to create store file: %w", err)
	}
	db, err := openBolt(path, opts)
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("failed to open store file: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := mb.Put([]byte(metaKey), append([]byte(storeMagic), id[:]...)); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte(bucketItems)); err != nil {
			return err
		}
		_, err = tx.CreateBucket([]byte(bucketExpiry))
		return err
	})
	if err != nil {
		_ = db.Close()
		_ = os.Remove(path)
		return fmt.Errorf("failed to write store meta record: %w", err)
	}
	s.db = &boltDB{db: db, path: path}
	return nil
}

// Open opens the store in dir with passphrase. Nothing is written before
// the passphrase has been verified; a wrong passphrase returns
// ErrWrongPassphrase and leaves both files byte-identical. After a crash,
// Open finishes what the key file protocol left undone (SPEC §7).
func Open(dir string, passphrase []byte, opts Options) (*Store, error) {
	dbPath, keyPath := filepath.Join(dir, FileName), filepath.Join(dir, KeyFileName)
	if err := checkFiles(dbPath, keyPath); err != nil {
		return nil, err
	}
	db, metas, err := openBoltWith(dbPath, opts.boltOptions())
	if err != nil {
		if errors.Is(err, ErrInUse) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("failed to open store file: %w", err)
	}
	// One meta page that does not verify: bbolt uses the other, which may
	// be one transaction older (a torn write at a crash, or damage).
	metaDamaged := metas[0].valid != metas[1].valid
	s, err := unlock(db, dbPath, keyPath, passphrase, opts, metaDamaged)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// checkFiles makes sure both files are there, with errors that name the
// one that is not.
func checkFiles(dbPath, keyPath string) error {
	dbFi, dbErr := os.Stat(dbPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case errors.Is(dbErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return ErrNotInitialized
	case errors.Is(dbErr, fs.ErrNotExist):
		return fmt.Errorf("failed to open store: %s is missing, but %s is there (an interrupted create, or part of a home); nothing can be opened without both", dbPath, KeyFileName)
	case dbErr != nil:
		return fmt.Errorf("failed to open store: %w", dbErr)
	case !dbFi.Mode().IsRegular():
		return fmt.Errorf("failed to open store: %s is not a regular file", dbPath)
	case dbFi.Size() == 0:
		// bbolt would initialise an empty file; refuse instead (this is
		// what an interrupted Create leaves behind).
		return fmt.Errorf("failed to open store: %s is empty (interrupted create?); remove it and %s, and create again", dbPath, KeyFileName)
	case errors.Is(keyErr, fs.ErrNotExist):
		return fmt.Errorf("failed to open store: the key file %s is missing; without it nothing in %s can be read", keyPath, FileName)
	case keyErr != nil:
		return fmt.Errorf("failed to open store: %w", keyErr)
	}
	return nil
}

// unlock reads the key file (under the database lock, so that no other
// process is writing it), checks that it belongs to the database, unwraps
// the data key and loads the directory.
func unlock(db *bolt.DB, dbPath, keyPath string, passphrase []byte, opts Options, metaDamaged bool) (*Store, error) {
	kf, sl, err := readKeyFile(keyPath)
	if errors.Is(err, errCorruptKeyFile) {
		return nil, fmt.Errorf("failed to open store: %w", &CorruptError{File: keyPath, Detail: err.Error()})
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open store: key file %s: %w", keyPath, err)
	}
	s, err := unlockWith(kf, sl, db, dbPath, passphrase, opts, metaDamaged)
	if err != nil {
		kf.close()
		return nil, err
	}
	return s, nil
}

func unlockWith(kf *keyFile, sl *keySlot, db *bolt.DB, dbPath string, passphrase []byte, opts Options, metaDamaged bool) (*Store, error) {
	if err := checkMeta(db, sl.id); err != nil {
		return nil, fmt.Errorf("failed to open store: %w", err)
	}
	kek := deriveKEK(passphrase, sl.salt[:], sl.kdf)
	defer clear(kek)
	dek, err := sl.unwrapDEK(kek)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	s, tableAEAD, err := newStore(dek, opts)
	if err != nil {
		return nil, err
	}
	kf.aead = tableAEAD
	if s.keys, err = sl.openTable(tableAEAD); err != nil {
		return nil, fmt.Errorf("failed to open store: key file %s: %w", kf.path, err)
	}
	s.kf, s.db = kf, &boltDB{db: db, path: dbPath}
	repair, missing, err := s.load()
	if err != nil {
		return nil, fmt.Errorf("failed to open store: %w", err)
	}
	if metaDamaged && missing > 0 {
		// The key file holds keys of items the database no longer has, and
		// the database fell back to its older meta page: it lost its last
		// transaction. Dropping those keys (what crash repair does) would
		// make that transaction unrecoverable; write nothing, and say so.
		return nil, fmt.Errorf("failed to open store: %w", &CorruptError{File: dbPath, Detail: fmt.Sprintf(
			"its newest meta page is damaged, so it shows the state before its last change, and %s holds keys of %d items it no longer has: that change is lost unless repaired. Nothing was written",
			KeyFileName, missing)})
	}
	if metaDamaged {
		s.warnings = append(s.warnings, fmt.Sprintf("one of the two meta pages of %s is damaged: if it was the newer one, the last change written before it was damaged is lost", dbPath))
	}
	if s.unreadable > 0 {
		s.warnings = append(s.warnings, fmt.Sprintf("%d items in %s cannot be read (damaged, or their keys are lost from %s)", s.unreadable, dbPath, KeyFileName))
	}
	s.ids, _ = fileIDs(dbPath, kf)
	if repair || kf.needsRepair(sl, s.keys) {
		if err := kf.write(s.keys, true); err != nil {
			return nil, fmt.Errorf("failed to open store: failed to repair key file: %w", err)
		}
	}
	return s, nil
}

// checkMeta checks the database's meta record against the key file's id.
func checkMeta(db *bolt.DB, id [storeIDSize]byte) error {
	return guard(db.Path(), func() error {
		return db.View(func(tx *bolt.Tx) error {
			corrupt := func(detail string) error { return &CorruptError{File: db.Path(), Detail: detail} }
			mb := tx.Bucket([]byte(bucketMeta))
			if mb == nil {
				return corrupt("it has no meta record (not a grapevine store, or its first pages are damaged)")
			}
			m := mb.Get([]byte(metaKey))
			switch {
			case len(m) != metaSize || string(m[:len(storeMagic)]) != storeMagic:
				return corrupt("its meta record is not that of a grapevine store of this version")
			case !bytes.Equal(m[len(storeMagic):], id[:]):
				return fmt.Errorf("the key file %s belongs to another store than %s", KeyFileName, db.Path())
			case tx.Bucket([]byte(bucketItems)) == nil || tx.Bucket([]byte(bucketExpiry)) == nil:
				return corrupt("a bucket is missing")
			}
			return nil
		})
	})
}

// Close releases the file lock and forgets the keys (a memory store drops
// all its data). It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		var errs []error
		if s.kf != nil {
			errs = append(errs, s.flushKeys(), s.kf.close())
		}
		errs = append(errs, s.db.close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("failed to close store: %w", err)
		}
		clear(s.dek)
		clear(s.sealKey)
		clear(s.keys)
	})
	return s.closeErr
}

// flushKeys rewrites both key file slots if they may not hold exactly the
// committed keys.
func (s *Store) flushKeys() error {
	if !s.keysDirty {
		return nil
	}
	if err := s.kf.write(s.keys, true); err != nil {
		return err
	}
	s.keysDirty = false
	return nil
}

// Update runs fn in one read-write transaction. If fn returns nil the
// transaction is committed (and, for a file store, fsynced) before Update
// returns; otherwise it is rolled back and fn's error returned. A
// transaction that touched erasable items also writes the key file (SPEC
// §7, commit protocol); if only its last step fails, Update reports an
// error although the transaction is committed, because the keys it
// replaced are not yet erased (the next Update tries again).
func (s *Store) Update(fn func(*Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kf != nil {
		if err := s.flushKeys(); err != nil {
			return fmt.Errorf("failed to start transaction: %w", err)
		}
	}
	tx := &Tx{s: s, now: s.nowSec(), writable: true, undo: s.undoBuf[:0]}
	committed := false
	defer func() {
		// Also runs when fn panics.
		tx.done = true
		if !committed {
			s.dir.undo(tx.undo)
		}
		if cap(tx.undo) <= maxKeptUndo {
			clear(tx.undo)
			s.undoBuf = tx.undo[:0]
		}
	}()
	err := s.db.update(func(ktx kvTx) error {
		tx.tx = ktx
		if err := fn(tx); err != nil {
			return err
		}
		return tx.beforeCommit()
	})
	if err != nil {
		return err
	}
	committed = true
	return tx.afterCommit()
}

// maxKeptUndo bounds the undo log storage kept between transactions: a
// typical one reuses it, and the rare large one (a sweep, a batch of 512
// envelopes) allocates its own rather than leave every store holding the
// largest it ever ran — 80 KB a node in the simulator, where the sweep
// after setup grew each memory store's log to hundreds of entries
// (170 MB of 10,000 nodes' peak live heap).
const maxKeptUndo = 64

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.view(func(ktx kvTx) error {
		tx := &Tx{tx: ktx, s: s, now: s.nowSec()}
		defer func() { tx.done = true }()
		return fn(tx)
	})
}

// nowSec is the current time in whole Unix seconds, clamped at 0.
func (s *Store) nowSec() uint64 {
	n := s.now().Unix()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// FileSize returns the size of the store's two files in bytes. A memory
// store has no file: it returns the total length of the keys and values a
// file store would hold for its items (hashed keys, sealed values and
// expiry index entries; keptSize), which grows and shrinks with its
// contents.
func (s *Store) FileSize() (int64, error) {
	n, err := s.db.size()
	if err != nil || s.kf == nil {
		return n, err
	}
	fi, err := os.Stat(s.kf.path)
	if err != nil {
		return 0, fmt.Errorf("failed to stat key file: %w", err)
	}
	return n + fi.Size(), nil
}

// ReleaseMemory tells the kernel that the database's pages need not stay
// resident in this process: they stay in the page cache and come back on
// the next access. It is only advice and ignores errors. It does nothing on
// a memory store, nor on platforms without madvise.
func (s *Store) ReleaseMemory() {
	s.db.releaseMemory()
}

// Sweep removes every item whose coarse expiry is <= Now() (it has expired:
// the coarse expiry is never before the exact one), and renews the clear
// expiry of items kept beyond the horizon, in one durable transaction. It
// returns how many items it removed. A memory store's expiries are exact:
// it removes every item that has expired, and has nothing to renew.
func (s *Store) Sweep() (removed int, err error) {
	// Look first, so that a store with nothing due is not written to.
	var due bool
	if err := s.View(func(tx *Tx) error { due = tx.anyDue(); return nil }); err != nil || !due {
		return 0, err
	}
	err = s.Update(func(tx *Tx) error {
		n, err := tx.sweep()
		removed = n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("failed to sweep store: %w", err)
	}
	return removed, nil
}
