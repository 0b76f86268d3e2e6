//go:build unix

package node

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// BenchmarkMessageAtTheNode compares what a device spends on one
// 100-character message, pairwise and in a group, as the node really does
// it (SPEC §15.5 "Cost"): "send-µs" is Alice's Send or SendRoom (seal, the
// chain step stored, the envelope stored), "open-µs" Bob's Ingest of the
// envelope (parse, recognise, open, verify, store; for a pairwise message
// also the receipt Bob writes); "-cpu-µs" the CPU time of the same (the
// wall time is mostly the store's fsync). The primitives alone are compared in
// internal/room's BenchmarkGroupSeal and BenchmarkGroupOpen.
func BenchmarkMessageAtTheNode(b *testing.B) {
	text := hundredChars()
	b.Run("pairwise", func(b *testing.B) {
		clk := newTestClock()
		alice, bob := newTestNode(b, "Alice", clk), newTestNode(b, "Bob", clk)
		befriend(b, alice, bob)
		mustSendTB(b, bob, "Alice", "step") // Bob's reply: both sides past the first round trip
		carry(b, bob, alice)
		carry(b, alice, bob)
		measureMessages(b, alice, bob, func() error { _, err := alice.Send("Bob", text); return err })
	})
	b.Run("group", func(b *testing.B) {
		clk := newTestClock()
		alice, bob, carol, dave := newTestNode(b, "Alice", clk), newTestNode(b, "Bob", clk), newTestNode(b, "Carol", clk), newTestNode(b, "Dave", clk)
		for _, n := range []*testNode{bob, carol, dave} {
			befriend(b, alice, n)
		}
		if _, err := alice.CreateRoom("Bench"); err != nil {
			b.Fatal(err)
		}
		for _, n := range []*testNode{bob, carol, dave} {
			if err := alice.InviteToRoom("Bench", n.id.Name); err != nil {
				b.Fatal(err)
			}
			everyone(b, alice, n)
			if err := n.JoinRoom("Bench"); err != nil {
				b.Fatal(err)
			}
			everyone(b, alice, bob, carol, dave)
		}
		if rs, err := bob.Rooms(); err != nil || len(rs) != 1 || len(rs[0].Members) != 4 {
			b.Fatalf("Bob's rooms: %+v, %v", rs, err)
		}
		measureMessages(b, alice, bob, func() error { _, err := alice.SendRoom("Bench", text); return err })
	})
}

// measureMessages times send (Alice) and the ingest of what it stored (Bob),
// message by message, and checks that Bob opened each one.
func measureMessages(b *testing.B, alice, bob *testNode, send func() error) {
	var fresh []envelope.ID
	alice.Watch(func(ids []envelope.ID) { fresh = append(fresh, ids...) })
	var sending, opening, sendCPU, openCPU time.Duration
	n := 0
	for b.Loop() {
		fresh = fresh[:0]
		t0, c0 := time.Now(), cpuTime()
		if err := send(); err != nil {
			b.Fatal(err)
		}
		sending += time.Since(t0)
		sendCPU += cpuTime() - c0
		out, err := alice.Forward(fresh, nil)
		if err != nil || len(out) != 1 {
			b.Fatalf("forward: %d envelopes, %v", len(out), err)
		}
		t0, c0 = time.Now(), cpuTime()
		rep, err := bob.Ingest([][]byte{out[0].Raw})
		opening += time.Since(t0)
		openCPU += cpuTime() - c0
		if err != nil || rep.Messages != 1 {
			b.Fatalf("Bob's ingest: %+v, %v", rep, err)
		}
		n++
	}
	b.ReportMetric(float64(sending.Microseconds())/float64(n), "send-µs")
	b.ReportMetric(float64(opening.Microseconds())/float64(n), "open-µs")
	b.ReportMetric(float64(sendCPU.Microseconds())/float64(n), "send-cpu-µs")
	b.ReportMetric(float64(openCPU.Microseconds())/float64(n), "open-cpu-µs")
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hundredChars() string { return strings.Repeat("0123456789", 10) }

func mustSendTB(t testing.TB, n *testNode, to, text string) {
	t.Helper()
	if _, err := n.Send(to, text); err != nil {
		t.Fatal(err)
	}
}
