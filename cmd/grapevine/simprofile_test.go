package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimMemProfile: --memprofile leaves a heap profile (gzip-compressed, as
// runtime/pprof writes it) and says how large the live heap grew.
func TestSimMemProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.pprof")
	var stdout, stderr bytes.Buffer
	args := []string{"sim", "--nodes", "20", "--area", "200x200", "--duration", "2m", "--messages", "5", "--json", "--memprofile", path}
	if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("sim exited %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("not a heap profile: %d bytes starting %x", len(b), b[:min(len(b), 4)])
	}
	if !strings.Contains(stderr.String(), "heap profile at the peak live heap") {
		t.Errorf("no word of the profile on stderr: %q", stderr.String())
	}
}
