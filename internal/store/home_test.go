package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestChangePassphrase(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(nil))
	mustUpdate(t, s, func(tx *Tx) error {
		return errorsJoin(
			tx.Put("contacts", []byte("bob"), []byte("chain keys"), Forever),
			tx.Put("envelopes", []byte("e"), []byte("envelope"), Forever))
	})
	keyPath := filepath.Join(dir, KeyFileName)
	before, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	oldSlot, _, _, err := scanKeyFile(before)
	if err != nil {
		t.Fatal(err)
	}
	dbBefore := fileHash(t, filepath.Join(dir, FileName))

	newPass := []byte("a much better passphrase")
	newKDF := KDFParams{Time: 2, MemoryKiB: 128, Threads: 2}
	if err := s.ChangePassphrase(newPass, KDFParams{Time: 0, MemoryKiB: 1}); err == nil {
		t.Fatal("ChangePassphrase accepted invalid KDF parameters")
	}
	if err := s.ChangePassphrase(newPass, newKDF); err != nil {
		t.Fatal(err)
	}
	// Nothing but the key file was rewritten.
	if fileHash(t, filepath.Join(dir, FileName)) != dbBefore {
		t.Fatal("the database changed")
	}
	after, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	// The old wrap is gone from both slots: its salt, nonce and wrapped key.
	for name, old := range map[string][]byte{"salt": oldSlot.salt[:], "wrap nonce": oldSlot.wrapNonce[:], "wrapped DEK": oldSlot.wrapped[:]} {
		if bytes.Contains(after, old) {
			t.Errorf("the key file still holds the old %s", name)
		}
	}
	newest, other, _, err := scanKeyFile(after)
	if err != nil || other == nil || newest.kdf != newKDF || other.kdf != newKDF || other.salt != newest.salt {
		t.Fatalf("slots after the change: %v; %+v / %+v", err, newest, other)
	}
	// The open store keeps working, erasable items included.
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("contacts", []byte("bob"), []byte("newer chain keys"), Forever) })
	// A copy taken now does not open with the old passphrase.
	cp := copyHome(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, home := range []string{dir, cp} {
		if _, err := Open(home, testPass, erasableOpts(nil)); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("old passphrase on %s: %v, want ErrWrongPassphrase", home, err)
		}
		s, err := Open(home, newPass, erasableOpts(nil))
		if err != nil {
			t.Fatalf("new passphrase on %s: %v", home, err)
		}
		if v, ok := getString(t, s, "contacts", "bob"); !ok || v != "newer chain keys" {
			t.Fatalf("bob = %q %v", v, ok)
		}
		if v, ok := getString(t, s, "envelopes", "e"); !ok || v != "envelope" {
			t.Fatalf("e = %q %v", v, ok)
		}
		// Zero parameters keep the current ones.
		if err := s.ChangePassphrase(testPass, KDFParams{}); err != nil {
			t.Fatal(err)
		}
		if s.kf.hdr.kdf != newKDF {
			t.Fatalf("zero KDF gave %+v", s.kf.hdr.kdf)
		}
		s.Close()
		s = mustOpen(t, home, erasableOpts(nil))
		s.Close()
	}
	// A memory store has no passphrase.
	if err := mustCreateMemory(t, testOpts(nil)).ChangePassphrase(newPass, TestKDF()); err == nil {
		t.Fatal("ChangePassphrase on a memory store succeeded")
	}
}

// TestWipe destroys a home while a Store (another handle, like a running
// node) holds the database open and locked.
func TestWipe(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(nil))
	defer s.Close()
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("contacts", []byte("bob"), []byte("keys"), Forever) })
	keep := filepath.Join(dir, "notes.txt") // not the store's
	tmp := filepath.Join(dir, FileName+".tmp-123")
	for _, p := range []string{keep, tmp} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Keep a descriptor on the key file, to read what Wipe left in it.
	kf, err := os.Open(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	before, err := io.ReadAll(kf)
	if err != nil {
		t.Fatal(err)
	}

	if err := Wipe(dir); err != nil {
		t.Fatal(err)
	}
	destroyed := make([]byte, len(before))
	if _, err := kf.ReadAt(destroyed, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(destroyed, before) || bytes.Contains(destroyed, []byte(keyMagic)) || bytes.Count(destroyed, []byte{0}) > len(destroyed)/64 {
		t.Fatal("the key file was not overwritten with random bytes before its removal")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"notes.txt"}) {
		t.Fatalf("after Wipe the home holds %q", names)
	}
	if Exists(dir) {
		t.Fatal("Exists after Wipe")
	}
	if _, err := Open(dir, testPass, erasableOpts(nil)); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Open after Wipe: %v", err)
	}
	// Again, on what is left: nothing to do, no error.
	if err := Wipe(dir); err != nil {
		t.Fatal(err)
	}
	if err := Wipe(filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
	// A new store can be made in the home at once.
	s2 := mustCreate(t, dir, erasableOpts(nil))
	s2.Close()
}

// Wipe never writes outside the home through a symlink.
func TestWipeSymlink(t *testing.T) {
	dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, KeyFileName)); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if err := Wipe(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "precious" {
		t.Fatalf("the symlink's target: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the symlink is still there")
	}
}

// BenchmarkWipe wipes a home whose database is 256 MiB: the cost is the
// key file's, whatever the database's size.
func BenchmarkWipe(b *testing.B) {
	const dbSize = 256 << 20
	src := b.TempDir()
	s := mustCreate(b, src, Options{KDF: TestKDF()})
	s.Close()
	key, err := os.ReadFile(filepath.Join(src, KeyFileName))
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	rand.Read(chunk)
	dir := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		f, err := os.Create(filepath.Join(dir, FileName))
		if err != nil {
			b.Fatal(err)
		}
		for range dbSize / len(chunk) {
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		f.Sync()
		f.Close()
		if err := os.WriteFile(filepath.Join(dir, KeyFileName), key, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := Wipe(dir); err != nil {
			b.Fatal(err)
		}
	}
}
