package share

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/qrscan"
	"github.com/grapevine-mesh/grapevine/internal/release"
)

// signed writes a release file of n random bytes named name into dir with
// its signature by k, as cmd/release signs, and returns its path.
func signed(t *testing.T, k release.PrivateKey, dir, name, platform string, n int) string {
	t.Helper()
	body := make([]byte, n)
	rand.Read(body)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	sig, err := release.Sign(k, bytes.NewReader(body), release.TrustedComment(name, "v0.9.0", "abc123", platform, 1796000000))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+release.SigSuffix, sig, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKey(t *testing.T) release.PrivateKey {
	t.Helper()
	k, err := release.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func get(t *testing.T, url, ua string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("User-Agent", ua)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

const androidUA = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"

// TestDownloadPage: releases put on the shelf are served over HTTP to a
// plain client — the page offers the visitor's platform first, every file
// downloads byte for byte and verifies under the key the page serves, and
// the page's QR code reads back as its address.
func TestDownloadPage(t *testing.T) {
	k := newKey(t)
	in := t.TempDir()
	shelf, err := Open(filepath.Join(t.TempDir(), "shelf"), k.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, plat := range []string{"linux/amd64", "android/arm64", "windows/amd64"} {
		name := "grapevine-v0.9.0-" + strings.ReplaceAll(plat, "/", "-")
		if plat == "windows/amd64" {
			name += ".exe"
		}
		if _, err := shelf.Add(signed(t, k, in, name, plat, 200_000), ""); err != nil {
			t.Fatal(err)
		}
	}
	items, problems := shelf.Scan()
	if len(items) != 3 || len(problems) != 0 {
		t.Fatalf("scan: %d items, problems %v", len(items), problems)
	}
	srv := httptest.NewServer(NewPage(shelf, items))
	defer srv.Close()

	resp, page := get(t, srv.URL+"/", androidUA)
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte(`<strong>For this device:</strong>
<a href="/f/grapevine-v0.9.0-android-arm64" download>`)) {
		t.Fatalf("the page (%s) does not offer the Android file first:\n%s", resp.Status, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	_, pub := get(t, srv.URL+"/release.pub", "")
	key, err := release.ParsePublicKey(pub)
	if err != nil || key.ID != k.ID || !key.Key.Equal(k.Public().Key) {
		t.Fatalf("the page's key %q: %v", pub, err)
	}
	for _, it := range items {
		if !bytes.Contains(page, []byte(it.SHA256)) {
			t.Fatalf("the page does not list the SHA-256 of %s", it.Name)
		}
		resp, body := get(t, srv.URL+"/f/"+it.Name, "")
		if resp.StatusCode != 200 || int64(len(body)) != it.Size {
			t.Fatalf("%s: %s, %d bytes", it.Name, resp.Status, len(body))
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != it.SHA256 {
			t.Fatalf("%s downloaded with another SHA-256", it.Name)
		}
		_, sig := get(t, srv.URL+"/f/"+it.Name+release.SigSuffix, "")
		trusted, err := release.Verify(key, bytes.NewReader(body), sig)
		if err != nil || release.ParseTrustedComment(trusted)["file"] != it.Name {
			t.Fatalf("%s does not verify after the download: %q, %v", it.Name, trusted, err)
		}
	}
	_, png := get(t, srv.URL+"/qr.png", "")
	if addr, err := qrscan.Decode(bytes.NewReader(png)); err != nil || addr != srv.URL+"/" {
		t.Fatalf("the QR code reads %q (%v), want %q", addr, err, srv.URL+"/")
	}
}

// TestNothingUnverifiedIsOffered attacks the shelf: a file altered after
// signing, one signed by another key, a signature that names another file
// or a path, and a file changed on the shelf after its scan. None is added
// or served; the request names what is wrong.
func TestNothingUnverifiedIsOffered(t *testing.T) {
	k, other := newKey(t), newKey(t)
	in := t.TempDir()
	shelf, err := Open(filepath.Join(t.TempDir(), "shelf"), k.Public())
	if err != nil {
		t.Fatal(err)
	}
	good := signed(t, k, in, "grapevine-v0.9.0-linux-amd64", "linux/amd64", 50_000)
	if _, err := shelf.Add(good, ""); err != nil {
		t.Fatal(err)
	}

	altered := signed(t, k, in, "grapevine-v0.9.0-linux-arm64", "linux/arm64", 50_000)
	flip(t, altered, 1000)
	if _, err := shelf.Add(altered, ""); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("an altered file was added (%v)", err)
	}
	foreign := signed(t, other, in, "grapevine-v0.9.0-darwin-arm64", "darwin/arm64", 50_000)
	if _, err := shelf.Add(foreign, ""); err == nil || !strings.Contains(err.Error(), "not by key") && !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("a file signed by another key was added (%v)", err)
	}
	for _, bad := range []string{"../../evil", ".hidden", "grapevine v1", "x.minisig"} {
		body := []byte("payload")
		path := filepath.Join(in, "payload")
		os.WriteFile(path, body, 0o644)
		sig, _ := release.Sign(k, bytes.NewReader(body), release.TrustedComment(bad, "v1", "c", "", 1))
		os.WriteFile(path+release.SigSuffix, sig, 0o644)
		if _, err := shelf.Add(path, ""); err == nil || !strings.Contains(err.Error(), "name") {
			t.Fatalf("a file signed as %q was added (%v)", bad, err)
		}
	}
	if _, err := shelf.Add(filepath.Join(in, "missing"), ""); err == nil || !strings.Contains(err.Error(), "no signature") {
		t.Fatalf("a file without a signature: %v", err)
	}

	// Someone with access to the shelf swaps a file in place: the scan
	// refuses it.
	swapped := filepath.Join(shelf.Dir(), "grapevine-v0.9.0-linux-amd64")
	items, problems := shelf.Scan()
	if len(items) != 1 || len(problems) != 0 {
		t.Fatalf("scan: %d items, problems %v", len(items), problems)
	}
	srv := httptest.NewServer(NewPage(shelf, items))
	defer srv.Close()
	flip(t, swapped, 10)
	future := time.Now().Add(time.Minute)
	os.Chtimes(swapped, future, future)
	if resp, body := get(t, srv.URL+"/f/grapevine-v0.9.0-linux-amd64", ""); resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "changed") {
		t.Fatalf("a file changed after its scan was served: %s %q", resp.Status, body)
	}
	if items, problems := shelf.Scan(); len(items) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "REFUSED") {
		t.Fatalf("scan after the swap: %d items, problems %v", len(items), problems)
	}
	for _, path := range []string{"/f/../../etc/passwd", "/f/%2e%2e%2fshelf", "/f/grapevine-v0.9.0-linux-arm64", "/f/", "/etc/passwd"} {
		if resp, _ := get(t, srv.URL+path, ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %s, want 404", path, resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("x"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v %v", resp.Status, err)
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, at)
	b[0] ^= 0x40
	f.WriteAt(b, at)
}

// TestPlatformOf: the platform guessed from common User-Agents.
func TestPlatformOf(t *testing.T) {
	for ua, want := range map[string]string{
		androidUA: "android/arm64",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/120.0":      "windows/amd64",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) Safari/605.1.15": "darwin/arm64",
		"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0":                "linux/amd64",
		"Mozilla/5.0 (X11; Linux aarch64) Chromium/120.0":              "linux/arm64",
		"Mozilla/5.0 (X11; Linux armv7l) Chromium/120.0":               "linux/arm",
		"Wget/1.21": "",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604": "ios",
	} {
		if got := platformOf(ua); got != want {
			t.Errorf("%q: %q, want %q", ua, got, want)
		}
	}
}
