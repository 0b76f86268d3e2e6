package link

import (
	"fmt"
	"net"
	"testing"
)

// BenchmarkFrames measures one-way frame throughput over net.Pipe: encrypt,
// write, read, decrypt, for payloads from tiny to MaxPayload.
func BenchmarkFrames(b *testing.B) {
	for _, size := range []int{0, 64, 1024, 16384, MaxPayload} {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			a, p := net.Pipe()
			client, server := link(b, a, p, Config{Static: freshKey(b)}, Config{Static: freshKey(b)})
			done := make(chan error, 1)
			go func() {
				for {
					if _, _, err := server.ReadFrame(); err != nil {
						done <- err
						return
					}
				}
			}()
			payload := make([]byte, size)
			b.ReportAllocs()
			frames := 0
			for b.Loop() {
				if err := client.WriteFrame(1, payload); err != nil {
					b.Fatal(err)
				}
				frames++
			}
			b.StopTimer()
			client.Close()
			<-done
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(frames)/secs, "frames/s")
			b.ReportMetric(float64(frames*size)/secs/1e6, "MB/s")
		})
	}
}

// BenchmarkHandshake measures a whole handshake over net.Pipe, both ends.
func BenchmarkHandshake(b *testing.B) {
	ck, sk := freshKey(b), freshKey(b)
	b.ReportAllocs()
	for b.Loop() {
		a, p := net.Pipe()
		client, server := link(b, a, p, Config{Static: ck}, Config{Static: sk})
		client.Close()
		server.Close()
	}
}
