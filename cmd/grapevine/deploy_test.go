package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServiceFiles checks that the systemd unit and the OpenWrt init script
// in deploy/ run `grapevine up` with flags it has, with the passphrase from a
// file, and that the init script is valid sh.
func TestServiceFiles(t *testing.T) {
	up := newRoot(&cli{}).Commands()
	var flags func(string) bool
	for _, cmd := range up {
		if cmd.Name() == "up" {
			flags = func(name string) bool {
				return cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil
			}
		}
	}
	if flags == nil {
		t.Fatal("no up command")
	}
	files := map[string]*regexp.Regexp{
		"systemd/grapevine.service": regexp.MustCompile(`(?m)^ExecStart=(.*)$`),
		"openwrt/grapevine":         regexp.MustCompile(`(?m)procd_set_param command ((?:.*\\\n)*.*)$`),
	}
	for file, re := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", file))
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no command line", file)
			continue
		}
		line := string(m[1])
		if !strings.Contains(line, " up ") || !strings.Contains(line, "--passphrase-file") || !strings.Contains(line, "--name") {
			t.Errorf("%s: %q does not run up with --passphrase-file and --name", file, line)
		}
		for _, f := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(line, -1) {
			if !flags(f[1]) {
				t.Errorf("%s: up has no flag --%s", file, f[1])
			}
		}
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", filepath.Join("..", "..", "deploy", "openwrt", "grapevine")).CombinedOutput(); err != nil {
			t.Errorf("sh -n on the OpenWrt script: %v\n%s", err, out)
		}
	}
}
