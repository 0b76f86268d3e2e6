package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// FuzzRequest sends arbitrary bodies and queries to every endpoint (the
// settings' decoder, SizeText and ParseRetention included): the
// server never panics, and a malformed request is the client's fault (4xx),
// never a server error — except import/export, whose paths may name files
// the fuzzer cannot foresee.
func FuzzRequest(f *testing.F) {
	n, err := node.Init(filepath.Join(f.TempDir(), "home"), []byte("pw"), "Alice", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		f.Fatal(err)
	}
	defer n.Close()
	s := NewServer(n, nil, nil)
	paths := []string{"/v1/contacts", "/v1/contacts/accept", "/v1/contacts/reject", "/v1/send",
		"/v1/contacts/verify?contact=", "/v1/messages?contact=", "/v1/self", "/v1/invite", "/v1/envelopes", "/v1/settings", "/v1/conversations/page?limit=",
		"/v1/files/save", "/v1/files?contact="}
	for i := range paths {
		f.Add(uint8(i), []byte(`{"link":"grapevine:abc","name":"x"}`))
		f.Add(uint8(i), []byte(`{"to":"Bob","text":"hi"}`))
		f.Add(uint8(i), []byte(`{"contact":"Bob"}`))
		f.Add(uint8(i), []byte(`{"relay_quota":"1.5GiB","retention":"36h","stealth":true,"relay":false}`))
		f.Add(uint8(i), []byte(`{"relay_quota":1048576}`))
		f.Add(uint8(i), []byte(`{"message":"00ff","path":"/nonexistent/x"}`))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		method := http.MethodPost
		if bytes.IndexByte([]byte(path), '?') >= 0 || path == "/v1/self" || path == "/v1/invite" || path == "/v1/envelopes" {
			method = http.MethodGet
			path += url.QueryEscape(string(body))
		}
		if path == "/v1/settings" { // the one PUT
			method = http.MethodPut
		}
		req := httptest.NewRequest(method, "http://grapevine"+path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: status %d: %s", method, path, body, rec.Code, rec.Body)
		}
	})
}
