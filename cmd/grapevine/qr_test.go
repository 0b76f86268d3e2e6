package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/qrscan"
)

const testLink = "grapevine:ai5zncs2vwbcu7gtsxv7wi4ousor5v6dh54oldqzngsmzqjictzl1b56liz3mklfongsxu2ympzq7i7mnls5x5gye27dsvzr2q7cl"

// terminalImage draws what a terminal shows for s: each character cell one
// module wide and two high, in the theme's colours unless s sets the
// 256-colour cube's white (231) or black (16).
func terminalImage(t *testing.T, s string, fg, bg color.Gray) *image.Gray {
	t.Helper()
	const px = 4 // pixels per module
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	width := 0
	for _, l := range lines {
		width = max(width, len([]rune(stripANSI(l))))
	}
	img := image.NewGray(image.Rect(0, 0, width*px, len(lines)*2*px))
	for i := range img.Pix {
		img.Pix[i] = bg.Y
	}
	for row, l := range lines {
		curFG, curBG := fg, bg
		col := 0
		rs := []rune(l)
		for i := 0; i < len(rs); i++ {
			if rs[i] == 0x1b { // an SGR sequence
				j := i + 1
				for j < len(rs) && rs[j] != 'm' {
					j++
				}
				params := string(rs[i+2 : j])
				switch {
				case params == "0":
					curFG, curBG = fg, bg
				case strings.Contains(params, "38;5;231"):
					curFG, curBG = color.Gray{255}, color.Gray{0}
				default:
					t.Fatalf("unexpected escape %q", params)
				}
				i = j
				continue
			}
			top, bottom := curBG, curBG
			switch rs[i] {
			case '█':
				top, bottom = curFG, curFG
			case '▀':
				top = curFG
			case '▄':
				bottom = curFG
			case ' ':
			default:
				t.Fatalf("unexpected character %q", rs[i])
			}
			for y := range 2 * px {
				c := top
				if y >= px {
					c = bottom
				}
				for x := range px {
					img.SetGray(col*px+x, row*2*px+y, c)
				}
			}
			col++
		}
	}
	return img
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestTerminalQRReadsOnLightAndDark renders the QR code of id as a terminal
// shows it, with a dark theme and a light one, and reads it back: with
// gozxing always, and with zbarimg (which reads dark-on-light codes only,
// as most phone scanners do) where installed — with CI=true it must be.
func TestTerminalQRReadsOnLightAndDark(t *testing.T) {
	forceColour = true
	defer func() { forceColour = false }()
	var out bytes.Buffer
	if err := writeQRText(&out, testLink); err != nil {
		t.Fatal(err)
	}
	want := strings.ToUpper(testLink)
	zbar, zerr := exec.LookPath("zbarimg")
	if zerr != nil && os.Getenv("CI") == "true" {
		t.Fatal("zbarimg is missing and CI=true: .ci/run installs zbar-tools")
	}
	for _, theme := range []struct {
		name   string
		fg, bg color.Gray
	}{{"dark", color.Gray{230}, color.Gray{20}}, {"light", color.Gray{20}, color.Gray{250}}} {
		img := terminalImage(t, out.String(), theme.fg, theme.bg)
		got, err := qrscan.DecodeImage(img)
		if err != nil || got != want {
			t.Fatalf("%s terminal: read %q, %v", theme.name, got, err)
		}
		if zerr != nil {
			continue
		}
		path := filepath.Join(t.TempDir(), theme.name+".png")
		var b bytes.Buffer
		png.Encode(&b, img)
		os.WriteFile(path, b.Bytes(), 0o644)
		zout, err := exec.Command(zbar, "--quiet", "--raw", path).Output()
		if err != nil || strings.TrimSpace(string(zout)) != want {
			t.Fatalf("%s terminal: zbarimg read %q, %v", theme.name, zout, err)
		}
	}
}

func TestContactsAddFromPhoto(t *testing.T) {
	forceColour = false
	dir := t.TempDir()
	photo := filepath.Join(dir, "qr.png")
	if err := writeQRPNG(photo, testLink); err != nil {
		t.Fatal(err)
	}
	got, err := linkFromPhoto(photo)
	if err != nil || got != strings.ToUpper(testLink) {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := linkFromPhoto(filepath.Join(dir, "missing.png")); err == nil {
		t.Fatal("a missing photo read")
	}
}
