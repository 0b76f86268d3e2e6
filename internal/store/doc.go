// Package store owns the node's embedded database: the bbolt file FileName
// (grapevine.db) and the key file KeyFileName (grapevine.key) in the
// Grapevine home directory.
//
// Every value is padded to a size bucket and sealed with XChaCha20-Poly1305
// under a data key that is itself wrapped, in the key file, under a key
// derived from the user's passphrase with Argon2id. All items share one
// bucket under a keyed hash of their collection and key (a value of
// LargeValue bytes or more in a bucket of its own there); the collection and
// the exact expiry travel inside the sealed value, and only a day-rounded,
// jittered expiry is in clear. So a copy of the home taken without the
// passphrase cannot read values, test whether it holds a given key, count
// a collection, or date an item to better than a day. An in-memory
// directory, built when the store is opened, tells which items belong to
// which collection. Every item carries an expiry (Forever for items that
// live until deleted); expired items are invisible at once and are removed
// from disk by Sweep.
//
// Items of the collections named in Options.Erasable are each sealed under
// their own key, kept only in the key file and destroyed when the item is
// overwritten or deleted, so that the old value left on a freed page of
// the database can no longer be decrypted. ChangePassphrase rewraps the
// data key; Wipe destroys a home in well under a second.
//
// The exact on-disk format is described in SPEC.md §7 ("Store at rest").
//
// A Store is safe for concurrent use; a write transaction excludes every
// other transaction while it runs. A *Tx is only valid inside the Update or
// View callback that received it. Read-write transactions are durable
// (fsynced) when Update returns. Only one process may hold the store open
// at a time; a second Open waits up to Options.LockTimeout and then fails
// with ErrInUse.
//
// CreateMemory makes a store that lives only in memory, for the
// discrete-event simulator (thousands of nodes in one process) and tests:
// no file, no passphrase, no fsync, and nothing survives Close, but the same
// value layout, padding, key hashing, directory and transactions as a file
// store, run by the same code over an in-memory ordered tree instead of
// bbolt. Its expiries are exact, and it sweeps from the directory rather
// than from an expiry index.
package store
