package web

import (
	"fmt"
	"net/http"
	"strings"

	"rsc.io/qr"

	"github.com/grapevine-mesh/grapevine/internal/qrscan"
)

// maxQRText bounds what is drawn as a QR code (an invite link is ~200 bytes).
const maxQRText = 1024

// qrSVG draws ?text= as a QR code in SVG: one path, dark on white, with a
// quiet zone of four modules. Invite links are drawn in upper case, as the
// CLI does, to fit QR's compact alphanumeric mode.
func (s *Server) qrSVG(w http.ResponseWriter, r *http.Request) {
	text := r.URL.Query().Get("text")
	if text == "" || len(text) > maxQRText {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("text: 1 to %d bytes", maxQRText))
		return
	}
	if strings.HasPrefix(strings.ToLower(text), "grapevine:") {
		text = strings.ToUpper(text)
	}
	svg, err := QRSVG(text)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write([]byte(svg))
}

// QRSVG draws text as a QR code in SVG.
func QRSVG(text string) (string, error) {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", fmt.Errorf("failed to make QR code: %w", err)
	}
	const quiet = 4
	n := code.Size + 2*quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := range code.Size {
		for x := 0; x < code.Size; x++ {
			if !code.Black(x, y) {
				continue
			}
			run := 1
			for x+run < code.Size && code.Black(x+run, y) {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+quiet, y+quiet, run, run)
			x += run - 1
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String(), nil
}

// qrDecode reads the QR code in an uploaded picture (a photo, or a frame
// of the camera) and answers its text.
func (s *Server) qrDecode(w http.ResponseWriter, r *http.Request) {
	text, err := qrscan.Decode(http.MaxBytesReader(w, r.Body, qrscan.MaxBytes))
	if err != nil {
		status := http.StatusUnprocessableEntity
		if err != qrscan.ErrNoCode {
			status = http.StatusBadRequest
		}
		writeError(w, status, "no_code", err.Error())
		return
	}
	writeJSON(w, map[string]string{"text": text})
}
