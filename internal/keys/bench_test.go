package keys

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// BenchmarkSessionSeal measures sealing a 100-character text on an
// established session whose key the peer holds (no prefix): the counter and
// tag chains step, the period key, salt, keys and the AEAD. Compare
// envelope's BenchmarkSeal, the AEAD alone.
func BenchmarkSessionSeal(b *testing.B) {
	const p = 20000
	a, bob := pair(b, p)
	mustOpen(b, a, bob.seal(b, p, "accept"), p, "accept")
	mustOpen(b, bob, a.seal(b, p, "step"), p, "step")
	a.s.Acked(a.s.Send.N)
	text := []byte(strings.Repeat("x", 100))
	for b.Loop() {
		if _, _, err := a.s.Seal(p, text, 2000000000, 12, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkSessionOpen measures opening such an envelope whose tag was
// found: the header, the chains, the period key and the AEAD.
func BenchmarkSessionOpen(b *testing.B) {
	const p = 20000
	a, bob := pair(b, p)
	mustOpen(b, a, bob.seal(b, p, "accept"), p, "accept")
	mustOpen(b, bob, a.seal(b, p, "step"), p, "step")
	a.s.Acked(a.s.Send.N)
	e := a.seal(b, p, strings.Repeat("x", 100))
	sl, ok := bob.slot(e, p)
	if !ok {
		b.Fatal("tag not expected")
	}
	raw := e.Marshal()
	for b.Loop() {
		pe, err := envelope.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := bob.s.Open(pe, sl, p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkWireSizes reports what SPEC §5 promises: a 100-character text
// without a ratchet key (≤ 192 bytes on the wire), the same text opening a
// ratchet step (≤ 256), and the first answer, which carries the ML-KEM
// ciphertext (within the 2,048 bucket). The request is measured in package
// node, which seals it.
func BenchmarkWireSizes(b *testing.B) {
	const p = 20000
	text := strings.Repeat("x", 100)
	var plain, step, accept int
	for b.Loop() {
		a, bob := pair(b, p)
		acc := bob.seal(b, p, "")
		accept = len(acc.Marshal())
		mustOpen(b, a, acc, p, "")
		st := a.seal(b, p, text)
		step = len(st.Marshal())
		a.s.Acked(a.s.Send.N)
		plain = len(a.seal(b, p, text).Marshal())
	}
	if plain > 192 || step > 256 || accept > envelope.HeaderSize+2048+envelope.Overhead {
		b.Fatalf("sizes %d, %d, %d over their limits", plain, step, accept)
	}
	b.ReportMetric(float64(plain), "text-bytes")
	b.ReportMetric(float64(step), "text-with-step-bytes")
	b.ReportMetric(float64(accept), "first-answer-bytes")
}
