package release

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// copySource copies what building ./cmd/grapevine needs (go.mod, go.sum,
// every .go and embedded file under cmd/ and internal/, no tests or test
// data) from the module root to dir.
func copySource(t *testing.T, root, dir string) {
	t.Helper()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(dir, rel), 0o755)
			}
			if strings.HasSuffix(p, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReleaseBuild builds a release of ./cmd/grapevine for this platform twice
// — from this tree and from a copy elsewhere — and checks that the two are
// identical, that the binary says its version, and that `grapevine verify`
// accepts it under a key made for the test and refuses it once altered.
//
// Both builds share the build cache, so this shows that the binary does not
// depend on where the source is or when it is built; `go run ./cmd/release
// reproduce` rebuilds every target with an empty cache, which takes minutes.
// The first run on a machine compiles the dependencies with -trimpath (about
// a minute on 2 cores); later runs take a second or two.
func TestReleaseBuild(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	host := Target{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	o := BuildOptions{Dir: root, Out: t.TempDir(), Version: "v1.2.3-test", Commit: "0123456789abcdef0123456789abcdef01234567",
		Epoch: 1767225600, Targets: []Target{host}}
	ctx := context.Background()
	a, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	copyRoot := t.TempDir()
	copySource(t, root, copyRoot)
	o2 := o
	o2.Dir, o2.Out = copyRoot, t.TempDir()
	b, err := Build(ctx, o2)
	if err != nil {
		t.Fatal(err)
	}
	if a[0].SHA256 != b[0].SHA256 || a[0].Size != b[0].Size {
		t.Errorf("two builds of the same source differ: %s (%d bytes) in %s, %s (%d bytes) in %s",
			a[0].SHA256, a[0].Size, root, b[0].SHA256, b[0].Size, copyRoot)
	}
	bin := filepath.Join(o.Out, a[0].Name)
	if fi, err := os.Stat(bin); err != nil || fi.ModTime().Unix() != o.Epoch {
		t.Errorf("binary's mtime %v, want SOURCE_DATE_EPOCH: %v", fi.ModTime(), err)
	}
	if content, _ := os.ReadFile(bin); bytes.Contains(content, []byte(root)) {
		t.Errorf("the binary holds the build directory %s", root)
	}

	// The version is stamped in.
	grapevine := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	out, err := grapevine("--version")
	want := "grapevine v1.2.3-test (commit 0123456789ab), " + runtime.Version() + ", " + host.String() + "\n"
	if err != nil || out != want {
		t.Errorf("grapevine --version = %q, %v; want %q", out, err, want)
	}
	out, err = grapevine("version", "--json")
	var info map[string]any
	if err != nil || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("grapevine version --json = %q, %v", out, err)
	}
	for k, v := range map[string]any{"version": "v1.2.3-test", "commit": o.Commit, "go": runtime.Version(),
		"platform": host.String(), "date": "2026-01-01T00:00:00Z", "modified": false} {
		if info[k] != v {
			t.Errorf("version --json: %s = %v, want %v", k, info[k], v)
		}
	}

	// Sums and signatures; verify accepts the binary, refuses it altered.
	if err := WriteSums(o.Out, a, o.Epoch); err != nil {
		t.Fatal(err)
	}
	if sums, err := ReadSums(filepath.Join(o.Out, SumsName)); err != nil || sums[a[0].Name] != a[0].SHA256 {
		t.Errorf("SHA256SUMS = %v, %v", sums, err)
	}
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignRelease(o.Out, a, k, o.Version, o.Commit, o.Epoch); err != nil {
		t.Fatal(err)
	}
	pub, _ := k.Public().MarshalText()
	pubPath := filepath.Join(t.TempDir(), "release.pub")
	os.WriteFile(pubPath, pub, 0o644)
	out, err = grapevine("verify", bin, "--pubkey", pubPath)
	if err != nil || !strings.Contains(out, "Good signature by release key "+k.ID.String()) ||
		!strings.Contains(out, "version v1.2.3-test for "+host.String()+", commit "+o.Commit) {
		t.Errorf("verify of the intact binary: %v\n%s", err, out)
	}
	if out, err := grapevine("verify", filepath.Join(o.Out, SumsName), "--pubkey", pubPath); err != nil {
		t.Errorf("verify of SHA256SUMS: %v\n%s", err, out)
	}
	content, _ := os.ReadFile(bin)
	for _, at := range []int{0, len(content) / 2, len(content) - 1} {
		tampered := filepath.Join(t.TempDir(), a[0].Name)
		c := bytes.Clone(content)
		c[at] ^= 0x20
		os.WriteFile(tampered, c, 0o755)
		sig, _ := os.ReadFile(bin + SigSuffix)
		os.WriteFile(tampered+SigSuffix, sig, 0o644)
		out, err := grapevine("verify", tampered, "--pubkey", pubPath)
		if err == nil || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "do not run it") {
			t.Errorf("verify of a binary altered at byte %d: %v\n%s", at, err, out)
		}
	}
	// Under another key (say, the project's, or a stranger's) it is refused too.
	other, _ := GenerateKey(nil)
	otherPub, _ := other.Public().MarshalText()
	os.WriteFile(pubPath, otherPub, 0o644)
	if out, err := grapevine("verify", bin, "--pubkey", pubPath); err == nil || !strings.Contains(out, "REFUSED") {
		t.Errorf("verify under another key: %v\n%s", err, out)
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, o := range []BuildOptions{
		{Version: "", Commit: "abc", Epoch: 1},
		{Version: "v1 rm -rf", Commit: "abc", Epoch: 1},
		{Version: "v1", Commit: "", Epoch: 1},
		{Version: "v1", Commit: "abc", Epoch: 0},
	} {
		if _, err := Build(context.Background(), o); err == nil {
			t.Errorf("Build(%+v) succeeded", o)
		}
	}
}
