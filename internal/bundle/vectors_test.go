package bundle

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "testdata/vectors.json"

type vectorReport struct {
	Envelopes    int   `json:"envelopes"`
	Damaged      int   `json:"damaged"`
	SkippedBytes int64 `json:"skipped_bytes"`
	Complete     bool  `json:"complete"`
}

type vector struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Bundle      string       `json:"bundle"`    // hex
	Envelopes   []string     `json:"envelopes"` // hex, in order
	Report      vectorReport `json:"report"`
	// Error is "" for success, "not_bundle" for ErrNotBundle,
	// "unsupported_version" for ErrUnsupportedVersion.
	Error string `json:"error"`
	// Canonical is true when Bundle is exactly what a writer produces for
	// Envelopes, so writers can be checked against it too.
	Canonical bool `json:"canonical"`
}

// makeVectors builds the vectors deterministically from fixed inputs.
func makeVectors(t *testing.T) []vector {
	var vs []vector
	hexes := func(envs [][]byte) []string {
		out := []string{}
		for _, e := range envs {
			out = append(out, hex.EncodeToString(e))
		}
		return out
	}
	add := func(name, desc string, data []byte, canonical bool) {
		got, rep, err := decode(t, data)
		v := vector{
			Name: name, Description: desc, Bundle: hex.EncodeToString(data),
			Envelopes: hexes(got), Canonical: canonical,
			Report: vectorReport(rep),
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrNotBundle):
			v.Error = "not_bundle"
		case errors.Is(err, ErrUnsupportedVersion):
			v.Error = "unsupported_version"
		default:
			t.Fatalf("%s: unexpected error %v", name, err)
		}
		vs = append(vs, v)
	}
	three := [][]byte{[]byte("A"), []byte("grapevine"), {0x00, 0xFF, 0xFB, 0x1D, 0xC5, 0x7E, 0x00}}

	data, _ := encode(t, nil)
	add("empty", "a complete bundle with no envelopes", data, true)
	data, _ = encode(t, [][]byte{[]byte("hello")})
	add("one", "one envelope \"hello\"", data, true)
	full, offs := encode(t, three)
	add("three", "three envelopes; the third contains the sync marker bytes", full, true)
	add("truncated", "the three-envelope bundle cut 4 bytes into the third record's payload",
		full[:offs[1]+recordPrefix+4], false)
	add("truncated-at-boundary", "the three-envelope bundle cut just after the second record (no end record)",
		full[:offs[1]], false)
	b := bytes.Clone(full)
	b[offs[0]+recordPrefix+2] ^= 0x20 // "grapevine" -> "grApevine"
	add("damaged-payload", "one byte of the second record's payload flipped: CRC fails, the record is skipped", b, false)
	b = bytes.Clone(full)
	b[offs[0]] = 0x00
	add("damaged-sync", "the second record's sync marker overwritten", b, false)
	b = bytes.Clone(full)
	b[offs[0]+4] = 0xFF
	add("damaged-length", "the second record's length field set above MaxEnvelope", b, false)
	b = append(append(bytes.Clone(full[:offs[0]]), []byte("JUNK")...), full[offs[0]:]...)
	add("inserted-garbage", "four bytes inserted between the first and second records; the end count still matches", b, false)
	add("not-a-bundle", "a text file", []byte("grapevine bundle? no.\n"), false)
	b = bytes.Clone(full)
	b[len(magic)] = 2
	add("wrong-version", "the three-envelope bundle with version byte 2", b, false)
	return vs
}

func TestVectors(t *testing.T) {
	vs := testkit.Vectors(t, vectorsPath, func() []vector { return makeVectors(t) })
	if len(vs) < 5 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			data, err := hex.DecodeString(v.Bundle)
			if err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			for _, h := range v.Envelopes {
				e, err := hex.DecodeString(h)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, e)
			}
			got, rep, err := decode(t, data)
			switch v.Error {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case "not_bundle":
				if !errors.Is(err, ErrNotBundle) {
					t.Fatalf("err = %v, want ErrNotBundle", err)
				}
			case "unsupported_version":
				if !errors.Is(err, ErrUnsupportedVersion) {
					t.Fatalf("err = %v, want ErrUnsupportedVersion", err)
				}
			default:
				t.Fatalf("unknown error kind %q", v.Error)
			}
			equalEnvs(t, got, want)
			if vectorReport(rep) != v.Report {
				t.Fatalf("report %+v, want %+v", rep, v.Report)
			}
			if v.Canonical {
				enc, _ := encode(t, want)
				if !bytes.Equal(enc, data) {
					t.Fatalf("Writer output %x differs from vector", enc)
				}
			}
		})
	}
}
