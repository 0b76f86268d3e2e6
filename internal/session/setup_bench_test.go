package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// wireBytes is what a frame costs on a link (SPEC §10.3): 2 bytes of
// length, the type byte, the payload and a 16-byte tag.
func wireBytes(f Frame) int { return 2 + 1 + len(f.Payload) + 16 }

// handshakeBytes runs a real link handshake over a pipe and returns the
// bytes both sides sent, length prefixes and padding included.
func handshakeBytes(tb testing.TB) int {
	tb.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ka, _ := link.NewStatic(rand.Reader)
	kb, _ := link.NewStatic(rand.Reader)
	done := make(chan *link.Conn, 1)
	go func() {
		c, err := link.Server(context.Background(), b, link.Config{Static: kb})
		if err != nil {
			tb.Error(err)
		}
		done <- c
	}()
	c, err := link.Client(context.Background(), a, link.Config{Static: ka})
	if err != nil {
		tb.Fatal(err)
	}
	s := <-done
	sentA, _ := c.Stats()
	sentB, _ := s.Stats()
	return int(sentA + sentB)
}

// setupPhases measures one link set-up between a and b, from the first byte
// of the handshake to "in sync": the handshake, the two Hellos, and the
// reconciliation with whatever transfer it causes (envelopes counted apart).
type setupPhases struct {
	handshake, hello, sync, envelopes int
}

func measureSetup(tb testing.TB, a, b *node.Node) setupPhases {
	tb.Helper()
	var p setupPhases
	p.handshake = handshakeBytes(tb)
	binding := make([]byte, 32)
	rand.Read(binding)
	ini := New(a, Config{Initiator: true, Source: "b", Binding: binding})
	res := New(b, Config{Source: "a", Binding: binding})
	for _, s := range []*Session{ini, res} {
		hello, err := s.Hello()
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range hello {
			p.hello += wireBytes(f)
		}
	}
	pumpRecord(tb, ini, res, func(_ string, f Frame) {
		switch f.Type {
		case TypeEnvelope, TypeSpray:
			p.envelopes += wireBytes(f)
		default:
			p.sync += wireBytes(f)
		}
	})
	return p
}

func (p setupPhases) total() int { return p.handshake + p.hello + p.sync }

// BenchmarkLinkSetupBytes is the air a meeting costs (issue 12's budget:
// two neighbours with nothing new for each other ≤ 1 KB both ways, one new
// envelope ≤ 1.5 KB plus the envelope), by phase, for stores of 0, 100 and
// 10,000 envelopes held by both.
func BenchmarkLinkSetupBytes(b *testing.B) {
	for _, held := range []int{0, 100, 10000} {
		for _, extra := range []int{0, 1} {
			name := "held=" + itoa(held) + "/new=" + itoa(extra)
			b.Run(name, func(b *testing.B) {
				common := stranger(b, held, 12)
				fresh := stranger(b, extra, 12)
				var p setupPhases
				for b.Loop() {
					b.StopTimer()
					na, nb := newNode(b, "A"), newNode(b, "B")
					ingest(b, na, common)
					ingest(b, nb, common)
					ingest(b, na, fresh)
					b.StartTimer()
					p = measureSetup(b, na, nb)
				}
				b.ReportMetric(float64(p.handshake), "handshake-B")
				b.ReportMetric(float64(p.hello), "hello-B")
				b.ReportMetric(float64(p.sync), "sync-B")
				b.ReportMetric(float64(p.envelopes), "envelope-B")
				b.ReportMetric(float64(p.total()), "setup-B")
			})
		}
	}
}

func itoa(n int) string {
	var buf bytes.Buffer
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	buf.Write(d)
	return buf.String()
}
