package bundle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Report says what Read found.
type Report struct {
	Envelopes    int   // intact records yielded
	Damaged      int   // records/regions skipped because of bad length or CRC (including a final record cut short by EOF), a missing sync marker, or bytes after the end record
	SkippedBytes int64 // bytes skipped while resynchronising; 0 if and only if Damaged is 0
	Complete     bool  // the end record was found and its count matched
}

// Read yields every intact envelope in the bundle read from r to fn, in
// file order. The slice passed to fn is only valid during the call. If fn
// returns an error, Read stops and returns it unwrapped, with the report so
// far.
//
// Damage and truncation are not errors: they are described by the Report.
// Read returns an error only if r does not hold a bundle (ErrNotBundle,
// wrapped), the bundle has an unknown version (ErrUnsupportedVersion,
// wrapped), r fails with something other than io.EOF, or fn fails.
//
// Read streams: memory use is bounded by a fixed buffer of about
// 2*MaxEnvelope bytes, whatever the length fields claim. Its work is linear
// in the file's size, however it is crafted: each byte goes through the CRC
// once, and a record tried while resynchronising costs a few products (see
// spanCRC), not a pass over its claimed length.
func Read(r io.Reader, fn func(envelope []byte) error) (Report, error) {
	rep, _, err := read(r, fn)
	return rep, err
}

// read is Read, also returning how many bytes went through the CRC.
func read(r io.Reader, fn func(envelope []byte) error) (Report, int64, error) {
	var rep Report
	var h [headerLen]byte
	n, err := io.ReadFull(r, h[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return rep, 0, fmt.Errorf("bundle: reading header: %w", err)
	}
	if n < len(magic) {
		if n == 0 {
			return rep, 0, fmt.Errorf("%w: the file is empty", ErrNotBundle)
		}
		return rep, 0, fmt.Errorf("%w: the file is %d bytes, shorter than a bundle's header (bundles are written by grapevine export)", ErrNotBundle, n)
	}
	if !bytes.Equal(h[:len(magic)], magic[:]) {
		return rep, 0, fmt.Errorf("%w: the file does not begin as a bundle does (bundles are written by grapevine export)", ErrNotBundle)
	}
	if n < headerLen {
		// The magic is intact but the file stops before the version
		// byte: a bundle truncated to nothing.
		return rep, 0, nil
	}
	if v := h[len(magic)]; v != Version {
		return rep, 0, fmt.Errorf("%w: the bundle is of format version %d, and this grapevine reads version %d: import it with another grapevine (grapevine version)", ErrUnsupportedVersion, v, Version)
	}
	s := newSource(r)
	err = records(s, &rep, fn)
	if err == nil {
		if ferr := s.failure(); ferr != nil {
			err = fmt.Errorf("bundle: reading: %w", ferr)
		}
	}
	return rep, s.crcBytes, err
}

// records reads records from s until the end record or the end of the
// stream (SPEC.md §8, Reading).
func records(s *source, rep *Report, fn func([]byte) error) error {
	var p int64 // where the next record should start
	// scanning is set while inside a damaged region, looking for the next
	// sync marker. beginDamage skips the first byte of the bad record and
	// starts a scan; the region is counted in Damaged when the scan ends.
	scanning := false
	beginDamage := func() {
		p++
		rep.SkippedBytes++
		scanning = true
	}
	for {
		if scanning {
			q := s.scan(p)
			if s.failure() != nil {
				return nil // reported by read
			}
			rep.Damaged++
			scanning = false
			if q < 0 {
				rep.SkippedBytes += s.end() - p
				return nil
			}
			rep.SkippedBytes += q - p
			p = q
		}
		s.fill(p, maxRecordLen)
		if s.failure() != nil {
			return nil
		}
		b := s.avail(p)
		if len(b) == 0 {
			return nil // truncated exactly at a record boundary
		}
		if len(b) < recordPrefix || !bytes.Equal(b[:4], syncMarker[:]) {
			beginDamage() // cut short by EOF, or no marker
			continue
		}
		n := binary.BigEndian.Uint32(b[4:8])
		if n == 0 {
			// End record.
			if len(b) < endRecordLen || binary.BigEndian.Uint32(b[12:16]) != recordCRC(b[4:8], b[8:12]) {
				beginDamage()
				continue
			}
			count := binary.BigEndian.Uint32(b[8:12])
			rep.Complete = uint64(count) == uint64(rep.Envelopes)
			p += endRecordLen
			trailing := s.end() - p
			for !s.eof && s.err == nil {
				p = s.end()
				s.fill(p, maxRecordLen)
				trailing += s.end() - p
			}
			if s.failure() != nil {
				return nil
			}
			if trailing > 0 {
				rep.Damaged++
				rep.SkippedBytes += trailing
			}
			return nil
		}
		total := recordPrefix + int(n) + recordTrail
		if n > MaxEnvelope || len(b) < total {
			beginDamage()
			continue
		}
		body := b[recordPrefix : recordPrefix+int(n)]
		if binary.BigEndian.Uint32(b[total-4:]) != s.spanCRC(p+4, p+int64(recordPrefix)+int64(n)) {
			beginDamage()
			continue
		}
		rep.Envelopes++
		if err := fn(body); err != nil {
			return err
		}
		p += int64(total)
	}
}

// ReadFile opens path and calls Read on it. Errors other than those from fn
// are wrapped with the path.
func ReadFile(path string, fn func(envelope []byte) error) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err // *PathError already names the file
	}
	defer f.Close()
	fnFailed := false
	rep, err := Read(f, func(env []byte) error {
		if e := fn(env); e != nil {
			fnFailed = true
			return e
		}
		return nil
	})
	if err != nil && !fnFailed {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, err
}
