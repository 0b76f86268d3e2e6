package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// MaxUpload bounds an uploaded bundle.
const MaxUpload = 4 << 30

// export writes every envelope held to a bundle and sends it as a download.
// The bundle is written to a temporary file first (the node writes bundles
// atomically), which is removed once sent.
func (s *Server) export(w http.ResponseWriter, r *http.Request, n *node.Node, _ api.Mesh) {
	dir, err := os.MkdirTemp("", "grapevine-export")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("failed to make a temporary directory: %v", err))
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bundle.gvb")
	count, err := n.Export(path)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("failed to export: %v", err))
		return
	}
	s.sendBundle(w, path, count)
}

// sendBundle sends the bundle at path as a download; count, if not -1, is
// how many envelopes it holds.
func (s *Server) sendBundle(w http.ResponseWriter, path string, count int) {
	f, err := os.Open(path)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("failed to open the bundle: %v", err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("failed to open the bundle: %v", err))
		return
	}
	name := "grapevine-" + time.Now().UTC().Format("20060102-150405") + ".gvb"
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	if count >= 0 {
		h.Set("X-Grapevine-Envelopes", strconv.Itoa(count))
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	if _, err := io.Copy(w, f); err != nil {
		s.log.Debug("bundle download cut", "err", err)
	}
}

// Progress of a bundle in the page: POST /ui/export and /ui/import asked
// with Accept: text/event-stream answer with the node's progress as the
// local API streams it (internal/api/progress.go), the page's own requests
// to the API's /v1/export and /v1/import, which the page may not make
// itself (they name paths on the node's disk). An export streamed so is
// then downloaded once from the address in the response's
// X-Grapevine-Download header, within exportWait.
const exportWait = 10 * time.Minute

// wantsStream reports whether the page asked for progress events.
func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// viaAPI answers r with the local API's answer to POST endpoint with body,
// as a stream of progress events.
func (s *Server) viaAPI(w http.ResponseWriter, r *http.Request, endpoint string, body any) {
	_, _, h := s.node()
	b, err := json.Marshal(body)
	if err != nil || h == nil {
		writeError(w, http.StatusServiceUnavailable, "locked", "the node is locked: enter the passphrase")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	h.ServeHTTP(w, req)
}

// exportStreamed answers POST /ui/export: the node writes a bundle into a
// directory of its own, streaming its progress, for the page to download.
func (s *Server) exportStreamed(w http.ResponseWriter, r *http.Request, _ *node.Node, _ api.Mesh) {
	dir, err := os.MkdirTemp("", "grapevine-export")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("failed to make a temporary directory: %v", err))
		return
	}
	token := s.random()
	path := filepath.Join(dir, "bundle.gvb")
	// Known before the export ends: the page asks for it once it has read
	// the result, which may be before this handler returns.
	s.mu.Lock()
	s.exports[token] = dir
	s.mu.Unlock()
	time.AfterFunc(exportWait, func() { s.dropExport(token) })
	w.Header().Set("X-Grapevine-Download", "/ui/export/"+token)
	s.viaAPI(w, r, "/v1/export", api.ExportRequest{Path: path})
	if _, err := os.Stat(path); err != nil { // failed or stopped: the bundle is written whole or not at all
		s.dropExport(token)
	}
}

// exportDownload answers GET /ui/export/{token}: the bundle written for
// the page, once.
func (s *Server) exportDownload(w http.ResponseWriter, r *http.Request, _ *node.Node, _ api.Mesh) {
	token := r.PathValue("token")
	s.mu.Lock()
	dir, ok := s.exports[token]
	delete(s.exports, token)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such bundle: export again")
		return
	}
	defer os.RemoveAll(dir)
	s.sendBundle(w, filepath.Join(dir, "bundle.gvb"), -1)
}

// dropExport removes a bundle written for the page, if it is still there.
func (s *Server) dropExport(token string) {
	s.mu.Lock()
	dir, ok := s.exports[token]
	delete(s.exports, token)
	s.mu.Unlock()
	if ok {
		os.RemoveAll(dir)
	}
}

// dropExports removes every bundle not yet downloaded (the server stops).
func (s *Server) dropExports() {
	s.mu.Lock()
	tokens := make([]string, 0, len(s.exports))
	for t := range s.exports {
		tokens = append(tokens, t)
	}
	s.mu.Unlock()
	for _, t := range tokens {
		s.dropExport(t)
	}
}

// importBundle takes an uploaded bundle: the body is the file.
func (s *Server) importBundle(w http.ResponseWriter, r *http.Request, n *node.Node, _ api.Mesh) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	f, err := os.CreateTemp("", "grapevine-import-*.gvb")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("failed to make a temporary file: %v", err))
		return
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, MaxUpload))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the bundle is over %d bytes", int64(MaxUpload)))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("failed to receive the bundle: %v", err))
		return
	}
	if wantsStream(r) {
		s.viaAPI(w, r, "/v1/import", api.PathRequest{Path: f.Name()})
		return
	}
	rep, err := n.Import(f.Name())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("failed to import: %v", err))
		return
	}
	writeJSON(w, rep)
}
