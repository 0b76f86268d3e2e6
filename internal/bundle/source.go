package bundle

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
)

// source buffers the records part of a bundle for Read, with the CRC-32C
// of the stream up to every 64-byte boundary of what it holds, so that the
// CRC of any span it holds costs at most 126 bytes of CRC and two products
// (see spanCRC), and every byte of the file is run through the CRC once.
//
// Offsets are stream offsets from the first byte after the header.
type source struct {
	r    io.Reader
	buf  []byte // the stream from base on; cap fixed
	base int64  // stream offset of buf[0], a multiple of 64
	eof  bool   // r returned io.EOF
	err  error  // r failed otherwise
	// cps[k] is the CRC of the stream up to base+64k; cps[0] is always
	// known, the rest are made as asked for.
	cps []uint32
	// crcBytes counts the bytes run through the CRC, for tests: it stays
	// within a small multiple of the file's size however it is crafted.
	crcBytes int64
}

const cpBlock = 64

func newSource(r io.Reader) *source {
	return &source{r: r, buf: make([]byte, 0, readBufSize), cps: make([]uint32, 1, readBufSize/cpBlock+2)}
}

// end returns the stream offset just past what is buffered.
func (s *source) end() int64 { return s.base + int64(len(s.buf)) }

// fill makes sure that the n bytes from p are buffered (n <= maxRecordLen),
// or that everything up to the end of the stream is. It drops what lies
// before p (down to the 64-byte boundary below it) when it needs the room.
func (s *source) fill(p int64, n int) {
	empty := 0
	for s.end()-p < int64(n) && !s.eof && s.err == nil {
		if p-s.base+int64(n) > int64(cap(s.buf)) {
			drop := (p - s.base) / cpBlock * cpBlock
			s.buf = s.buf[:copy(s.buf, s.buf[drop:])]
			s.base += drop
			k := int(drop / cpBlock)
			s.cps = s.cps[:copy(s.cps, s.cps[k:])]
		}
		m, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+m]
		// Checkpoints for every whole block now buffered: each byte goes
		// through the CRC here, once.
		for from := int64(len(s.cps)-1) * cpBlock; from+cpBlock <= int64(len(s.buf)); from += cpBlock {
			s.cps = append(s.cps, crc32.Update(s.cps[len(s.cps)-1], castagnoli, s.buf[from:from+cpBlock]))
			s.crcBytes += cpBlock
		}
		switch {
		case err == io.EOF:
			s.eof = true
		case err != nil:
			s.err = err
		case m == 0:
			if empty++; empty >= 100 {
				s.err = io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
}

// avail returns the buffered bytes from p on.
func (s *source) avail(p int64) []byte { return s.buf[p-s.base:] }

// crcAt returns the CRC of the stream up to p, which must be buffered.
func (s *source) crcAt(p int64) uint32 {
	k := int((p - s.base) / cpBlock)
	from := int64(k) * cpBlock
	s.crcBytes += p - s.base - from
	return crc32.Update(s.cps[k], castagnoli, s.buf[from:p-s.base])
}

// spanCRC returns the CRC of the stream from a to b, both buffered.
func (s *source) spanCRC(a, b int64) uint32 {
	return spanCRC(s.crcAt(a), s.crcAt(b), int(b-a))
}

// scan returns the offset of the first sync marker at or after p, or -1 if
// the stream ends first, reading on as needed.
func (s *source) scan(p int64) int64 {
	for {
		if i := bytes.Index(s.avail(p), syncMarker[:]); i >= 0 {
			return p + int64(i)
		}
		if s.eof || s.err != nil {
			return -1
		}
		// Keep the last len(syncMarker)-1 bytes: they may begin a marker.
		p = max(p, s.end()-int64(len(syncMarker)-1))
		s.fill(p, maxRecordLen)
	}
}

// failure returns the read error that stopped the stream, if any.
func (s *source) failure() error {
	if s.err != nil && !errors.Is(s.err, io.EOF) {
		return s.err
	}
	return nil
}
