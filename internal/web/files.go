package web

// Files in the browser (SPEC §16.10): the page uploads a file, photo or
// voice note as the raw body of one request, and the node seals it into its
// store from memory (node.SendFileData), so the bytes are never on disk in
// the clear; a file that has arrived is served to the page from the sealed
// store (node.WriteAttachment), verified first. The file is someone else's
// bytes: only a few media types are served inline, each only when the
// content is what it says, and every response forbids the browser to run or
// render anything else.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/photo"
)

// fileCSP is the policy of a served file: nothing in it may load, run or
// be framed, and a document that a browser shows anyway (it should not: the
// types served inline are images and audio) is a sandbox of its own origin.
const fileCSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// inlineTypes are the media types shown in the page, each with the type
// http.DetectContentType gives its content: a file served inline must be
// what its manifest says (the sender chose the manifest).
var inlineTypes = map[string]string{
	"image/jpeg": "image/jpeg",
	"image/png":  "image/png",
	"image/gif":  "image/gif",
	"audio/webm": "video/webm", // the container; the sender's node told audio (node.refineMediaType)
	"audio/ogg":  "application/ogg",
}

// servedType is the Content-Type a file is served with, and whether inline.
func servedType(declared string, data []byte) (string, bool) {
	want, ok := inlineTypes[declared]
	if !ok {
		return "application/octet-stream", false
	}
	got, _, _ := strings.Cut(http.DetectContentType(data), ";")
	if got != want {
		return "application/octet-stream", false
	}
	return declared, true
}

// disposition names the file for a download, as plain ASCII (what is not
// becomes _) and, when that changed it, as UTF-8 (RFC 6266, 5987): quoted
// and escaped, so that a name cannot add parameters of its own.
func disposition(kind, name string) string {
	if name == "" {
		name = "file"
	}
	ascii := []rune(name)
	for i, r := range ascii {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' || r == ';' {
			ascii[i] = '_'
		}
	}
	v := kind + `; filename="` + string(ascii) + `"`
	if string(ascii) == name {
		return v
	}
	var b strings.Builder
	for _, c := range []byte(name) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return v + "; filename*=UTF-8''" + b.String()
}

// serveFile answers GET /ui/files/{id}: the finished file of a message or
// post sent to me, or the photo or voice note I sent, as it was sent (kept
// by the node: a photo re-encoded, without its metadata). ?download=1 asks
// for it as a download even when it could be shown.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, n *node.Node, _ api.Mesh) {
	id := r.PathValue("id")
	var buf bytes.Buffer
	att, err := n.WriteAttachment(id, &buf)
	if err != nil {
		nodeError(w, err)
		return
	}
	data := buf.Bytes()
	ct, inline := servedType(att.MediaType, data)
	if r.URL.Query().Get("download") != "" {
		inline = false
	}
	h := w.Header()
	h.Set("Content-Security-Policy", fileCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", ct)
	if inline {
		h.Set("Content-Disposition", disposition("inline", att.Name))
	} else {
		h.Set("Content-Disposition", disposition("attachment", att.Name))
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	// Ranges, for the audio player's seeking; the ETag is the message's,
	// whose file never changes.
	h.Set("ETag", `"`+id+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// sendFile answers POST /ui/files/send?to=CONTACT (or ?group=ID) with the
// file as the body, and name, type (the browser's word for it, a hint),
// caption and as_file (a photo as it is) in the query.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, n *node.Node, _ api.Mesh) {
	q := r.URL.Query()
	to, group := q.Get("to"), q.Get("group")
	if (to == "") == (group == "") {
		writeError(w, http.StatusBadRequest, "bad_request", "say whom the file is for: ?to=CONTACT or ?group=ID")
		return
	}
	o := node.SendFileOptions{Name: q.Get("name"), MediaType: q.Get("type"), Caption: q.Get("caption"), AsFile: q.Get("as_file") == "1"}
	if o.Name == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "the file has no name (?name=)")
		return
	}
	limit := n.FileLimit()
	// A photo may be larger before the node re-encodes it.
	lim := limit
	if !o.AsFile {
		lim = max(limit, photo.DefaultMaxInput)
	}
	if r.ContentLength > lim {
		writeError(w, http.StatusRequestEntityTooLarge, node.ReasonFileTooLarge, fmt.Sprintf("%s is %d bytes, the limit is %d", o.Name, r.ContentLength, limit))
		return
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, lim))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, node.ReasonFileTooLarge, fmt.Sprintf("%s is over the limit of %d bytes", o.Name, limit))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("failed to receive the file: %v", err))
		return
	}
	data := bytes.NewReader(buf.Bytes())
	var v any
	if to != "" {
		v, err = n.SendFileData(to, data, int64(buf.Len()), o)
	} else {
		v, err = n.SendRoomFileData(group, data, int64(buf.Len()), o)
	}
	if err != nil {
		nodeError(w, err)
		return
	}
	writeJSON(w, v)
}

// nodeError answers an error of the node: what the caller caused as 4xx
// with its reason as the code, the node's own failures as 500.
func nodeError(w http.ResponseWriter, err error) {
	var ne *node.Error
	switch {
	case errors.Is(err, node.ErrNoContact):
		writeError(w, http.StatusNotFound, "no_contact", err.Error())
	case errors.As(err, &ne) && ne.Reason == node.ReasonNoAttachment:
		writeError(w, http.StatusNotFound, ne.Reason, err.Error())
	case errors.As(err, &ne) && ne.Reason == node.ReasonFileTooLarge:
		writeError(w, http.StatusRequestEntityTooLarge, ne.Reason, err.Error())
	case errors.As(err, &ne):
		status := http.StatusBadRequest
		if errors.Is(err, node.ErrConflict) {
			status = http.StatusConflict
		}
		writeError(w, status, ne.Reason, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}
