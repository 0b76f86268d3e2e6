package photo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

// entry is a TIFF IFD entry with its value's bytes (big-endian).
type entry struct {
	tag, typ uint16
	count    uint32
	val      []byte
}

func ascii(tag uint16, s string) entry {
	return entry{tag, 2, uint32(len(s) + 1), append([]byte(s), 0)}
}

func long(tag uint16, v uint32) entry { return entry{tag, 4, 1, binary.BigEndian.AppendUint32(nil, v)} }

func short(tag uint16, v uint16) entry {
	return entry{tag, 3, 1, binary.BigEndian.AppendUint16(nil, v)}
}

func rationals(tag uint16, vs ...uint32) entry {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return entry{tag, 5, uint32(len(vs) / 2), b}
}

// ifd lays out an IFD that starts at offset start of the TIFF structure,
// with values longer than 4 bytes after it.
func ifd(start int, es []entry) []byte {
	head := 2 + 12*len(es) + 4
	b := binary.BigEndian.AppendUint16(nil, uint16(len(es)))
	var data []byte
	for _, e := range es {
		b = binary.BigEndian.AppendUint16(b, e.tag)
		b = binary.BigEndian.AppendUint16(b, e.typ)
		b = binary.BigEndian.AppendUint32(b, e.count)
		if len(e.val) <= 4 {
			b = append(b, append(bytes.Clone(e.val), make([]byte, 4-len(e.val))...)...)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(start+head+len(data)))
		data = append(data, e.val...)
		if len(data)%2 == 1 {
			data = append(data, 0)
		}
	}
	b = append(b, 0, 0, 0, 0) // no next IFD
	return append(b, data...)
}

// The metadata a phone writes that must not leave the device.
var secrets = []string{
	"GrapevineCam", "Model-X9", "2026:03:14 15:09:26", "2026:03:14 09:26:53", "SN-4815162342",
	"Kathmandu Durbar Square", "a comment naming the photographer", "<x:xmpmeta", "Exif", "Photoshop",
}

// gpsLatitude is 27° 42' 14.88" as EXIF rationals.
var gpsLatitude = []uint32{27, 1, 42, 1, 1488, 100}

// exifSegment builds an APP1 EXIF segment, big-endian TIFF, with the given
// orientation, camera make, model and serial, times and a GPS position.
func exifSegment(orientation uint16) []byte {
	exifIFD := []entry{ascii(0x9003, "2026:03:14 09:26:53"), ascii(0xa431, "SN-4815162342")}
	gpsIFD := []entry{ascii(0x0001, "N"), rationals(0x0002, gpsLatitude...), ascii(0x0003, "E"),
		rationals(0x0004, 85, 1, 18, 1, 3024, 100)}
	ifd0 := func(exifAt, gpsAt uint32) []entry {
		return []entry{ascii(0x010f, "GrapevineCam"), ascii(0x0110, "Model-X9"), short(0x0112, orientation),
			ascii(0x0132, "2026:03:14 15:09:26"), long(0x8769, exifAt), long(0x8825, gpsAt)}
	}
	first := ifd(8, ifd0(0, 0))
	exifAt := 8 + len(first)
	ex := ifd(exifAt, exifIFD)
	gpsAt := exifAt + len(ex)
	tiff := append([]byte("MM\x00*"), 0, 0, 0, 8)
	tiff = append(tiff, ifd(8, ifd0(uint32(exifAt), uint32(gpsAt)))...)
	tiff = append(tiff, ex...)
	tiff = append(tiff, ifd(gpsAt, gpsIFD)...)
	return segment(0xe1, append([]byte("Exif\x00\x00"), tiff...))
}

func segment(marker byte, payload []byte) []byte {
	b := []byte{0xff, marker}
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)+2))
	return append(b, payload...)
}

// withMetadata inserts, after SOI, EXIF, XMP, Photoshop (IPTC) and comment
// segments into an encoded JPEG.
func withMetadata(jpg []byte, orientation uint16) []byte {
	meta := exifSegment(orientation)
	meta = append(meta, segment(0xe1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPS 27.7041N 85.3084E</x:xmpmeta>"))...)
	meta = append(meta, segment(0xed, []byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x1c\x1c\x02\x5a\x00\x17Kathmandu Durbar Square"))...)
	meta = append(meta, segment(0xfe, []byte("a comment naming the photographer"))...)
	out := append([]byte{0xff, 0xd8}, meta...)
	return append(out, jpg[2:]...)
}

// quadrants is w×h, its top-left quadrant red and the rest blue.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{0, 0, 255, 255}
			if x < w/2 && y < h/2 {
				c = color.RGBA{255, 0, 0, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// markers lists a JPEG's markers up to the first scan.
func markers(t *testing.T, jpg []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(jpg, []byte{0xff, 0xd8}) {
		t.Fatal("no SOI")
	}
	var ms []byte
	for p := 2; ; {
		if p+4 > len(jpg) || jpg[p] != 0xff {
			t.Fatalf("bad marker at %d", p)
		}
		m := jpg[p+1]
		ms = append(ms, m)
		if m == 0xda {
			return ms
		}
		p += 2 + int(binary.BigEndian.Uint16(jpg[p+2:]))
	}
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r > 0xc000 && g < 0x4000 && b < 0x4000
}

func isBlue(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return b > 0xc000 && r < 0x4000 && g < 0x4000
}

func TestMetadataIsStripped(t *testing.T) {
	in := withMetadata(encodeJPEG(t, quadrants(64, 32)), 6)
	if v, err := Orientation(in); err != nil || v != 6 {
		t.Fatalf("the fixture's orientation: %d, %v", v, err)
	}
	for _, s := range secrets {
		if !bytes.Contains(in, []byte(s)) {
			t.Fatalf("the fixture lacks %q", s)
		}
	}
	lat := rationals(0, gpsLatitude...).val
	if !bytes.Contains(in, lat) {
		t.Fatal("the fixture lacks the GPS latitude")
	}

	out, info, err := Reencode(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Only tables, the frame and the scan: no APPn, no COM.
	for _, m := range markers(t, out) {
		if m != 0xdb && m != 0xc0 && m != 0xc4 && m != 0xda {
			t.Fatalf("output has marker %#02x (markers %x)", m, markers(t, out))
		}
	}
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Fatalf("%q survived", s)
		}
	}
	if bytes.Contains(out, lat) {
		t.Fatal("the GPS latitude survived")
	}
	// Turned upright (orientation 6: a quarter clockwise): 32 wide, 64 high,
	// the stored top-left quadrant now top-right.
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 64 || info.Width != 32 || info.Height != 64 || info.Orientation != 6 {
		t.Fatalf("output %v, info %+v", b, info)
	}
	if !isRed(img.At(24, 8)) || !isBlue(img.At(8, 8)) || !isBlue(img.At(24, 56)) {
		t.Fatal("not turned upright")
	}
}

func TestEveryOrientation(t *testing.T) {
	// Where the stored red top-left quadrant of a 64×32 image ends up.
	for v, want := range map[uint16]image.Point{
		1: {16, 8}, 2: {48, 8}, 3: {48, 24}, 4: {16, 24},
		5: {8, 16}, 6: {24, 16}, 7: {24, 48}, 8: {8, 48},
	} {
		out, info, err := Reencode(withMetadata(encodeJPEG(t, quadrants(64, 32)), v), Options{})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := jpeg.Decode(bytes.NewReader(out))
		if info.Orientation != int(v) || !isRed(img.At(want.X, want.Y)) {
			t.Errorf("orientation %d: %+v, red not at %v", v, info, want)
		}
	}
}

func TestResize(t *testing.T) {
	in := withMetadata(encodeJPEG(t, quadrants(3000, 2000)), 8)
	out, info, err := Reencode(in, Options{MaxSide: 1600, Quality: 70})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
	if err != nil || cfg.Width != 1067 || cfg.Height != 1600 || info.Width != 1067 || info.Height != 1600 {
		t.Fatalf("%+v %+v %v", cfg, info, err)
	}
	// Small images keep their size; PNG with transparency goes over white.
	small := image.NewNRGBA(image.Rect(0, 0, 10, 7))
	var b bytes.Buffer
	png.Encode(&b, small)
	out, info, err = Reencode(b.Bytes(), Options{})
	if err != nil || info.Width != 10 || info.Height != 7 || info.Format != "png" {
		t.Fatal(info, err)
	}
	img, _ := jpeg.Decode(bytes.NewReader(out))
	if r, g, bb, _ := img.At(3, 3).RGBA(); r < 0xf000 || g < 0xf000 || bb < 0xf000 {
		t.Fatal("transparent pixels are not white")
	}
}

func TestRefusedBeforeDecoding(t *testing.T) {
	// A header claiming 60,000 × 60,000 pixels is refused from the header.
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	huge := b.Bytes()
	binary.BigEndian.PutUint32(huge[16:], 60000)
	binary.BigEndian.PutUint32(huge[20:], 60000)
	if _, _, err := Reencode(huge, Options{}); !errors.Is(err, ErrImage) {
		t.Fatal(err)
	}
	if _, _, err := Reencode([]byte("GIF89a not really"), Options{}); !errors.Is(err, ErrImage) {
		t.Fatal(err)
	}
	if _, _, err := Reencode(make([]byte, 100), Options{MaxInput: 99}); !errors.Is(err, ErrImage) {
		t.Fatal(err)
	}
}

func TestOrientationStrict(t *testing.T) {
	good := withMetadata(encodeJPEG(t, quadrants(8, 8)), 3)
	if v, err := Orientation(good); v != 3 || err != nil {
		t.Fatal(v, err)
	}
	if v, err := Orientation(encodeJPEG(t, quadrants(8, 8))); v != 1 || err != nil {
		t.Fatal("no EXIF:", v, err)
	}
	seg := exifSegment(3)
	tiff := 2 + 2 + 6 // marker, length, "Exif\0\0"
	cases := map[string][]byte{
		"not a JPEG":      []byte("\x89PNG"),
		"cut segment":     good[:20],
		"value 9":         append([]byte{0xff, 0xd8}, exifSegment(9)...),
		"bad TIFF header": append([]byte{0xff, 0xd8}, append(bytes.Clone(seg[:tiff]), append([]byte("XX"), seg[tiff+2:]...)...)...),
	}
	// The orientation as LONG instead of SHORT.
	typ := bytes.Clone(seg)
	i := bytes.Index(typ, []byte{0x01, 0x12, 0x00, 0x03})
	typ[i+3] = 4
	cases["wrong type"] = append([]byte{0xff, 0xd8}, typ...)
	// IFD0 claims more entries than fit.
	many := bytes.Clone(seg)
	binary.BigEndian.PutUint16(many[tiff+8:], 500)
	cases["IFD past the end"] = append([]byte{0xff, 0xd8}, many...)
	// Orientation given twice.
	twice := bytes.Clone(seg)
	j := bytes.Index(twice, []byte{0x01, 0x32, 0x00, 0x02}) // DateTime's entry becomes a second orientation
	copy(twice[j:], []byte{0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, 1, 0, 0})
	cases["given twice"] = append([]byte{0xff, 0xd8}, twice...)
	for name, b := range cases {
		if v, err := Orientation(b); !errors.Is(err, ErrExif) {
			t.Errorf("%s: %d, %v", name, v, err)
		}
	}
}

func FuzzOrientation(f *testing.F) {
	f.Add(withMetadata(encodeJPEG(f, quadrants(8, 8)), 6))
	f.Add(append([]byte{0xff, 0xd8}, exifSegment(2)...))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Orientation(b)
		if err == nil && (v < 1 || v > 8) {
			t.Fatalf("orientation %d without an error", v)
		}
	})
}

// FuzzReencode: malformed images err, never panic, and the pixel limit is
// kept; whatever is accepted comes out as a JPEG without metadata.
func FuzzReencode(f *testing.F) {
	f.Add(withMetadata(encodeJPEG(f, quadrants(16, 8)), 6))
	var b bytes.Buffer
	png.Encode(&b, quadrants(5, 9))
	f.Add(b.Bytes())
	b.Reset()
	gif.Encode(&b, quadrants(7, 3), nil)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		o := Options{MaxPixels: 1 << 16, MaxSide: 32}
		out, info, err := Reencode(in, o)
		if err != nil {
			return
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width != info.Width || cfg.Height != info.Height || max(cfg.Width, cfg.Height) > 32 {
			t.Fatalf("output %+v, %+v, %v", cfg, info, err)
		}
		for _, m := range markers(t, out) {
			if m >= 0xe0 && m <= 0xef || m == 0xfe {
				t.Fatalf("marker %#02x in the output", m)
			}
		}
	})
}

func TestFormats(t *testing.T) {
	var b bytes.Buffer
	gray := image.NewGray(image.Rect(0, 0, 40, 30))
	jpeg.Encode(&b, gray, nil)
	inputs := map[string][]byte{"gray jpeg": bytes.Clone(b.Bytes())}
	b.Reset()
	png.Encode(&b, image.NewNRGBA64(image.Rect(0, 0, 40, 30)))
	inputs["16-bit png"] = bytes.Clone(b.Bytes())
	b.Reset()
	pal := image.NewPaletted(image.Rect(0, 0, 40, 30), color.Palette{color.Black, color.White})
	gif.Encode(&b, pal, nil)
	inputs["gif"] = bytes.Clone(b.Bytes())
	for name, in := range inputs {
		out, info, err := Reencode(in, Options{MaxSide: 20})
		if err != nil || info.Width != 20 || info.Height != 15 {
			t.Fatalf("%s: %+v %v", name, info, err)
		}
		if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
			t.Fatal(name, err)
		}
	}
}
