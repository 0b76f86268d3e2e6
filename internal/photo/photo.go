// Package photo re-encodes photos so that nothing but pixels leaves the
// device (SPEC §16.7).
//
// Reencode decodes a JPEG, PNG or GIF (its first frame), turns it upright by
// its EXIF orientation, scales it down so that its longer side is at most
// Options.MaxSide pixels, and encodes the pixels afresh as a baseline JPEG.
// Nothing of the input but its pixels reaches the output: no EXIF (GPS
// position, camera make, model and serial number, times), no XMP, IPTC or
// Photoshop blocks, no comments, no ICC profile, no thumbnail — the encoder
// writes only the quantisation and Huffman tables, the frame and the scan.
// The colour profile goes too: pixels are taken as sRGB.
//
// Untrusted input cannot make it allocate without bound: the image's size is
// read from its header (image.DecodeConfig) and refused above
// Options.MaxPixels before anything is decoded, and the input itself is
// limited to Options.MaxInput bytes.
package photo

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registers GIF with image.Decode
	"image/jpeg"
	_ "image/png" // registers PNG with image.Decode
	"math"

	"golang.org/x/image/draw"
)

// Defaults.
const (
	DefaultMaxSide   = 1600
	DefaultQuality   = 80
	DefaultMaxPixels = 50_000_000
	DefaultMaxInput  = 64 << 20
)

// Options control the re-encoding. The zero value means the defaults.
type Options struct {
	MaxSide   int // longest side of the output, in pixels (default 1600); smaller images keep their size
	Quality   int // JPEG quality, 1 to 100 (default 80)
	MaxPixels int // largest input accepted, width × height (default 50 million)
	MaxInput  int // largest input accepted, in bytes (default 64 MiB)
}

func (o Options) withDefaults() Options {
	if o.MaxSide <= 0 {
		o.MaxSide = DefaultMaxSide
	}
	if o.Quality <= 0 {
		o.Quality = DefaultQuality
	}
	o.Quality = min(o.Quality, 100)
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.MaxInput <= 0 {
		o.MaxInput = DefaultMaxInput
	}
	return o
}

// Info describes a re-encoding.
type Info struct {
	Format        string // of the input: "jpeg", "png" or "gif"
	Width, Height int    // of the output
	Orientation   int    // the EXIF orientation applied (1: none)
}

// ErrImage is an input that is not an image Reencode takes, or too large.
var ErrImage = errors.New("not a photo")

// MediaType is the media type of Reencode's output.
const MediaType = "image/jpeg"

// Reencode re-encodes a photo as a JPEG holding its pixels and nothing else.
func Reencode(in []byte, o Options) ([]byte, Info, error) {
	o = o.withDefaults()
	var info Info
	if len(in) > o.MaxInput {
		return nil, info, fmt.Errorf("%w: %d bytes, limit %d", ErrImage, len(in), o.MaxInput)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(in))
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v", ErrImage, err)
	}
	info.Format = format
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > int64(o.MaxPixels) {
		return nil, info, fmt.Errorf("%w: %d×%d pixels, limit %d", ErrImage, cfg.Width, cfg.Height, o.MaxPixels)
	}
	info.Orientation = 1
	if format == "jpeg" {
		// A damaged or absent EXIF block leaves the photo as it is stored.
		if v, err := Orientation(in); err == nil {
			info.Orientation = v
		}
	}
	src, _, err := image.Decode(bytes.NewReader(in))
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v", ErrImage, err)
	}
	sb := src.Bounds()
	if sb.Dx() != cfg.Width || sb.Dy() != cfg.Height {
		return nil, info, fmt.Errorf("%w: decoded %v, header said %d×%d", ErrImage, sb, cfg.Width, cfg.Height)
	}
	// Scale in the stored orientation to the size that, turned upright, fits.
	w, h := sb.Dx(), sb.Dy()
	if info.Orientation >= 5 { // turned a quarter: upright is h × w
		w, h = h, w
	}
	scale := math.Min(1, float64(o.MaxSide)/float64(max(w, h)))
	uw, uh := max(1, int(math.Round(float64(w)*scale))), max(1, int(math.Round(float64(h)*scale)))
	sw, sh := uw, uh
	if info.Orientation >= 5 {
		sw, sh = uh, uw
	}
	scaled := image.NewRGBA(image.Rect(0, 0, sw, sh))
	// Transparent pixels (PNG, GIF) go over white: JPEG has no alpha.
	draw.Draw(scaled, scaled.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.BiLinear.Scale(scaled, scaled.Bounds(), src, sb, draw.Over, nil)
	out := orient(scaled, info.Orientation)
	info.Width, info.Height = out.Bounds().Dx(), out.Bounds().Dy()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: o.Quality}); err != nil {
		return nil, info, err
	}
	return buf.Bytes(), info, nil
}

// orient turns an image stored with EXIF orientation v upright. v is as in
// TIFF 6.0 / EXIF 2.3: where the stored 0th row and 0th column go.
func orient(src *image.RGBA, v int) *image.RGBA {
	if v <= 1 || v > 8 {
		return src
	}
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dw, dh := w, h
	if v >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch v {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // turned 180°
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // stored turned 90° anticlockwise: turn clockwise
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // stored turned 90° clockwise: turn anticlockwise
				dx, dy = y, w-1-x
			}
			si, di := src.PixOffset(x, y), dst.PixOffset(dx, dy)
			copy(dst.Pix[di:di+4], src.Pix[si:si+4])
		}
	}
	return dst
}
