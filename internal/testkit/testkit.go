// Package testkit is what the tests of every package share for test
// vectors (as age's internal/testkit): the -update flag, reading a vector
// file (or, with -update, writing it from the implementation first),
// deterministic bytes, hex; and the host's loopback for tests of LAN
// discovery. Only tests import it.
package testkit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Update is the -update flag: rewrite the test vector files from the
// implementation, then check against them as always. Run it for one package
// at a time, and review the diff: e.g.
//
//	go test ./internal/keys -run Vectors -update
var Update = flag.Bool("update", false, "rewrite the test vector files (testdata) from the implementation")

// Vectors returns the test vectors in the JSON file at path. With -update it
// first writes compute() there, indented, with a final newline.
func Vectors[T any](t testing.TB, path string, compute func() T) T {
	t.Helper()
	if *Update {
		b, err := json.MarshalIndent(compute(), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// Unhex decodes hex, failing the test on a bad string.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Stream returns n deterministic bytes for label, the "randomness" of test
// vectors: SHA-256(label || be32(0)) || SHA-256(label || be32(1)) || …,
// truncated.
func Stream(label string, n int) []byte {
	var out []byte
	for i := uint32(0); len(out) < n; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte(label), i))
		out = append(out, h[:]...)
	}
	return out[:n]
}
