// Command release is the project's release tool (it is not shipped):
//
//	go run ./cmd/release check [-vet windows/amd64,darwin/arm64] [-p 2]
//
// compiles every package for every release target with CGO_ENABLED=0 (CI
// runs it), and vets the packages and their tests for the targets named.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

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
		return fmt.Errorf("usage: release check|build|keygen|sign ... (see go doc ./cmd/release)")
	}
	switch args[0] {
	case "check":
		return check(ctx, args[1:], out)
	default:
		return fmt.Errorf("unknown command %q: want check", args[0])
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
