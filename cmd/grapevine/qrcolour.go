package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/grapevine-mesh/grapevine/internal/qrscan"
)

// The terminal QR code's colours: foreground 231 (white) and background 16
// (black) of the 256-colour cube, and the reset.
const (
	qrColours = "\x1b[38;5;231;48;5;16m"
	qrReset   = "\x1b[0m"
)

// isTerminal reports whether w is a terminal; forceColour (tests) says yes.
func isTerminal(w io.Writer) bool {
	if forceColour {
		return true
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// forceColour draws the QR code in colour whatever the output (tests).
var forceColour = false

// linkFromPhoto reads an invite link from a photo or screenshot of its QR
// code (PNG, JPEG or GIF).
func linkFromPhoto(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("failed to open the photo: %w", err)
	}
	defer f.Close()
	text, err := qrscan.Decode(f)
	if err != nil {
		return "", fmt.Errorf("failed to read a QR code from %s: %w", path, err)
	}
	return text, nil
}

// inviteArg is the invite of `contacts add`: the link given, or the one in
// the photo of --qr.
func (c *cli) inviteArg(args []string, photo string) (string, error) {
	switch {
	case photo != "" && len(args) == 1:
		return "", fmt.Errorf("give the invite link or --qr PHOTO, not both")
	case photo != "":
		return linkFromPhoto(photo)
	case len(args) == 1:
		return args[0], nil
	}
	return "", fmt.Errorf("give the invite link, or --qr PHOTO")
}
