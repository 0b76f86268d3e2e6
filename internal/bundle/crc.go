package bundle

import "sync"

// Resynchronising over a damaged region tries a record at every sync
// marker, and a crafted file can put a marker with a length of 65,536 every
// eight bytes: checking each candidate's CRC afresh would cost 64 KiB per
// eight bytes of file. Instead the reader keeps the CRC-32C of the stream up
// to every 64-byte boundary of what it has buffered, and gets the CRC of any
// span from the CRCs at its two ends:
//
//	crc(A || B) = crc(A) * x^(8|B|) xor crc(B)    (mod the CRC polynomial)
//
// so crc(B) = crc(A||B) xor crc(A) * x^(8|B|), the product costing 32 steps.
// Every byte is run through the CRC once, whatever the damage.

// castagnoliReflected is the CRC-32C polynomial, bit-reversed.
const castagnoliReflected = 0x82F63B78

// multmodp returns a*b modulo the CRC polynomial, in the reflected
// representation of zlib's crc32_combine (x^0 is bit 31).
func multmodp(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow8 returns x^(8k) for every k a span of a record may have (up to
// 4 + MaxEnvelope bytes), made at the first damage a reader meets: 256 KiB,
// so that a span's CRC costs one product.
var xPow8 = sync.OnceValue(func() []uint32 {
	t := make([]uint32, 4+MaxEnvelope+1)
	t[0] = 1 << 31           // x^0
	x8 := uint32(1<<31) >> 8 // x^8
	for k := 1; k < len(t); k++ {
		t[k] = multmodp(x8, t[k-1])
	}
	return t
})

// shiftCRC returns crc * x^(8k): what crc32_combine multiplies the CRC of
// the first part by. k must be at most 4 + MaxEnvelope.
func shiftCRC(crc uint32, k int) uint32 {
	return multmodp(xPow8()[k], crc)
}

// spanCRC returns the CRC-32C of B from the CRC of A (before) and that of A
// followed by B (after), B being k bytes long.
func spanCRC(before, after uint32, k int) uint32 {
	return after ^ shiftCRC(before, k)
}
