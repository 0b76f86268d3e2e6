package testkit

import (
	"encoding/hex"
	"testing"
)

func TestStream(t *testing.T) {
	// SHA-256("x" || 00000000) — fixed, since every vector file depends on it.
	if got := hex.EncodeToString(Stream("x", 8)); got != "17c996ae257a9954" {
		t.Errorf("Stream = %s", got)
	}
	if a, b := Stream("label", 100), Stream("label", 40); string(a[:40]) != string(b) {
		t.Error("Stream is not a prefix of a longer Stream")
	}
}
