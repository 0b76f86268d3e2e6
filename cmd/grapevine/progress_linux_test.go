package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProgressOnTerminal: export and import of a bundle holding a few MB of
// a file's chunks, run on a real terminal, draw a progress bar on it that
// reaches 100 %, and still print what they did. (bundles.txtar: no bar when
// stderr is not a terminal.)
func TestProgressOnTerminal(t *testing.T) {
	dir := t.TempDir()
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	const pass = "progress on a terminal"
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
