package bundle

import (
	"bufio"
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
// 2*MaxEnvelope bytes, whatever the length fields claim.
func Read(r io.Reader, fn func(envelope []byte) error) (Report, error) {
	var rep Report
	br := bufio.NewReaderSize(r, readBufSize)

	h, err := br.Peek(headerLen)
	if err != nil && err != io.EOF {
		return rep, fmt.Errorf("bundle: reading header: %w", err)
	}
	if len(h) < len(magic) {
		if len(h) == 0 {
			return rep, fmt.Errorf("%w: the file is empty", ErrNotBundle)
		}
		return rep, fmt.Errorf("%w: the file is %d bytes, shorter than a bundle's header (bundles are written by grapevine export)", ErrNotBundle, len(h))
	}
	if !bytes.Equal(h[:len(magic)], magic[:]) {
		return rep, fmt.Errorf("%w: the file does not begin as a bundle does (bundles are written by grapevine export)", ErrNotBundle)
	}
	if len(h) < headerLen {
		// The magic is intact but the file stops before the version
		// byte: a bundle truncated to nothing.
		return rep, nil
	}
	if v := h[len(magic)]; v != Version {
		return rep, fmt.Errorf("%w: the bundle is of format version %d, and this grapevine reads version %d: import it with another grapevine (grapevine version)", ErrUnsupportedVersion, v, Version)
	}
	br.Discard(headerLen)

	// scanning is set while inside a damaged region, looking for the next
	// sync marker. beginDamage skips the first byte of the bad record and
	// starts a scan; the region is counted in Damaged when the scan ends.
	scanning := false
	beginDamage := func() {
		br.Discard(1)
		rep.SkippedBytes++
		scanning = true
	}

	for {
		if scanning {
			found, err := scanToSync(br, &rep.SkippedBytes)
			if err != nil && err != io.EOF {
				return rep, fmt.Errorf("bundle: reading: %w", err)
			}
			rep.Damaged++
			scanning = false
			if !found {
				return rep, nil
			}
		}

		p, err := br.Peek(recordPrefix)
		if err != nil && err != io.EOF {
			return rep, fmt.Errorf("bundle: reading: %w", err)
		}
		if len(p) == 0 {
			return rep, nil // truncated exactly at a record boundary
		}
		if len(p) < recordPrefix {
			beginDamage() // cut short by EOF
			continue
		}
		if !bytes.Equal(p[:4], syncMarker[:]) {
			beginDamage()
			continue
		}
		n := binary.BigEndian.Uint32(p[4:8])

		if n == 0 {
			// End record.
			e, err := br.Peek(endRecordLen)
			if err != nil && err != io.EOF {
				return rep, fmt.Errorf("bundle: reading: %w", err)
			}
			if len(e) < endRecordLen {
				beginDamage()
				continue
			}
			if binary.BigEndian.Uint32(e[12:16]) != recordCRC(e[4:8], e[8:12]) {
				beginDamage()
				continue
			}
			count := binary.BigEndian.Uint32(e[8:12])
			rep.Complete = uint64(count) == uint64(rep.Envelopes)
			br.Discard(endRecordLen)
			trailing, err := io.Copy(io.Discard, br)
			if err != nil {
				return rep, fmt.Errorf("bundle: reading: %w", err)
			}
			if trailing > 0 {
				rep.Damaged++
				rep.SkippedBytes += trailing
			}
			return rep, nil
		}

		if n > MaxEnvelope {
			beginDamage()
			continue
		}
		total := recordPrefix + int(n) + recordTrail
		rec, err := br.Peek(total)
		if err != nil && err != io.EOF {
			return rep, fmt.Errorf("bundle: reading: %w", err)
		}
		if len(rec) < total {
			beginDamage()
			continue
		}
		body := rec[recordPrefix : recordPrefix+int(n)]
		if binary.BigEndian.Uint32(rec[total-4:]) != recordCRC(rec[4:8], body) {
			beginDamage()
			continue
		}
		rep.Envelopes++
		if err := fn(body); err != nil {
			return rep, err
		}
		br.Discard(total)
	}
}

// scanToSync discards bytes until the next sync marker is at the front of
// br (found == true) or input ends, adding the discarded count to *skipped.
func scanToSync(br *bufio.Reader, skipped *int64) (found bool, err error) {
	for {
		buf, err := br.Peek(readBufSize)
		if i := bytes.Index(buf, syncMarker[:]); i >= 0 {
			br.Discard(i)
			*skipped += int64(i)
			return true, nil
		}
		if err != nil {
			// EOF or a read error: nothing more will come; the
			// remaining bytes cannot contain a whole marker.
			if err == io.EOF {
				br.Discard(len(buf))
				*skipped += int64(len(buf))
			}
			return false, err
		}
		// Keep the last len(syncMarker)-1 bytes: they may begin a marker.
		k := len(buf) - (len(syncMarker) - 1)
		br.Discard(k)
		*skipped += int64(k)
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
