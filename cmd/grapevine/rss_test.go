package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// BenchmarkIdleNodeRSS measures the resident memory of a real `grapevine up`
// process that carries 100,000 envelopes for others and sits idle. RssAnon
// is the process's own memory; RssFile adds the pages of the store file the
// kernel keeps mapped (reclaimable under pressure).
func BenchmarkIdleNodeRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "grapevine")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	n, err := node.Init(home, []byte("pw"), "Relay", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		b.Fatal(err)
	}
	const total = 100000
	exp := uint32(time.Now().Add(48 * time.Hour).Unix())
	for range total / 10000 {
		batch := make([][]byte, 10000)
		for i := range batch {
			s := envelope.Sealing{Expiry: exp, Hops: 5}
			rand.Read(s.Key[:])
			rand.Read(s.Tag[:])
			e, _ := envelope.Seal(s, []byte("a carried message of about a hundred characters, padded into the 128-byte bucket"))
			batch[i] = e.Marshal()
		}
		if _, err := n.Ingest(batch); err != nil {
			b.Fatal(err)
		}
	}
	n.Close()

	for b.Loop() {
		cmd := exec.Command(bin, "--home", home, "up", "--listen", "127.0.0.1:0", "--no-discovery", "--quiet")
		cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE=pw")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var held int
		for deadline := time.Now().Add(60 * time.Second); ; {
			if cl, err := api.Dial(home); err == nil {
				st, err := cl.Status(context.Background())
				cl.Close()
				if err == nil {
					held = st.Carried
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatal("the node did not come up")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if held != total {
			b.Fatalf("the node carries %d envelopes, want %d", held, total)
		}
		time.Sleep(5 * time.Second) // idle
		status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
		for _, field := range []string{"VmRSS", "RssAnon", "RssFile"} {
			m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(status)
			if m == nil {
				b.Fatalf("no %s in /proc/PID/status", field)
			}
			kb, _ := strconv.Atoi(string(m[1]))
			b.ReportMetric(float64(kb)/1024, field+"-MB")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkQuotaFilledRSS fills a node whose relay quota is 64 MiB with the
// smallest sealed envelopes (86 bytes) until eviction holds it at the quota,
// then measures a real `grapevine up` process carrying them: its resident
// memory and the home's size on disk, as multiples of the quota (SPEC §12.4:
// the quota charges ItemOverhead per envelope so that it bounds both).
func BenchmarkQuotaFilledRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc")
	}
	const quota = 64 << 20
	dir := b.TempDir()
	bin := filepath.Join(dir, "grapevine")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	n, err := node.Init(home, []byte("pw"), "Relay", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		b.Fatal(err)
	}
	n.SetRelayQuota(quota)
	exp := uint32(time.Now().Add(48 * time.Hour).Unix())
	for evicted := 0; evicted == 0; {
		batch := make([][]byte, 10000)
		for i := range batch {
			s := envelope.Sealing{Expiry: exp, Hops: 5}
			rand.Read(s.Key[:])
			rand.Read(s.Tag[:])
			e, _ := envelope.Seal(s, nil)
			batch[i] = e.Marshal()
		}
		rep, err := n.IngestFrom("flood", batch, nil)
		if err != nil {
			b.Fatal(err)
		}
		evicted = rep.Evicted
	}
	st, _ := n.Stats()
	n.Close()
	for b.Loop() {
		cmd := exec.Command(bin, "--home", home, "up", "--listen", "127.0.0.1:0", "--no-discovery", "--quiet", "--relay-quota", "64MiB")
		cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE=pw")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(60 * time.Second); ; {
			if cl, err := api.Dial(home); err == nil {
				_, err := cl.Status(context.Background())
				cl.Close()
				if err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatal("the node did not come up")
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
		m := regexp.MustCompile(`RssAnon:\s+(\d+) kB`).FindSubmatch(status)
		kb, _ := strconv.Atoi(string(m[1]))
		b.ReportMetric(float64(kb)*1024/quota, "rss/quota")
	}
	var disk int64
	filepath.Walk(home, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && fi.Mode().IsRegular() {
			disk += fi.Size()
		}
		return nil
	})
	b.ReportMetric(float64(st.Carried), "envelopes")
	b.ReportMetric(float64(disk)/quota, "disk/quota")
	b.ReportMetric(0, "ns/op")
}
