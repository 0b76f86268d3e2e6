package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/grapevine-mesh/grapevine/internal/release"
)

// The nodes the testscripts' grapevine opens trust the release key in the
// file $GRAPEVINE_TEST_RELEASE_KEY (a minisign .pub) instead of the
// project's. It is read here, in the test binary only (testReleaseKey).
func init() {
	path := os.Getenv("GRAPEVINE_TEST_RELEASE_KEY")
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	k, err := release.ParsePublicKey(b)
	if err != nil {
		panic(err)
	}
	testReleaseKey = &k
}

// cmdSignRelease: signrelease KEYDIR FILE PLATFORM writes FILE (random
// bytes) and FILE.minisig, signed as cmd/release signs, by the key in
// KEYDIR (made on first use; its public half is KEYDIR/key.pub).
func cmdSignRelease(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: signrelease KEYDIR FILE PLATFORM")
	}
	dir, file := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	ts.Check(os.MkdirAll(dir, 0o700))
	seed := filepath.Join(dir, "key.seed")
	var k release.PrivateKey
	if b, err := os.ReadFile(seed); err == nil {
		k, err = release.GenerateKey(bytes.NewReader(b))
		ts.Check(err)
	} else {
		b := make([]byte, 8+32)
		rand.Read(b)
		ts.Check(os.WriteFile(seed, b, 0o600))
		k, err = release.GenerateKey(bytes.NewReader(b))
		ts.Check(err)
		pub, _ := k.Public().MarshalText()
		ts.Check(os.WriteFile(filepath.Join(dir, "key.pub"), pub, 0o600))
	}
	body := make([]byte, 300_000)
	rand.Read(body)
	ts.Check(os.MkdirAll(filepath.Dir(file), 0o755))
	ts.Check(os.WriteFile(file, body, 0o755))
	sig, err := release.Sign(k, bytes.NewReader(body), release.TrustedComment(filepath.Base(file), "v0.9.0", "0123abcd", args[2], 1796000000))
	ts.Check(err)
	ts.Check(os.WriteFile(file+release.SigSuffix, sig, 0o644))
}

// cmdFetch: fetch URLFILE PATH OUT gets PATH from the address written in
// URLFILE (waiting up to 30 s for it) into OUT, with a plain HTTP client.
func cmdFetch(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: fetch URLFILE PATH OUT")
	}
	var base string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(ts.MkAbs(args[0]))
		if base = strings.TrimSpace(string(b)); base != "" {
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no address in %s within 30 s", args[0])
		}
	}
	resp, err := http.Get(strings.TrimSuffix(base, "/") + args[1])
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	if (resp.StatusCode == http.StatusOK) == neg {
		ts.Fatalf("GET %s: %s", args[1], resp.Status)
	}
	ts.Check(os.MkdirAll(filepath.Dir(ts.MkAbs(args[2])), 0o755))
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), body, 0o644))
}
