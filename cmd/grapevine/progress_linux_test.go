package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProgressOnTerminal: export and import of a bundle holding a few MB of
// a file's chunks, run on a real terminal, draw a progress bar on it that
// reaches 100 %, and still print what they did. (bundles.txtar: no bar when
// stderr is not a terminal.)
func TestProgressOnTerminal(t *testing.T) {
	const pass = "progress on a terminal"
	dir, alice, bob := fileForBob(t, pass)

	bundle := filepath.Join(dir, "a.gvb")
	s := startOnTerminal(t, "--home", alice, "export", bundle)
	s.expect("Passphrase: ")
	s.send(pass + "\r")
	s.expect("Exported ")
	if err := s.exit(); err != nil {
		t.Fatalf("export on a terminal: %v\n%s", err, s.out.String())
	}
	done := regexp.MustCompile(`Exporting  \[#{20}\]  100 %  (\d+) of (\d+) envelopes  3\.\d MiB of 3\.\d MiB  `)
	m := done.FindStringSubmatch(s.out.String())
	if m == nil || m[1] != m[2] || !strings.Contains(s.out.String(), "Exported "+m[1]+" envelopes") {
		t.Fatalf("no export bar at 100 %% with every envelope written; the terminal showed:\n%q", s.out.String())
	}

	s = startOnTerminal(t, "--home", bob, "import", bundle)
	s.expect("Passphrase: ")
	s.send(pass + "\r")
	s.expect("new envelopes to carry for others")
	if err := s.exit(); err != nil {
		t.Fatalf("import on a terminal: %v\n%s", err, s.out.String())
	}
	if !regexp.MustCompile(`Importing  \[#{20}\]  100 %  ` + m[1] + ` envelopes  3\.\d MiB of 3\.\d MiB  `).MatchString(s.out.String()) {
		t.Fatalf("no import bar at 100 %%; the terminal showed:\n%q", s.out.String())
	}
}

// fileForBob makes the homes of Alice and Bob in a new directory, Bob a
// contact of Alice's, and has Alice send him a file of 3 MiB (about a
// hundred chunks), which waits in her outbox.
func fileForBob(t *testing.T, pass string) (dir, alice, bob string) {
	t.Helper()
	dir = t.TempDir()
	alice, bob = filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	grapevine(t, pass, "--home", alice, "init", "--name", "Alice")
	grapevine(t, pass, "--home", bob, "init", "--name", "Bob")
	var id struct{ Link string }
	if err := json.Unmarshal([]byte(grapevine(t, pass, "--home", bob, "id", "--json")), &id); err != nil {
		t.Fatal(err)
	}
	grapevine(t, pass, "--home", alice, "contacts", "add", id.Link)
	file := filepath.Join(dir, "big.bin")
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	grapevine(t, pass, "--home", alice, "send", "Bob", "--file", file)
	return dir, alice, bob
}

// grapevine runs grapevine with the passphrase in its environment, not on
// a terminal, and returns its standard output.
func grapevine(t *testing.T, pass string, args ...string) string {
	t.Helper()
	cmd := exec.Command("grapevine", args...) // testscript.Main put it on $PATH
	cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE="+pass)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("grapevine %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestProgressThroughRunningNode: with a node running, export and import
// are done by the node (POST /v1/export, /v1/import), and the command on a
// terminal still draws the bar, from the progress the node streams: for a
// bundle of about a hundred chunks, it advances through many percentages
// in order to 100 %, and the command prints what was done.
func TestProgressThroughRunningNode(t *testing.T) {
	const pass = "progress through a running node"
	dir, alice, bob := fileForBob(t, pass)
	runNode(t, pass, alice)
	runNode(t, pass, bob)

	bundle := filepath.Join(dir, "a.gvb")
	s := startOnTerminal(t, "--home", alice, "export", bundle) // no passphrase: the node does it
	s.expect("Exported ")
	if err := s.exit(); err != nil {
		t.Fatalf("export on a terminal: %v\n%s", err, s.out.String())
	}
	steps := barSteps(t, "Exporting", s.out.String())
	m := regexp.MustCompile(`Exporting  \[#{20}\]  100 %  (\d+) of (\d+) envelopes  3\.\d MiB of 3\.\d MiB  `).FindStringSubmatch(s.out.String())
	if m == nil || m[1] != m[2] || !strings.Contains(s.out.String(), "Exported "+m[1]+" envelopes") {
		t.Fatalf("no export bar at 100 %% with every envelope written; the terminal showed:\n%q", s.out.String())
	}
	t.Logf("export: %s envelopes, the bar drawn at %d percentages", m[1], len(steps))

	s = startOnTerminal(t, "--home", bob, "import", bundle)
	s.expect("new envelopes to carry for others")
	if err := s.exit(); err != nil {
		t.Fatalf("import on a terminal: %v\n%s", err, s.out.String())
	}
	steps = barSteps(t, "Importing", s.out.String())
	if !regexp.MustCompile(`Importing  \[#{20}\]  100 %  ` + m[1] + ` envelopes  3\.\d MiB of 3\.\d MiB  `).MatchString(s.out.String()) {
		t.Fatalf("no import bar at 100 %%; the terminal showed:\n%q", s.out.String())
	}
	t.Logf("import: the bar drawn at %d percentages", len(steps))
}

// barSteps returns the percentages a progress bar showed, in the order
// drawn, and fails unless there are many, rising, ending at 100.
func barSteps(t *testing.T, verb, out string) []int {
	t.Helper()
	var steps []int
	for _, m := range regexp.MustCompile(verb+`  \[[#.]{20}\]  +(\d+) %`).FindAllStringSubmatch(out, -1) {
		pct, _ := strconv.Atoi(m[1])
		if len(steps) > 0 && pct < steps[len(steps)-1] {
			t.Fatalf("%s: the bar went back from %d %% to %d %%; the terminal showed:\n%q", verb, steps[len(steps)-1], pct, out)
		}
		if len(steps) == 0 || pct != steps[len(steps)-1] {
			steps = append(steps, pct)
		}
	}
	// About a hundred chunks of 32 KiB: each whole percent is one event.
	if len(steps) < 20 || steps[len(steps)-1] != 100 {
		t.Fatalf("%s: the bar showed %v (want 20 steps or more, to 100 %%); the terminal showed:\n%q", verb, steps, out)
	}
	return steps
}

// runNode runs `grapevine up` on home until the test ends, once its API
// answers.
func runNode(t *testing.T, pass, home string) {
	t.Helper()
	up := exec.Command("grapevine", "--home", home, "up", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "", "--quiet")
	up.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE="+pass)
	var stderr strings.Builder
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	t.Cleanup(func() {
		up.Process.Signal(os.Interrupt)
		if err := <-exited; err != nil {
			t.Errorf("up on %s ended with %v:\n%s", home, err, stderr.String())
		}
	})
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("up on %s exited: %v\n%s", home, err, stderr.String())
		default:
		}
		status := exec.Command("grapevine", "--home", home, "status", "--json")
		status.Env = up.Env
		out, err := status.Output() // fails while the node starts
		var st struct {
			Running bool `json:"running"`
		}
		if err == nil && json.Unmarshal(out, &st) == nil && st.Running {
			return
		}
	}
	t.Fatalf("up on %s did not answer within 60s:\n%s", home, stderr.String())
}
