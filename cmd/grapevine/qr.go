package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"rsc.io/qr"
)

// qrText is what the QR code holds: the link in upper case, so it fits QR's
// alphanumeric mode (base32 and the scheme are case-insensitive).
func qrCode(link string) (*qr.Code, error) {
	code, err := qr.Encode(strings.ToUpper(link), qr.M)
	if err != nil {
		return nil, fmt.Errorf("failed to make QR code: %w", err)
	}
	return code, nil
}

// writeQRText draws the code with half blocks, two modules per character
// row, light modules drawn in the terminal's foreground colour, with a quiet
// zone of two modules.
func writeQRText(w io.Writer, link string) error {
	code, err := qrCode(link)
	if err != nil {
		return err
	}
	const quiet = 2
	light := func(x, y int) bool {
		if x < 0 || y < 0 || x >= code.Size || y >= code.Size {
			return true
		}
		return !code.Black(x, y)
	}
	bw := bufio.NewWriter(w)
	colour := isTerminal(w)
	for y := -quiet; y < code.Size+quiet; y += 2 {
		if colour {
			// White on black from the 256-colour cube, which themes do not
			// remap: the code reads the same on light and dark terminals.
			bw.WriteString(qrColours)
		}
		for x := -quiet; x < code.Size+quiet; x++ {
			top, bottom := light(x, y), light(x, y+1)
			switch {
			case top && bottom:
				bw.WriteString("█")
			case top:
				bw.WriteString("▀")
			case bottom:
				bw.WriteString("▄")
			default:
				bw.WriteString(" ")
			}
		}
		if colour {
			bw.WriteString(qrReset)
		}
		bw.WriteString("\n")
	}
	return bw.Flush()
}

// writeQRPNG writes the code as a PNG image.
func writeQRPNG(path, link string) error {
	code, err := qrCode(link)
	if err != nil {
		return err
	}
	code.Scale = 8
	if err := os.WriteFile(path, code.PNG(), 0o644); err != nil {
		return fmt.Errorf("failed to write QR image: %w", err)
	}
	return nil
}
