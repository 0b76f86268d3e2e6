package bundle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// MaxEnvelope is the largest envelope, in bytes, a bundle may carry.
const MaxEnvelope = 65536

// Version is the bundle format version written by this package and the only
// one it reads.
const Version = 1

// ErrNotBundle is returned (wrapped) when the input does not start with the
// bundle magic.
var ErrNotBundle = errors.New("not a grapevine bundle")

// ErrUnsupportedVersion is returned (wrapped, with the version number) when
// the input is a bundle of a format version this package does not read.
var ErrUnsupportedVersion = errors.New("unsupported grapevine bundle version")

// magic is PNG-style: a high-bit byte catches 7-bit transfers, CR LF and LF
// catch line-ending conversion, 0x1a stops DOS "type".
var magic = [8]byte{0x89, 'G', 'V', 'B', '\r', '\n', 0x1a, '\n'}

// syncMarker starts every record. 0xFB never occurs in UTF-8 text, and the
// marker has no proper prefix equal to a proper suffix, so a byte-by-byte
// scan cannot overlap a partial match with a real one.
var syncMarker = [4]byte{0xFB, 0x1D, 0xC5, 0x7E}

const (
	headerLen    = len(magic) + 1       // magic || version
	recordPrefix = 4 + 4                // sync || length
	recordTrail  = 4                    // CRC-32C
	endRecordLen = recordPrefix + 4 + 4 // sync || 0 || count || CRC
	maxRecordLen = recordPrefix + MaxEnvelope + recordTrail
	readBufSize  = 2 * maxRecordLen // must be >= maxRecordLen for Peek
	writeBufSize = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordCRC is CRC-32C over the 4 length bytes followed by body.
func recordCRC(lenField []byte, body []byte) uint32 {
	c := crc32.Update(0, castagnoli, lenField)
	return crc32.Update(c, castagnoli, body)
}

// Writer writes a bundle to an io.Writer. Call Close to write the end
// record; without it the bundle reads as truncated. Writer buffers
// internally, so bytes reach the underlying writer only as the buffer fills
// and at Close. Errors are sticky.
type Writer struct {
	bw     *bufio.Writer
	count  int
	closed bool
	err    error
	pre    [recordPrefix]byte // scratch, kept here so Add does not allocate
	crc    [recordTrail]byte
}

// NewWriter writes the bundle header to w and returns a Writer.
func NewWriter(w io.Writer) (*Writer, error) {
	bw := bufio.NewWriterSize(w, writeBufSize)
	var h [headerLen]byte
	copy(h[:], magic[:])
	h[len(magic)] = Version
	bw.Write(h[:]) // error is sticky in bufio; surfaced by Flush
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("bundle: writing header: %w", err)
	}
	return &Writer{bw: bw}, nil
}

// Add appends one envelope as a record. The envelope must be 1..MaxEnvelope
// bytes long. Add does not retain envelope.
func (w *Writer) Add(envelope []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("bundle: Add after Close")
	}
	if len(envelope) == 0 {
		return errors.New("bundle: empty envelope")
	}
	if len(envelope) > MaxEnvelope {
		return fmt.Errorf("bundle: envelope of %d bytes exceeds maximum of %d", len(envelope), MaxEnvelope)
	}
	if uint64(w.count) >= math.MaxUint32 {
		return errors.New("bundle: too many envelopes for one bundle")
	}
	pre, crc := w.pre[:], w.crc[:]
	copy(pre[:4], syncMarker[:])
	binary.BigEndian.PutUint32(pre[4:], uint32(len(envelope)))
	binary.BigEndian.PutUint32(crc, recordCRC(pre[4:], envelope))
	w.bw.Write(pre)
	w.bw.Write(envelope)
	if _, err := w.bw.Write(crc); err != nil {
		w.err = fmt.Errorf("bundle: writing record: %w", err)
		return w.err
	}
	w.count++
	return nil
}

// Close writes the end record (carrying the record count) and flushes. It
// does not close the underlying writer. Calling Close twice is an error.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("bundle: Close called twice")
	}
	w.closed = true
	var end [endRecordLen]byte
	copy(end[:4], syncMarker[:])
	// end[4:8] is the zero length field.
	binary.BigEndian.PutUint32(end[8:12], uint32(w.count))
	binary.BigEndian.PutUint32(end[12:16], recordCRC(end[4:8], end[8:12]))
	w.bw.Write(end[:])
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("bundle: writing end record: %w", err)
		return w.err
	}
	return nil
}

// Count reports how many envelopes have been added.
func (w *Writer) Count() int { return w.count }
