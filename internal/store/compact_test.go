package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCompact: churn (write 20,000 items, delete all but 500, while a reader
// holds a transaction open part of the time) leaves a file of mostly free
// pages; Compact shrinks it to what it holds, every item survives, the
// store keeps working and reopens, and CheckFiles still knows its file.
func TestCompact(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	s := mustCreate(t, dir, opts)
	forever := time.Now().Add(24 * time.Hour)
	val := make([]byte, 300)
	for batch := range 20 {
		err := s.Update(func(tx *Tx) error {
			for i := range 1000 {
				if err := tx.Put("c", []byte(fmt.Sprintf("k%05d", batch*1000+i)), val, forever); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(func(tx *Tx) error {
		for i := range 20000 {
			if i%40 != 0 {
				if err := tx.Delete("c", []byte(fmt.Sprintf("k%05d", i))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waste, size, err := s.Waste()
	if err != nil {
		t.Fatal(err)
	}
	before, after, err := s.Compact()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("500 items held: file %d bytes, %d of them free; compacted to %d", before, waste, after)
	if size != before || waste < before/2 || after > before/4 {
		t.Fatalf("file %d bytes (%d free) compacted to %d: want it shrunk to a quarter at most", before, waste, after)
	}
	if n := count(t, s, "c"); n != 500 {
		t.Fatalf("%d items after compacting, want 500", n)
	}
	if err := s.CheckFiles(); err != nil {
		t.Fatalf("the compacted file is not recognised as the store's: %v", err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("c", []byte("after"), val, forever) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+compactSuffix)); !os.IsNotExist(err) {
		t.Fatalf("the copy is left behind: %v", err)
	}
	s.Close()
	s = mustOpen(t, dir, opts)
	defer s.Close()
	if n := count(t, s, "c"); n != 501 {
		t.Fatalf("%d items after reopening, want 501", n)
	}
	// Opened (not created), CheckFiles knows the files by identity: it must
	// follow the compacted one.
	if _, _, err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFiles(); err != nil {
		t.Fatalf("after compacting an opened store: %v", err)
	}
}
