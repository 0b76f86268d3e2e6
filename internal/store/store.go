package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// FileName is the name of the store file inside the Grapevine home.
const FileName = "grapevine.db"

var (
	// ErrWrongPassphrase is returned by Open when the data key cannot be
	// unwrapped with the given passphrase.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNotInitialized is returned by Open when the home holds no store file.
	ErrNotInitialized = errors.New("no grapevine store in this home")
	// ErrExists is returned by Create when the home already holds a store file.
	ErrExists = errors.New("a grapevine store already exists in this home")
	// ErrInUse is returned when the store file stays locked by another
	// process (or another Store in this process) for Options.LockTimeout.
	ErrInUse = errors.New("the home is in use by another grapevine process")
)

// KDFParams are the Argon2id parameters used to derive the key-encryption key
// from the passphrase. They are stored in plaintext in the meta record.
type KDFParams struct {
	Time      uint32 // iterations
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // parallelism (lanes)
}

// DefaultKDF is RFC 9106's second recommended option (t=3, m=64 MiB, p=4).
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// TestKDF is deliberately weak and fast. Tests only.
var TestKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// Options tune Create and Open.
type Options struct {
	KDF         KDFParams        // used by Create only; zero value means DefaultKDF
	Now         func() time.Time // nil means time.Now; used for expiry decisions
	LockTimeout time.Duration    // zero (or negative) means 2s; on timeout ErrInUse
}

// Forever is the expiry for items that live until deleted (identity, active
// contacts): Unix second 2^40, in the year 36812. Expiries are stored as
// whole Unix seconds, so any expiry in [1970, Forever] round-trips exactly
// when it has no sub-second part.
var Forever = time.Unix(1<<40, 0).UTC()

const defaultLockTimeout = 2 * time.Second

// Bucket names reserved for the store itself.
const (
	bucketMeta   = "meta"
	bucketExpiry = "expiry"
	metaKey      = "store"

	maxCollectionLen = 255
)

// Store is an open, unlocked store.
type Store struct {
	db     kvDB // *boltDB, or *memDB for CreateMemory
	now    func() time.Time
	seal   cipherAEAD
	hasher keyHasher // hashKey under the index key

	closeOnce sync.Once
	closeErr  error
}

// Exists reports whether dir holds a store file.
func Exists(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, FileName))
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
	db, err := bolt.Open(path, 0o600, o.boltOptions())
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, ErrInUse
		}
		return nil, err
	}
	return db, nil
}

// Create makes a new store in dir (created 0700 if missing) protected by
// passphrase. The file is created 0600. It refuses an existing store file
// with ErrExists.
func Create(dir string, passphrase []byte, opts Options) (*Store, error) {
	kdf := opts.KDF
	if kdf == (KDFParams{}) {
		kdf = DefaultKDF
	}
	if err := kdf.validate(); err != nil {
		return nil, fmt.Errorf("failed to create store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create store directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrExists
		}
		return nil, fmt.Errorf("failed to create store file: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("failed to create store file: %w", err)
	}
	s, err := create(path, passphrase, kdf, opts)
	if err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	return s, nil
}

func create(path string, passphrase []byte, kdf KDFParams, opts Options) (*Store, error) {
	var salt [saltSize]byte
	var nonce [nonceSize]byte
	dek := make([]byte, keySize)
	defer clear(dek)
	for _, b := range [][]byte{salt[:], nonce[:], dek} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("failed to generate store keys: %w", err)
		}
	}
	kek := deriveKEK(passphrase, salt[:], kdf)
	defer clear(kek)
	m, err := newMeta(kek, dek, kdf, salt, nonce)
	if err != nil {
		return nil, fmt.Errorf("failed to wrap data key: %w", err)
	}
	s, err := newStore(dek, opts)
	if err != nil {
		return nil, err
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to open store file: %w", err)
	}
	s.db = &boltDB{db: db, path: path}
	err = db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := mb.Put([]byte(metaKey), marshalMeta(m)); err != nil {
			return err
		}
		_, err = tx.CreateBucket([]byte(bucketExpiry))
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("failed to write store meta record: %w", err)
	}
	return s, nil
}

// newStore derives the subkeys from dek; the caller sets s.db.
func newStore(dek []byte, opts Options) (*Store, error) {
	sealKey, indexKey, err := subkeys(dek)
	if err != nil {
		return nil, fmt.Errorf("failed to derive store subkeys: %w", err)
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	clear(sealKey)
	if err != nil {
		return nil, fmt.Errorf("failed to derive store subkeys: %w", err)
	}
	s := &Store{now: opts.clock(), seal: aead}
	s.hasher.init(indexKey)
	return s, nil
}

// Open opens the store in dir with passphrase. Nothing is written to the
// file before the passphrase has been verified; a wrong passphrase returns
// ErrWrongPassphrase and leaves the file byte-identical.
func Open(dir string, passphrase []byte, opts Options) (*Store, error) {
	path := filepath.Join(dir, FileName)
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotInitialized
		}
		return nil, fmt.Errorf("failed to open store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("failed to open store: %s is not a regular file", path)
	}
	if fi.Size() == 0 {
		// bbolt would initialise an empty file; refuse instead (this is what
		// an interrupted Create leaves behind).
		return nil, fmt.Errorf("failed to open store: %s is empty (interrupted create?); remove it and create again", path)
	}
	db, err := openBolt(path, opts)
	if err != nil {
		if errors.Is(err, ErrInUse) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("failed to open store file: %w", err)
	}
	var raw []byte
	err = db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte(bucketMeta))
		if mb == nil {
			return fmt.Errorf("%w: no %q bucket", errCorruptMeta, bucketMeta)
		}
		v := mb.Get([]byte(metaKey))
		if v == nil {
			return fmt.Errorf("%w: no %q record", errCorruptMeta, metaKey)
		}
		raw = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("failed to read store meta record: %w", err)
	}
	m, err := parseMeta(raw)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("failed to read store meta record: %w", err)
	}
	kek := deriveKEK(passphrase, m.Salt[:], m.KDF)
	defer clear(kek)
	dek, err := unwrapDEK(kek, m)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	defer clear(dek)
	s, err := newStore(dek, opts)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.db = &boltDB{db: db, path: path}
	return s, nil
}

// Close releases the file lock and forgets the keys (a memory store drops
// all its data). It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.close(); err != nil {
			s.closeErr = fmt.Errorf("failed to close store: %w", err)
		}
	})
	return s.closeErr
}

// Update runs fn in one read-write transaction. If fn returns nil the
// transaction is committed (and, for a file store, fsynced) before Update
// returns; otherwise it is rolled back and fn's error returned.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.update(func(ktx kvTx) error {
		return fn(&Tx{tx: ktx, s: s, now: s.nowSec()})
	})
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.view(func(ktx kvTx) error {
		return fn(&Tx{tx: ktx, s: s, now: s.nowSec()})
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

// FileSize returns the size of the store file in bytes. A memory store has
// no file: it returns the total length of the keys and values it holds
// (sealed values, hashed keys and expiry index entries, as they would be
// stored), which grows and shrinks with its contents.
func (s *Store) FileSize() (int64, error) {
	return s.db.size()
}

// ReleaseMemory tells the kernel that the store file's pages need not stay
// resident in this process: they stay in the page cache and come back on
// the next access. It is only advice and ignores errors. It does nothing on
// a memory store, nor on platforms without madvise.
func (s *Store) ReleaseMemory() {
	s.db.releaseMemory()
}

// Sweep deletes every item whose expiry is <= Now(), in one durable
// transaction, and returns how many items it removed.
func (s *Store) Sweep() (removed int, err error) {
	// Look first, so that a store with nothing expired is not written to.
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
