package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	h.Set("X-Grapevine-Envelopes", strconv.Itoa(count))
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	if _, err := io.Copy(w, f); err != nil {
		s.log.Debug("bundle download cut", "err", err)
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
	rep, err := n.Import(f.Name())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("failed to import: %v", err))
		return
	}
	writeJSON(w, rep)
}
