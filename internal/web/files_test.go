package web

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// TestServedType: only images and audio whose content is what the sender's
// manifest says are served inline; anything else, SVG and HTML above all, is
// a download.
func TestServedType(t *testing.T) {
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	html := []byte("<!doctype html><script>alert(1)</script>")
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`)
	for _, c := range []struct {
		declared string
		data     []byte
		want     string
		inline   bool
	}{
		{"image/png", pngData.Bytes(), "image/png", true},
		{"image/jpeg", pngData.Bytes(), "application/octet-stream", false}, // says JPEG, is PNG
		{"image/png", html, "application/octet-stream", false},
		{"image/svg+xml", svg, "application/octet-stream", false},
		{"text/html", html, "application/octet-stream", false},
		{"audio/webm", []byte("\x1a\x45\xdf\xa3 opus"), "audio/webm", true},
		{"audio/ogg", []byte("OggS\x00 opus"), "audio/ogg", true},
		{"audio/ogg", html, "application/octet-stream", false},
		{"text/plain", []byte("words"), "application/octet-stream", false},
	} {
		got, inline := servedType(c.declared, c.data)
		if got != c.want || inline != c.inline {
			t.Errorf("%s: served as %s inline=%v, want %s inline=%v", c.declared, got, inline, c.want, c.inline)
		}
	}
}

func TestDisposition(t *testing.T) {
	for name, want := range map[string]string{
		"notes.txt":             `attachment; filename="notes.txt"`,
		"":                      `attachment; filename="file"`,
		`a"; filename=evil.exe`: `attachment; filename="a__ filename=evil.exe"; filename*=UTF-8''a%22%3B%20filename%3Devil.exe`,
		"carte été.jpg":         `attachment; filename="carte _t_.jpg"; filename*=UTF-8''carte%20%C3%A9t%C3%A9.jpg`,
	} {
		if got := disposition("attachment", name); got != want {
			t.Errorf("%q: %s, want %s", name, got, want)
		}
	}
}

// TestFileEndpointsRefuse: the file endpoints need the session, a change
// needs our own Origin, and what is wrong with a request is said.
func TestFileEndpointsRefuse(t *testing.T) {
	f := newFixture(t, false)
	if err := f.n.SetFileLimit(node.MinFileLimit); err != nil {
		t.Fatal(err)
	}
	body := func(n int) io.Reader { return bytes.NewReader(bytes.Repeat([]byte("x"), n)) }
	for _, c := range []struct {
		method, path string
		body         io.Reader
		hdr          map[string]string
		status       int
		want         string
	}{
		{"POST", "/ui/files/send?to=Bob&name=a.txt", body(10), map[string]string{"Origin": "http://evil.example"}, 403, "refused"},
		{"POST", "/ui/files/send?name=a.txt", body(10), nil, 400, "whom"},
		{"POST", "/ui/files/send?to=Bob&group=x&name=a.txt", body(10), nil, 400, "whom"},
		{"POST", "/ui/files/send?to=Bob", body(10), nil, 400, "no name"},
		{"POST", "/ui/files/send?to=Bob&name=a.txt", body(10), nil, 404, "no_contact"},
		{"POST", "/ui/files/send?to=Bob&name=a.txt&as_file=1", body(node.MinFileLimit + 1), nil, 413, "file_too_large"},
		{"GET", "/ui/files/0123456789abcdef", nil, nil, 404, "no_attachment"},
	} {
		resp, got := f.do(t, c.method, c.path, c.body, c.hdr)
		if resp.StatusCode != c.status || !strings.Contains(got, c.want) {
			t.Errorf("%s %s: %s %s, want %d with %q", c.method, c.path, resp.Status, got, c.status, c.want)
		}
	}
	f.cookie = nil
	if resp, _ := f.do(t, "GET", "/ui/files/0123456789abcdef", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the session: %s", resp.Status)
	}
}
