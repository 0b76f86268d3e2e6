// Command release is the project's release tool (it is not shipped). From the
// module's root:
//
//	go run ./cmd/release check [-vet windows/amd64,darwin/arm64] [-p 2]
//
// compiles every package for every release target with CGO_ENABLED=0 (CI
// runs it), and vets the packages and their tests for the targets named.
//
//	go run ./cmd/release build -version v0.3.0 [-out dist] [-p 2]
//
// builds reproducible binaries of ./cmd/grapevine for every target into
// dist/ and writes dist/SHA256SUMS. It builds a commit (-commit, default
// HEAD), exported with git archive, never the working tree; SOURCE_DATE_EPOCH
// is the commit's time unless $SOURCE_DATE_EPOCH or -epoch say otherwise.
// The same commit, version and Go release give the same bytes anywhere.
//
//	go run ./cmd/release reproduce -version v0.3.0 [-out dist]
//
// builds everything again from the commit with an empty build cache, and
// compares the result with dist/SHA256SUMS.
//
//	go run ./cmd/release keygen -key FILE [-pub internal/release/release.pub]
//
// makes a release key pair: the secret key, encrypted under a passphrase
// asked on the terminal (minisign's format, scrypt), and the public key.
// Do it on the offline machine that keeps the key (README, "Releases").
//
//	go run ./cmd/release sign -key FILE [-out dist] -version v0.3.0
//
// signs every binary in dist/ and SHA256SUMS (NAME.minisig beside each):
// minisign's format, with the version, commit and platform in the signed
// ("trusted") comment. grapevine verify checks them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/grapevine-mesh/grapevine/internal/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: release check|build|reproduce|keygen|sign [flags] (go doc ./cmd/release)")
	}
	switch args[0] {
	case "check":
		return check(ctx, args[1:], out)
	case "build":
		return build(ctx, args[1:], out, false)
	case "reproduce":
		return build(ctx, args[1:], out, true)
	case "keygen":
		return keygen(args[1:], out)
	case "sign":
		return sign(args[1:], out)
	default:
		return fmt.Errorf("unknown command %q: want check, build, reproduce, keygen or sign", args[0])
	}
}

func check(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	vet := fs.String("vet", "windows/amd64,darwin/arm64", "comma-separated targets to also go vet (tests included)")
	parallel := fs.Int("p", 2, "targets built at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	vetSet := map[string]bool{}
	for _, t := range strings.Split(*vet, ",") {
		if t != "" {
			vetSet[t] = true
		}
	}
	start := time.Now()
	var failed []string
	for _, r := range release.Check(ctx, ".", release.Targets(), vetSet, *parallel) {
		what := "build"
		if r.Vet {
			what = "build+vet"
		}
		if r.Err != nil {
			failed = append(failed, r.Target.String())
			fmt.Fprintf(out, "FAIL %-14s %-9s %5.1fs\n%v\n", r.Target, what, r.Took.Seconds(), r.Err)
			continue
		}
		fmt.Fprintf(out, "ok   %-14s %-9s %5.1fs\n", r.Target, what, r.Took.Seconds())
	}
	fmt.Fprintf(out, "%d targets in %.1fs\n", len(release.Targets()), time.Since(start).Seconds())
	if len(failed) > 0 {
		return fmt.Errorf("%d targets do not build: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// gitOutput runs git in the current directory.
func gitOutput(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s failed: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func build(ctx context.Context, args []string, out io.Writer, reproduce bool) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	version := fs.String("version", "", "the release's version, e.g. v0.3.0 (required)")
	commit := fs.String("commit", "", "the commit to build (default HEAD)")
	epoch := fs.Int64("epoch", 0, "SOURCE_DATE_EPOCH (default: $SOURCE_DATE_EPOCH, else HEAD's commit time)")
	outDir := fs.String("out", "dist", "output directory")
	parallel := fs.Int("p", 2, "targets built at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" {
		return errors.New("-version is required, e.g. -version v0.3.0")
	}
	if *commit == "" {
		*commit = "HEAD"
	}
	full, err := gitOutput("rev-parse", "--verify", *commit+"^{commit}")
	if err != nil {
		return fmt.Errorf("%s is not a commit: %w", *commit, err)
	}
	*commit = full
	if *epoch == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
			}
			*epoch = v
		} else {
			s, err := gitOutput("log", "-1", "--format=%ct", *commit)
			if err != nil {
				return err
			}
			if *epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
				return fmt.Errorf("git gave the commit time %q: %w", s, err)
			}
		}
	}
	o := release.BuildOptions{Out: *outDir, Version: *version, Commit: *commit, Epoch: *epoch,
		Targets: release.Targets(), Parallel: *parallel}
	tmp, err := os.MkdirTemp("", "grapevine-release-")
	if err != nil {
		return err
	}
	defer removeAll(tmp)
	// Build the commit, not the working tree: exactly its files, whatever
	// is edited or untracked here.
	if o.Dir, err = exportCommit(ctx, *commit, filepath.Join(tmp, "src")); err != nil {
		return err
	}
	if reproduce {
		return reproduceBuild(ctx, o, tmp, out)
	}
	start := time.Now()
	arts, err := release.Build(ctx, o)
	if err != nil {
		return err
	}
	if err := release.WriteSums(*outDir, arts, *epoch); err != nil {
		return err
	}
	for _, a := range arts {
		fmt.Fprintf(out, "%s  %s  %d bytes\n", a.SHA256, a.Name, a.Size)
	}
	fmt.Fprintf(out, "Built %d binaries of %s (commit %s, SOURCE_DATE_EPOCH %d) in %.0fs; sums in %s.\n",
		len(arts), *version, *commit, *epoch, time.Since(start).Seconds(), filepath.Join(*outDir, release.SumsName))
	return nil
}

// exportCommit writes the files of commit into dir (git archive).
func exportCommit(ctx context.Context, commit, dir string) (string, error) {
	archive := exec.CommandContext(ctx, "sh", "-c", `mkdir -p "$1" && git archive "$2" | tar -x -C "$1"`, "sh", dir, commit)
	if msg, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to export commit %s: %w: %s", commit, err, msg)
	}
	return dir, nil
}

// removeAll removes a temporary tree, read-only module cache files included.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(dir)
}

// reproduceBuild builds o again (o.Dir holds the commit's files) with an
// empty build cache in tmp, and compares with the sums in o.Out.
func reproduceBuild(ctx context.Context, o release.BuildOptions, tmp string, out io.Writer) error {
	want, err := release.ReadSums(filepath.Join(o.Out, release.SumsName))
	if err != nil {
		return fmt.Errorf("failed to read the sums of the build to reproduce: %w", err)
	}
	o.Out = filepath.Join(tmp, "out")
	o.Env = append(os.Environ(), "GOCACHE="+filepath.Join(tmp, "cache"))
	start := time.Now()
	arts, err := release.Build(ctx, o)
	if err != nil {
		return err
	}
	var differ []string
	for _, a := range arts {
		status := "same"
		if want[a.Name] != a.SHA256 {
			status = "DIFFERENT (was " + want[a.Name] + ")"
			differ = append(differ, a.Name)
		}
		fmt.Fprintf(out, "%s  %s  %s\n", a.SHA256, a.Name, status)
	}
	fmt.Fprintf(out, "Rebuilt %d binaries from the commit with an empty build cache in %.0fs.\n", len(arts), time.Since(start).Seconds())
	if len(differ) > 0 {
		return fmt.Errorf("%d binaries differ from %s: %s", len(differ), o.Out, strings.Join(differ, ", "))
	}
	fmt.Fprintln(out, "Every binary is identical: the build is reproducible.")
	return nil
}

// askPassphrase reads a passphrase on the terminal, twice if confirm.
func askPassphrase(confirm bool) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errors.New("the release key's passphrase is asked on a terminal")
	}
	fmt.Fprint(os.Stderr, "Release key passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Repeat: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("the passphrases do not match")
		}
	}
	if len(p) < 12 {
		return nil, errors.New("use a passphrase of at least 12 characters for the release key")
	}
	return p, nil
}

func keygen(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	keyPath := fs.String("key", "", "where to write the secret key (required; it must not exist)")
	pubPath := fs.String("pub", filepath.Join("internal", "release", "release.pub"), "where to write the public key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyPath == "" {
		return errors.New("-key FILE is required")
	}
	pass, err := askPassphrase(true)
	if err != nil {
		return err
	}
	k, err := release.GenerateKey(nil)
	if err != nil {
		return err
	}
	sk, err := release.MarshalPrivateKey(k, pass, release.KDFSensitive())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create the secret key file: %w", err)
	}
	if _, err := f.Write(sk); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pub, _ := k.Public().MarshalText()
	if err := os.WriteFile(*pubPath, pub, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "Made release key %s: secret key in %s (keep it offline), public key in %s (commit it).\n", k.ID, *keyPath, *pubPath)
	return nil
}

func sign(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	keyPath := fs.String("key", "", "the secret key file (required)")
	outDir := fs.String("out", "dist", "the release directory")
	version := fs.String("version", "", "the release's version (required)")
	commit := fs.String("commit", "", "the commit hash (default: git rev-parse HEAD)")
	epoch := fs.Int64("epoch", 0, "SOURCE_DATE_EPOCH (default: HEAD's commit time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyPath == "" || *version == "" {
		return errors.New("-key FILE and -version are required")
	}
	var err error
	if *commit == "" {
		if *commit, err = gitOutput("rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if *epoch == 0 {
		s, err := gitOutput("log", "-1", "--format=%ct", *commit)
		if err != nil {
			return err
		}
		if *epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	k, err := release.ParsePrivateKey(b, func() ([]byte, error) { return askPassphrase(false) })
	if err != nil {
		return err
	}
	sums, err := release.ReadSums(filepath.Join(*outDir, release.SumsName))
	if err != nil {
		return err
	}
	var arts []release.Artifact
	for _, t := range release.Targets() {
		name := t.BinaryName(*version)
		if _, ok := sums[name]; !ok {
			return fmt.Errorf("%s lists no %s: build the release first", release.SumsName, name)
		}
		arts = append(arts, release.Artifact{Target: t, Name: name})
	}
	// Sign only what the sums vouch for.
	if err := release.CheckSums(*outDir, sums); err != nil {
		return err
	}
	written, err := release.SignRelease(*outDir, arts, k, *version, *commit, *epoch)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed %d files with release key %s.\n", len(written), k.ID)
	return nil
}
