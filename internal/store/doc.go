// Package store owns the node's single embedded database: the bbolt file
// FileName (grapevine.db) in the Grapevine home directory.
//
// Every value is sealed with XChaCha20-Poly1305 under a data key that is
// itself wrapped under a key derived from the user's passphrase with
// Argon2id; item keys are replaced on disk by a keyed hash, so a copy of the
// file taken without the passphrase cannot read values nor test whether it
// holds a given key. Every item carries an expiry (Forever for items that
// live until deleted); expired items are invisible at once and are removed
// from disk by Sweep.
//
// The exact on-disk format is described in SPEC-store.md ("Store at rest").
//
// A Store is safe for concurrent use. A *Tx is only valid inside the
// Update or View callback that received it. Read-write transactions are
// durable (fsynced) when Update returns. Only one process may hold the store
// open at a time; a second Open waits up to Options.LockTimeout and then
// fails with ErrInUse.
//
// CreateMemory makes a store that lives only in memory, for the
// discrete-event simulator (thousands of nodes in one process) and tests:
// no file, no passphrase, no fsync, and nothing survives Close, but the same
// sealing, key hashing, expiry index and transactions as a file store, run
// by the same code over an in-memory ordered tree instead of bbolt.
package store
