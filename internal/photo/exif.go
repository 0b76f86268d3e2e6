package photo

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrExif is a malformed JPEG marker sequence or EXIF block.
var ErrExif = errors.New("malformed EXIF")

const tagOrientation = 0x0112

// Orientation reads the EXIF orientation (1 to 8) of a JPEG: the Orientation
// tag of IFD0 in the first APP1 segment that starts "Exif\0\0", found among
// the segments before the first scan. No EXIF, or no such tag, is 1. It
// reads nothing else, and refuses (ErrExif) segments that run past the end,
// a TIFF header or IFD that does not fit, an orientation of another type,
// count or value, and an orientation tag given twice.
func Orientation(jpg []byte) (int, error) {
	if len(jpg) < 2 || jpg[0] != 0xff || jpg[1] != 0xd8 {
		return 0, fmt.Errorf("%w: no JPEG start marker", ErrExif)
	}
	p := 2
	for {
		if p >= len(jpg) || jpg[p] != 0xff {
			return 0, fmt.Errorf("%w: no marker at byte %d", ErrExif, p)
		}
		for p < len(jpg) && jpg[p] == 0xff { // fill bytes
			p++
		}
		if p >= len(jpg) {
			return 0, fmt.Errorf("%w: ends in fill bytes", ErrExif)
		}
		marker := jpg[p]
		p++
		switch {
		case marker == 0xd9 || marker == 0xda: // end of image, start of scan: no EXIF
			return 1, nil
		case marker == 0x00 || marker == 0x01 || marker >= 0xd0 && marker <= 0xd8:
			return 0, fmt.Errorf("%w: marker %#02x before the first scan", ErrExif, marker)
		}
		if p+2 > len(jpg) {
			return 0, fmt.Errorf("%w: segment %#02x has no length", ErrExif, marker)
		}
		n := int(binary.BigEndian.Uint16(jpg[p:]))
		if n < 2 || p+n > len(jpg) {
			return 0, fmt.Errorf("%w: segment %#02x of %d bytes runs past the end", ErrExif, marker, n)
		}
		seg := jpg[p+2 : p+n]
		p += n
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
	}
}

// tiffOrientation reads the orientation from a TIFF structure (EXIF's).
func tiffOrientation(t []byte) (int, error) {
	if len(t) < 8 {
		return 0, fmt.Errorf("%w: TIFF header of %d bytes", ErrExif, len(t))
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0, fmt.Errorf("%w: no TIFF header", ErrExif)
	}
	off := bo.Uint32(t[4:8])
	if off < 8 || uint64(off)+2 > uint64(len(t)) {
		return 0, fmt.Errorf("%w: IFD0 at %d outside %d bytes", ErrExif, off, len(t))
	}
	count := int(bo.Uint16(t[off:]))
	entries := int(off) + 2
	if entries+12*count > len(t) {
		return 0, fmt.Errorf("%w: IFD0 of %d entries runs past the end", ErrExif, count)
	}
	v := 0
	for i := range count {
		e := t[entries+12*i : entries+12*i+12]
		if bo.Uint16(e) != tagOrientation {
			continue
		}
		if v != 0 {
			return 0, fmt.Errorf("%w: orientation given twice", ErrExif)
		}
		if typ, n := bo.Uint16(e[2:]), bo.Uint32(e[4:]); typ != 3 || n != 1 { // SHORT, 1
			return 0, fmt.Errorf("%w: orientation of type %d, count %d", ErrExif, typ, n)
		}
		v = int(bo.Uint16(e[8:]))
		if v < 1 || v > 8 {
			return 0, fmt.Errorf("%w: orientation %d", ErrExif, v)
		}
	}
	if v == 0 {
		return 1, nil
	}
	return v, nil
}
