package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// tcpNode runs a node over real TCP on loopback for benchmarks.
type tcpNode struct {
	n    *node.Node
	m    *Mesh
	stop func()
}

func startTCP(b *testing.B, name string, peers ...string) *tcpNode {
	b.Helper()
	n, err := node.Init(filepath.Join(b.TempDir(), name), []byte("pw"), name, node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		b.Fatal(err)
	}
	m := New(n, Config{Listen: "127.0.0.1:0", Peers: peers})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Serve(ctx) })
	<-m.Ready()
	return &tcpNode{n: n, m: m, stop: func() { cancel(); wg.Wait(); n.Close() }}
}

func waitLinked(b *testing.B, ns ...*tcpNode) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, t := range ns {
		for len(t.m.Peers()) == 0 || !t.m.Peers()[0].Synced {
			if time.Now().After(deadline) {
				b.Fatal("nodes did not link")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func strangers(n int) [][]byte {
	out := make([][]byte, n)
	exp := uint32(time.Now().Add(24 * time.Hour).Unix())
	for i := range out {
		s := envelope.Sealing{Expiry: exp, Hops: 5}
		rand.Read(s.Key[:])
		rand.Read(s.Tag[:])
		e, _ := envelope.Seal(s, []byte("a carried message of about a hundred characters, padded into the 128-byte bucket"))
		out[i] = e.Marshal()
	}
	return out
}

// BenchmarkOneHopLatency measures, over real TCP on loopback, the time from
// an envelope being stored at one node (as `grapevine send` does) to its
// neighbour holding it durably: live push, one frame, one ingest commit.
func BenchmarkOneHopLatency(b *testing.B) {
	a := startTCP(b, "A")
	defer a.stop()
	c := startTCP(b, "B", a.m.Addrs()[0])
	defer c.stop()
	waitLinked(b, a, c)
	var lat []time.Duration
	for b.Loop() {
		lat = append(lat, hop(b, a, c))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(0, "ns/op")
}

// hop stores one text at a and returns how long until c holds it.
func hop(b *testing.B, a, c *tcpNode) time.Duration {
	env := strangers(1)
	id := envelope.ComputeID(env[0])
	start := time.Now()
	if _, err := a.n.Ingest(env); err != nil {
		b.Fatal(err)
	}
	for !c.n.Holds(id) {
		time.Sleep(20 * time.Microsecond)
	}
	return time.Since(start)
}

// BenchmarkRelayThroughput measures sustained relay A → B → C over loopback
// TCP: envelopes arrive at A in batches of 1,000, B stores each durably and
// passes it on, and the clock stops when C holds them all. At most three
// batches are in flight: a link takes at most session.MaxPushQueue (4,096)
// envelopes by live push, and leaves the rest to the next reconciliation
// round, minutes later — a burst of 20,000 at once measured that wait.
func BenchmarkRelayThroughput(b *testing.B) {
	a := startTCP(b, "A")
	defer a.stop()
	mid := startTCP(b, "B", a.m.Addrs()[0])
	defer mid.stop()
	c := startTCP(b, "C", mid.m.Addrs()[0])
	defer c.stop()
	waitLinked(b, a, mid, c)
	const perOp = 20000
	batches := make([][][]byte, 0)
	for range perOp / 1000 {
		batches = append(batches, strangers(1000))
	}
	total := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		batches = batches[:0]
		for range perOp / 1000 {
			batches = append(batches, strangers(1000))
		}
		last := envelope.ComputeID(batches[len(batches)-1][999])
		want := len(c.n.Inventory()) + perOp
		b.StartTimer()
		for i, batch := range batches {
			if i >= 3 { // batch i-3 has crossed: at most three in flight
				prev := envelope.ComputeID(batches[i-3][999])
				for !c.n.Holds(prev) {
					time.Sleep(200 * time.Microsecond)
				}
			}
			if _, err := a.n.Ingest(batch); err != nil {
				b.Fatal(err)
			}
		}
		for len(c.n.Inventory()) < want || !c.n.Holds(last) {
			time.Sleep(time.Millisecond)
		}
		total += perOp
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "envelopes/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkInitialSync measures a first meeting over loopback TCP: one node
// holds 50,000 envelopes, the other none; the clock stops when the newcomer
// holds them all (reconciliation, Want lists, transfer, durable ingest).
func BenchmarkInitialSync(b *testing.B) {
	const total = 50000
	for b.Loop() {
		b.StopTimer()
		a := startTCP(b, "A")
		for range total / 10000 {
			if _, err := a.n.Ingest(strangers(10000)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		c := startTCP(b, "B", a.m.Addrs()[0])
		for len(c.n.Inventory()) < total {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		c.stop()
		a.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "envelopes/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTextWhileFileFlows measures, over real TCP on loopback, the
// one-hop latency of texts while the same link carries a 100 MiB file's
// chunks (3,250 envelopes of 32,704 bytes, carried for someone else): texts
// leave before chunks (SPEC §12.2), so a text waits for at most the chunk
// frame on the wire. It reports the texts' p50 and p90 and how many chunks
// crossed while the texts were measured (texts 5 ms apart).
func BenchmarkTextWhileFileFlows(b *testing.B) {
	a := startTCP(b, "A")
	defer a.stop()
	c := startTCP(b, "B", a.m.Addrs()[0])
	defer c.stop()
	waitLinked(b, a, c)
	chunks := fileChunks(b, 100<<20)
	go func() {
		for i := 0; i < len(chunks); i += 100 {
			if _, err := a.n.Ingest(chunks[i:min(i+100, len(chunks))]); err != nil {
				return
			}
		}
	}()
	for len(c.n.Inventory()) < 50 { // the file is flowing
		time.Sleep(time.Millisecond)
	}
	var lat []time.Duration
	before := len(c.n.Inventory())
	for b.Loop() {
		lat = append(lat, hop(b, a, c))
		time.Sleep(5 * time.Millisecond) // texts spread over the transfer
	}
	during := len(c.n.Inventory()) - before - len(lat)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "text-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "text-p90-ms")
	b.ReportMetric(float64(during), "chunks-meanwhile")
	b.ReportMetric(0, "ns/op")
}

// fileChunks seals a random file of size bytes as someone else's chunks.
func fileChunks(b *testing.B, size int) [][]byte {
	b.Helper()
	data := make([]byte, size)
	rand.Read(data)
	f, err := attach.Prepare(bytes.NewReader(data), int64(size), attach.Options{Name: "big.bin", Receipts: true, Limits: attach.Limits{MaxFileSize: int64(size)}})
	if err != nil {
		b.Fatal(err)
	}
	exp := uint32(time.Now().Add(24 * time.Hour).Unix())
	out := make([][]byte, f.Manifest().Chunks)
	for i := range out {
		if out[i], err = f.Seal(i, exp, 5); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkAttachmentVsTCP compares, in one run and side by side, two ways
// of moving the same 16 MiB (the mesh's file limit) between two sockets of
// this test process over loopback TCP:
//
//   - tcp: a plain TCP connection between a listener and a dialler in this
//     process; the sender io.Copies the bytes from memory, the receiver
//     io.Copies them to io.Discard. Nothing is encrypted, stored or checked.
//   - attach: node A, in this process, sends node B, in this process, a
//     file of the same size as an attachment (Node.SendFile, from a file on
//     disk), over the link they hold on loopback TCP: A stores the file's
//     519 chunks, announces them, B wants them, A sends them, B stores each
//     chunk durably, verified and sealed in its store (with the copy it
//     carries, as the default configuration does), and the clock stops when
//     B has the whole file assembled and verified, then saved to disk
//     (Node.SaveAttachment: read back, Merkle root checked, fsynced).
//
// It reports the MB/s of each and their ratio (attach/tcp); the same ratio
// for the link alone (carry/tcp: from SendFile's return until B holds the
// file whole); the MB each moved per second of CPU time this process used
// (on unix; other load on a shared machine stretches wall time, not this)
// and their ratio (attach/tcp-cpu); and the bytes both links carried while the file crossed, per byte of the
// file, as overhead in per cent (wire-overhead-%: frames, Noise, chunk
// headers and Merkle paths, Haves and Wants; the chunks' receipts leave
// later, delayed by ReceiptDelay, and are not in it — SPEC §16.1 counts
// them at 73 bytes a chunk).
func BenchmarkAttachmentVsTCP(b *testing.B) {
	const size = 16 << 20
	a := startTCP(b, "A")
	defer a.stop()
	c := startTCP(b, "B", a.m.Addrs()[0])
	defer c.stop()
	waitLinked(b, a, c)
	befriend(b, a.n, c.n, "A", "B")
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(b.TempDir(), "file.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	var tcpTime, attachTime, carryTime, tcpCPU, attachCPU time.Duration
	var wire uint64
	for i := 0; b.Loop(); i++ {
		cpu := cpuTime()
		tcpTime += rawTCP(b, data)
		tcpCPU += cpuTime() - cpu
		before := linkBytes(a) + linkBytes(c)
		cpu = cpuTime()
		all, carry := sendAndSave(b, a, c, path, filepath.Join(b.TempDir(), fmt.Sprint("saved", i)), data)
		attachTime += all
		carryTime += carry
		attachCPU += cpuTime() - cpu
		wire += linkBytes(a) + linkBytes(c) - before
	}
	mb := float64(size*b.N) / 1e6
	tcp, att := mb/tcpTime.Seconds(), mb/attachTime.Seconds()
	b.ReportMetric(tcp, "tcp-MB/s")
	b.ReportMetric(att, "attach-MB/s")
	b.ReportMetric(att/tcp, "attach/tcp")
	b.ReportMetric(mb/carryTime.Seconds()/tcp, "carry/tcp")
	if tcpCPU > 0 && attachCPU > 0 { // measured here (cpuTime)
		b.ReportMetric(mb/tcpCPU.Seconds(), "tcp-MB/cpu-s")
		b.ReportMetric(mb/attachCPU.Seconds(), "attach-MB/cpu-s")
		b.ReportMetric(tcpCPU.Seconds()/attachCPU.Seconds(), "attach/tcp-cpu")
	}
	b.ReportMetric(100*(float64(wire)/float64(size*b.N)-1), "wire-overhead-%")
	b.ReportMetric(0, "ns/op")
}

// rawTCP moves data over a fresh loopback TCP connection with io.Copy at
// both ends and returns how long it took, from the first write until the
// receiver has read the last byte.
func rawTCP(b *testing.B, data []byte) time.Duration {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer conn.Close()
		n, _ := io.Copy(io.Discard, conn)
		got <- n
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := io.Copy(conn, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	conn.Close()
	if n := <-got; n != int64(len(data)) {
		b.Fatalf("raw TCP moved %d of %d bytes", n, len(data))
	}
	return time.Since(start)
}

// sendAndSave sends the file at path from a to c, waits until c holds it
// whole and verified, saves it to dest, and returns how long that took and
// how long the link took (from SendFile's return until c held the file
// whole) once it has checked that dest holds data.
func sendAndSave(b *testing.B, a, c *tcpNode, path, dest string, data []byte) (all, carry time.Duration) {
	b.Helper()
	start := time.Now()
	m, err := a.n.SendFile("B", path, node.SendFileOptions{AsFile: true})
	if err != nil {
		b.Fatal(err)
	}
	sent := time.Now()
	deadline := sent.Add(5 * time.Minute)
	for {
		att, err := c.n.ReceivedAttachment(m.ID)
		if err == nil && att.Complete {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the file did not arrive: %v %+v", err, att)
		}
		time.Sleep(time.Millisecond)
	}
	carry = time.Since(sent)
	if _, err := c.n.SaveAttachment(m.ID, dest); err != nil {
		b.Fatal(err)
	}
	all = time.Since(start)
	if saved, err := os.ReadFile(dest); err != nil || !bytes.Equal(saved, data) {
		b.Fatalf("the saved file differs from the one sent (%v)", err)
	}
	return all, carry
}

// linkBytes is what t's links have written.
func linkBytes(t *tcpNode) uint64 {
	var n uint64
	for _, p := range t.m.Peers() {
		n += p.BytesSent
	}
	return n
}
