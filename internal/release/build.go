package release

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// BuildOptions say what Build builds.
type BuildOptions struct {
	Dir     string // the module's root directory
	Out     string // where the binaries go (created if missing)
	Version string // e.g. v0.3.0; stamped into the binary
	Commit  string // the full commit hash the source is at; stamped too
	// Epoch is SOURCE_DATE_EPOCH: the commit's time, in Unix seconds. It is
	// stamped into the binary as its date and is every output file's mtime,
	// so that the build depends on the source and not on when it ran.
	Epoch    int64
	Targets  []Target
	Parallel int      // builds at once (at least 1)
	Env      []string // the environment to build in; nil means os.Environ()
}

// Artifact is one file of a release.
type Artifact struct {
	Target Target
	Name   string // file name in Out
	SHA256 string // hex
	Size   int64
}

// Ldflags are the linker flags of a release build: no symbol table or DWARF,
// an empty build ID (the binary is then a function of its inputs alone), and
// the version stamped into package main.
func Ldflags(version, commit string, epoch int64) string {
	date := time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	return fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.commit=%s -X main.date=%s", version, commit, date)
}

// PlainName reports whether v is made of letters, digits and ".-+_" only:
// a version or commit that can be stamped into a binary and a file name,
// and the names release files have (grapevine-v0.3.0-linux-arm64).
func PlainName(v string) bool {
	return v != "" && !strings.ContainsFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-+_", r))
	})
}

// Build builds ./cmd/grapevine for every target, reproducibly: -trimpath (no
// paths of the build machine), -buildvcs=false (the commit comes from
// Commit), CGO_ENABLED=0, no GOFLAGS or CPU-level variables from the
// environment, GOTOOLCHAIN=local, the fixed Ldflags, and SOURCE_DATE_EPOCH.
// The same source, version and Go release then give the same bytes on any
// machine. It returns the artifacts in target order.
func Build(ctx context.Context, o BuildOptions) ([]Artifact, error) {
	switch {
	case !PlainName(o.Version):
		return nil, fmt.Errorf("version %q: want letters, digits and .-+_ only, e.g. v0.3.0", o.Version)
	case !PlainName(o.Commit):
		return nil, fmt.Errorf("commit %q: want a commit hash", o.Commit)
	case o.Epoch <= 0:
		return nil, errors.New("no SOURCE_DATE_EPOCH: give the commit's time in Unix seconds")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", o.Out, err)
	}
	base := o.Env
	if base == nil {
		base = os.Environ()
	}
	base = slices.DeleteFunc(slices.Clone(base), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"GOAMD64", "GOARM64", "GO386", "GORISCV64", "GOEXPERIMENT", "GOTOOLCHAIN",
			"SOURCE_DATE_EPOCH", "CGO_CFLAGS", "CGO_LDFLAGS", "GOFIPS140"}, k)
	})
	base = append(base, "GOTOOLCHAIN=local", fmt.Sprintf("SOURCE_DATE_EPOCH=%d", o.Epoch))
	arts := make([]Artifact, len(o.Targets))
	errs := make([]error, len(o.Targets))
	mtime := time.Unix(o.Epoch, 0)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(o.Parallel, 1))
	for i, t := range o.Targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := t.BinaryName(o.Version)
			path := filepath.Join(o.Out, name)
			err := goRun(ctx, o.Dir, t.BuildEnv(base), "build", "-trimpath", "-buildvcs=false",
				"-ldflags="+Ldflags(o.Version, o.Commit, o.Epoch), "-o", path, "./cmd/grapevine")
			if err == nil {
				err = os.Chtimes(path, mtime, mtime)
			}
			if err == nil {
				arts[i], err = describe(o.Out, name)
				arts[i].Target = t
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", t, err)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return arts, nil
}

func describe(dir, name string) (Artifact, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, fmt.Errorf("failed to hash %s: %w", name, err)
	}
	return Artifact{Name: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// SumsName is the file of SHA-256 sums in a release directory.
const SumsName = "SHA256SUMS"

// WriteSums writes SHA256SUMS in dir in sha256sum's format (`sha256sum -c
// SHA256SUMS` checks it), sorted by name, with mtime epoch.
func WriteSums(dir string, arts []Artifact, epoch int64) error {
	lines := make([]string, 0, len(arts))
	for _, a := range arts {
		lines = append(lines, a.SHA256+"  "+a.Name+"\n")
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	path := filepath.Join(dir, SumsName)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return os.Chtimes(path, time.Unix(epoch, 0), time.Unix(epoch, 0))
}

// ReadSums reads a SHA256SUMS file: file name to hex SHA-256.
func ReadSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("%s: %q is not a line of sha256sum", path, sc.Text())
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

// SigSuffix ends the name of a file's signature.
const SigSuffix = ".minisig"

// TrustedComment is what a release signature of file says about it: signed
// with it, so that a verifier learns which version and platform it holds.
func TrustedComment(file, version, commit, platform string, epoch int64) string {
	tc := fmt.Sprintf("timestamp:%d\tfile:%s\tversion:%s\tcommit:%s", epoch, file, version, commit)
	if platform != "" {
		tc += "\tplatform:" + platform
	}
	return tc + "\thashed"
}

// ParseTrustedComment splits a trusted comment into its key:value fields.
func ParseTrustedComment(tc string) map[string]string {
	fields := map[string]string{}
	for _, f := range strings.Split(tc, "\t") {
		if k, v, ok := strings.Cut(f, ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// SignRelease writes NAME.minisig beside every artifact and SHA256SUMS, with
// the key k, and returns the files written.
func SignRelease(dir string, arts []Artifact, k PrivateKey, version, commit string, epoch int64) ([]string, error) {
	type item struct{ name, platform string }
	items := []item{{SumsName, ""}}
	for _, a := range arts {
		items = append(items, item{a.Name, a.Target.String()})
	}
	var written []string
	for _, it := range items {
		f, err := os.Open(filepath.Join(dir, it.name))
		if err != nil {
			return written, err
		}
		sig, err := Sign(k, f, TrustedComment(it.name, version, commit, it.platform, epoch))
		f.Close()
		if err != nil {
			return written, fmt.Errorf("failed to sign %s: %w", it.name, err)
		}
		path := filepath.Join(dir, it.name+SigSuffix)
		if err := os.WriteFile(path, sig, 0o644); err != nil {
			return written, fmt.Errorf("failed to write %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}

// CheckSums checks that every file sums lists in dir has its SHA-256.
func CheckSums(dir string, sums map[string]string) error {
	for name, want := range sums {
		a, err := describe(dir, name)
		if err != nil {
			return err
		}
		if a.SHA256 != want {
			return fmt.Errorf("%s does not match %s", name, SumsName)
		}
	}
	return nil
}
