package bundle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
)

// crafted returns a bundle of about size bytes made to be expensive to
// resynchronise over (finding 10): a sync marker with the largest length
// every 8 bytes, so that every position a reader tries claims a 64 KiB
// record whose CRC fails; every 64 KiB, an intact one-byte record, so the
// reader keeps leaving and re-entering damage; and an end record.
func crafted(size int) []byte {
	out := append(append([]byte{}, magic[:]...), Version)
	var bad [8]byte
	copy(bad[:], syncMarker[:])
	binary.BigEndian.PutUint32(bad[4:], MaxEnvelope)
	good, _ := encodeRecords([][]byte{{0x42}})
	count := 0
	for len(out) < size {
		if len(out)%(64<<10) < 8 {
			out = append(out, good...)
			count++
		}
		out = append(out, bad[:]...)
	}
	var end [endRecordLen]byte
	copy(end[:], syncMarker[:])
	binary.BigEndian.PutUint32(end[8:12], uint32(count))
	binary.BigEndian.PutUint32(end[12:16], recordCRC(end[4:8], end[8:12]))
	return append(out, end[:]...)
}

// encodeRecords returns the records of a bundle of envs (no header), with
// its end record.
func encodeRecords(envs [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		return nil, err
	}
	for _, e := range envs {
		if err := w.Add(e); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()[headerLen:]
	if len(envs) > 0 {
		b = b[:len(b)-endRecordLen]
	}
	return b, nil
}

// TestCraftedResyncIsLinear reads crafted files of 256 KiB to 4 MiB and
// counts the bytes run through the CRC: Read's work stays within 16 times the
// file's size at every size (linear), where the reader before it ran
// thousands of times the file through the CRC. Work is counted, not timed.
func TestCraftedResyncIsLinear(t *testing.T) {
	for _, size := range []int{256 << 10, 1 << 20, 4 << 20} {
		data := crafted(size)
		var got [][]byte
		rep, work, err := read(bytes.NewReader(data), func(e []byte) error { got = append(got, bytes.Clone(e)); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if rep.Envelopes == 0 || rep.Envelopes != len(got) || !rep.Complete {
			t.Fatalf("size %d: %+v", size, rep)
		}
		perByte := float64(work) / float64(len(data))
		t.Logf("%d KiB: %d records, %d damaged regions, %.2f bytes through the CRC per byte of file", size>>10, rep.Envelopes, rep.Damaged, perByte)
		if perByte > 16 {
			t.Errorf("%d KiB: %.1f bytes through the CRC per byte of file; want at most 16", size>>10, perByte)
		}
		if size == 256<<10 {
			referenceCRCBytes = 0
			ref, err := referenceRead(bytes.NewReader(data), func([]byte) error { return nil })
			if err != nil || ref != rep {
				t.Fatalf("the reader before reports %+v, %v; Read %+v", ref, err, rep)
			}
			t.Logf("the reader before: %.0f bytes through the CRC per byte of file", float64(referenceCRCBytes)/float64(len(data)))
			if referenceCRCBytes < 1000*int64(len(data)) {
				t.Errorf("the crafted file is not hard: the reader before did only %d bytes of CRC", referenceCRCBytes)
			}
		}
	}
}

// FuzzReadMatchesReference: Read yields the same records and the same
// report as the reader before it, on any input.
func FuzzReadMatchesReference(f *testing.F) {
	envs := [][]byte{[]byte("a"), []byte("hello"), bytes.Repeat([]byte{7}, 300)}
	data, offs := encode(f, envs)
	f.Add(data)
	f.Add(data[:offs[1]+3])
	bad := bytes.Clone(data)
	bad[offs[0]+6] ^= 1
	f.Add(bad)
	f.Add(crafted(2000))
	f.Add(append(append([]byte{}, magic[:]...), Version))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want [][]byte
		rep, err := Read(bytes.NewReader(data), func(e []byte) error { got = append(got, bytes.Clone(e)); return nil })
		ref, rerr := referenceRead(bytes.NewReader(data), func(e []byte) error { want = append(want, bytes.Clone(e)); return nil })
		if (err == nil) != (rerr == nil) || rep != ref || len(got) != len(want) {
			t.Fatalf("Read: %+v, %v, %d records; before: %+v, %v, %d records", rep, err, len(got), ref, rerr, len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}

// BenchmarkResync reads a crafted 4 MiB file (see crafted) and reports the
// throughput; "before" is the reader before resynchronisation was linear,
// on a 256 KiB file.
func BenchmarkResync(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
		read func(io.Reader, func([]byte) error) (Report, error)
	}{{"linear", 4 << 20, Read}, {"before", 256 << 10, referenceRead}} {
		b.Run(fmt.Sprintf("%s/%dKiB", c.name, c.size>>10), func(b *testing.B) {
			data := crafted(c.size)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := c.read(bytes.NewReader(data), func([]byte) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data))*float64(b.N)/b.Elapsed().Seconds()/(1<<20), "MiB/s")
		})
	}
}
