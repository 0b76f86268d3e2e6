package qrscan

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"rsc.io/qr"
)

const link = "GRAPEVINE:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func codeImage(t *testing.T, text string, scale int, dark, light color.Color, rotate bool) image.Image {
	t.Helper()
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	n := (c.Size + 8) * scale
	img := image.NewRGBA(image.Rect(0, 0, n, n+scale*3))
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := 0; x < n; x++ {
			mx, my := x/scale-4, y/scale-4
			if rotate {
				mx, my = my, c.Size-1-mx
			}
			col := light
			if mx >= 0 && my >= 0 && mx < c.Size && my < c.Size && c.Black(mx, my) {
				col = dark
			}
			img.Set(x, y, col)
		}
	}
	return img
}

func encode(t *testing.T, img image.Image, asJPEG bool) []byte {
	var b bytes.Buffer
	var err error
	if asJPEG {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 70})
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecode(t *testing.T) {
	black, white := color.Black, color.White
	for _, tc := range []struct {
		name string
		img  image.Image
		jpeg bool
	}{
		{"png", codeImage(t, link, 6, black, white, false), false},
		{"jpeg", codeImage(t, link, 5, black, white, false), true},
		{"inverted (dark terminal)", codeImage(t, link, 6, white, black, false), false},
		{"rotated", codeImage(t, link, 6, black, white, true), false},
		{"grey on grey", codeImage(t, link, 6, color.Gray{60}, color.Gray{200}, false), true},
		{"large photo", codeImage(t, link, 60, black, white, false), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(bytes.NewReader(encode(t, tc.img, tc.jpeg)))
			if err != nil {
				t.Fatal(err)
			}
			if got != link {
				t.Fatalf("decoded %q", got)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 100, 100))
	for i := range blank.Pix {
		blank.Pix[i] = 255
	}
	if _, err := Decode(bytes.NewReader(encode(t, blank, false))); err != ErrNoCode {
		t.Fatalf("blank picture: %v", err)
	}
	if _, err := Decode(strings.NewReader("not a picture")); err == nil {
		t.Fatal("text decoded as a picture")
	}
	// A PNG header claiming 100000×100000 pixels is refused before decoding.
	huge := encode(t, image.NewGray(image.Rect(0, 0, 1, 1)), false)
	copy(huge[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	binary.BigEndian.PutUint32(huge[29:33], crc32.ChecksumIEEE(huge[12:29]))
	if _, err := Decode(bytes.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("huge picture: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	c, _ := qr.Encode("GRAPEVINE:ABC", qr.L)
	f.Add(c.PNG())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{0xff, 0xd8, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(bytes.NewReader(b)) // must not panic or hang
	})
}
