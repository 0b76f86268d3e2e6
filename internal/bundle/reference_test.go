package bundle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// referenceRead is the reader before resynchronisation was made linear: it
// checks the CRC of every record it tries afresh, which a crafted file makes
// quadratic. Tests compare Read with it (same records, same report) and
// count its work against Read's.

// referenceRead is Read as it was.
func referenceRead(r io.Reader, fn func(envelope []byte) error) (Report, error) {
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
			found, err := referenceScanToSync(br, &rep.SkippedBytes)
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
			if binary.BigEndian.Uint32(e[12:16]) != referenceCRC(e[4:8], e[8:12]) {
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
		if binary.BigEndian.Uint32(rec[total-4:]) != referenceCRC(rec[4:8], body) {
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
func referenceScanToSync(br *bufio.Reader, skipped *int64) (found bool, err error) {
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

// referenceCRCBytes counts the bytes referenceRead runs through the CRC.
var referenceCRCBytes int64

func referenceCRC(lenField, body []byte) uint32 {
	referenceCRCBytes += int64(len(lenField) + len(body))
	return recordCRC(lenField, body)
}
