// Package qrscan reads a QR code from a photo or a screenshot (PNG, JPEG or
// GIF), in pure Go: the CLI's `contacts add --qr` and the web UI's upload
// and camera frames use it.
package qrscan

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // decoders registered for image.Decode
	_ "image/jpeg"
	_ "image/png"
	"io"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.org/x/image/draw"
)

// Limits on what is decoded: a picture larger than MaxPixels is refused
// before it is decoded (a small file can claim a huge image), and a large one
// is scaled down to work at most side pixels (a QR code in a photo needs far
// fewer).
const (
	MaxPixels = 50_000_000
	MaxBytes  = 32 << 20
	workSide  = 1600
)

// ErrNoCode means the picture was read but holds no QR code that could be
// decoded.
var ErrNoCode = errors.New("no QR code found in the picture")

// Decode reads the text of the QR code in an encoded picture.
func Decode(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("failed to read the picture: %w", err)
	}
	if len(b) > MaxBytes {
		return "", fmt.Errorf("the picture is over %d MiB", MaxBytes>>20)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("failed to read the picture (PNG, JPEG or GIF): %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return "", fmt.Errorf("the picture is %d×%d pixels: too large", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("failed to decode the picture: %w", err)
	}
	return DecodeImage(img)
}

// DecodeImage reads the text of the QR code in img. Dark-on-light codes and
// light-on-dark ones (a screenshot of a dark terminal) are both read.
func DecodeImage(img image.Image) (string, error) {
	img = shrink(img)
	gray := toGray(img)
	for _, inverted := range []bool{false, true} {
		if inverted {
			for i, v := range gray.Pix {
				gray.Pix[i] = 255 - v
			}
		}
		if text, err := decodeGray(gray); err == nil {
			return text, nil
		}
	}
	return "", ErrNoCode
}

func decodeGray(g *image.Gray) (text string, err error) {
	defer func() { // the decoder is not written for hostile input
		if r := recover(); r != nil {
			err = fmt.Errorf("failed to decode the QR code: %v", r)
		}
	}()
	bmp, err := gozxing.NewBinaryBitmapFromImage(g)
	if err != nil {
		return "", err
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// shrink scales img so that its longer side is at most workSide.
func shrink(img image.Image) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= workSide && h <= workSide {
		return img
	}
	if w >= h {
		w, h = workSide, h*workSide/w
	} else {
		w, h = w*workSide/h, workSide
	}
	dst := image.NewRGBA(image.Rect(0, 0, max(w, 1), max(h, 1)))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// toGray flattens img on white (a transparent PNG has no colour under its
// dark modules).
func toGray(img image.Image) *image.Gray {
	b := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, gg, bb, a := img.At(x, y).RGBA()
			// Composite on white: c + (1-a)*white.
			r, gg, bb = r+0xffff-a, gg+0xffff-a, bb+0xffff-a
			y16 := (19595*r + 38470*gg + 7471*bb + 1<<15) >> 16
			g.SetGray(x-b.Min.X, y-b.Min.Y, color.Gray{Y: uint8(min(y16, 0xffff) >> 8)})
		}
	}
	return g
}
