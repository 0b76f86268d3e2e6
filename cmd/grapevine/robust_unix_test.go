//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// grapevineCmd runs the grapevine that testscript.Main put on $PATH, with
// the passphrase in the environment.
func grapevineCmd(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("grapevine")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE=robust homes")
	return cmd
}

// TestInterruptedInit kills `grapevine init` with SIGKILL at a spread of
// moments, from before it starts to after it ends, and checks each time
// that the home is one that init or up accepts: either there is no identity
// (init makes one) or a whole one (commands open it). Never a home that
// both refuse.
func TestInterruptedInit(t *testing.T) {
	ctx := context.Background()
	for i, delay := range []time.Duration{0, 10, 30, 60, 90, 120, 160, 220, 300, 500} {
		home := filepath.Join(t.TempDir(), "home")
		cmd := grapevineCmd(t, ctx, "--home", home, "init", "--name", "Alice")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		out, idErr := grapevineCmd(t, ctx, "--home", home, "id", "--json").CombinedOutput()
		if idErr == nil {
			if !bytes.Contains(out, []byte(`"name": "Alice"`)) {
				t.Errorf("kill after %v: id shows %s", delay, out)
			}
			continue
		}
		initOut, initErr := grapevineCmd(t, ctx, "--home", home, "init", "--name", "Alice").CombinedOutput()
		if initErr != nil {
			t.Errorf("kill %d after %v left a home that neither id (%s) nor init (%s) accepts", i, delay, out, initOut)
		}
	}
}

// TestUpWhileHammered starts `grapevine up` while three loops run `grapevine
// status` on the same home as fast as they can (each of which, finding no
// node, unlocks the store itself), and checks that up comes up every time:
// it makes its socket first, so the commands wait for it, and it waits for
// the store's lock.
func TestUpWhileHammered(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	ctx := context.Background()
	if out, err := grapevineCmd(t, ctx, "--home", home, "init", "--name", "Alice").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for round := range 3 {
		hctx, stopHammer := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for hctx.Err() == nil {
					grapevineCmd(t, hctx, "--home", home, "status").Run()
				}
			})
		}
		time.Sleep(300 * time.Millisecond) // the loops are at it
		up := grapevineCmd(t, ctx, "--home", home, "up", "--listen", "127.0.0.1:0", "--no-discovery", "--quiet")
		var upErr bytes.Buffer
		up.Stderr = &upErr
		if err := up.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- up.Wait() }()

		running := false
		deadline := time.Now().Add(60 * time.Second)
		for !running && time.Now().Before(deadline) {
			select {
			case err := <-exited:
				t.Fatalf("round %d: up exited (%v) while commands ran:\n%s", round, err, upErr.String())
			default:
			}
			out, err := grapevineCmd(t, ctx, "--home", home, "status", "--json").Output()
			var st struct {
				Running bool `json:"running"`
			}
			if err == nil && json.Unmarshal(out, &st) == nil && st.Running {
				running = true
			}
		}
		stopHammer()
		wg.Wait()
		if !running {
			t.Fatalf("round %d: up did not come up within 60s:\n%s", round, upErr.String())
		}
		up.Process.Signal(os.Interrupt)
		if err := <-exited; err != nil {
			t.Errorf("round %d: up ended with %v:\n%s", round, err, upErr.String())
		}
		if !strings.Contains(upErr.String(), "Stopped.") {
			t.Errorf("round %d: up did not stop cleanly:\n%s", round, upErr.String())
		}
	}
}
