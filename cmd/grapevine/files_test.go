package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// cmdMkfile writes SIZE deterministic bytes (a SHA-256 stream) to PATH:
// mkfile PATH SIZE.
func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkfile PATH SIZE")
	}
	size, err := strconv.Atoi(args[1])
	ts.Check(err)
	var b []byte
	for i := uint32(0); len(b) < size; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte("mkfile"), i))
		b = append(b, h[:]...)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b[:size], 0o600))
}

// cmdMkjpeg writes a small JPEG whose EXIF block holds the text MARKER, as a
// camera's serial or GPS position would be: mkjpeg PATH MARKER.
func cmdMkjpeg(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkjpeg PATH MARKER")
	}
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 128, 255})
		}
	}
	var enc bytes.Buffer
	ts.Check(jpeg.Encode(&enc, img, nil))
	// APP1 "Exif\0\0", a big-endian TIFF header and an empty IFD0, then the
	// marker where a camera keeps its maker notes.
	exif := append([]byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"), args[1]...)
	app1 := append([]byte{0xff, 0xe1}, binary.BigEndian.AppendUint16(nil, uint16(len(exif)+2))...)
	out := append(append(append([]byte{}, enc.Bytes()[:2]...), append(app1, exif...)...), enc.Bytes()[2:]...)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), out, 0o600))
}

// cmdSplitbundle writes what a bundle holds in two: every envelope but the
// chunks and the first N chunks to FIRST, the other chunks to SECOND, so a
// script can show a file arriving part by part: splitbundle IN FIRST SECOND N.
func cmdSplitbundle(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: splitbundle IN FIRST SECOND N")
	}
	n, err := strconv.Atoi(args[3])
	ts.Check(err)
	var first, second [][]byte
	_, err = bundle.ReadFile(ts.MkAbs(args[0]), func(raw []byte) error {
		e, err := envelope.Parse(raw)
		switch {
		case err != nil:
			return err
		case e.Kind != envelope.KindChunk || n > 0:
			if e.Kind == envelope.KindChunk {
				n--
			}
			first = append(first, bytes.Clone(raw))
		default:
			second = append(second, bytes.Clone(raw))
		}
		return nil
	})
	ts.Check(err)
	for i, part := range [][][]byte{first, second} {
		_, err := bundle.WriteFile(ts.MkAbs(args[1+i]), func(put func([]byte) error) error {
			for _, raw := range part {
				if err := put(raw); err != nil {
					return err
				}
			}
			return nil
		})
		ts.Check(err)
	}
}
