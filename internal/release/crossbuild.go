package release

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// BuildEnv is the build environment for t: base (usually os.Environ()) with
// CGO_ENABLED=0, GOOS, GOARCH and t.Env, which override what base says.
func (t Target) BuildEnv(base []string) []string {
	set := append([]string{"CGO_ENABLED=0", "GOOS=" + t.GOOS, "GOARCH=" + t.GOARCH}, t.Env...)
	env := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		overridden := false
		for _, s := range set {
			if strings.HasPrefix(s, k+"=") {
				overridden = true
				break
			}
		}
		if !overridden && k != "GOARM" && k != "GOFLAGS" {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}

// CheckResult is what checking one target found.
type CheckResult struct {
	Target Target
	Vet    bool // go vet ran too (it compiles the tests)
	Took   time.Duration
	Err    error // with the compiler's output
}

// Check compiles every package of the module in dir for each target
// (`go build ./...`, which writes nothing), and also runs `go vet ./...`
// (which compiles the tests) for the targets in vet; at most parallel
// builds run at once. It returns one result per target, in order.
func Check(ctx context.Context, dir string, targets []Target, vet map[string]bool, parallel int) []CheckResult {
	results := make([]CheckResult, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(parallel, 1))
	for i, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			r := CheckResult{Target: t, Vet: vet[t.String()]}
			r.Err = goCmd(ctx, dir, t, "build", "./...")
			if r.Err == nil && r.Vet {
				r.Err = goCmd(ctx, dir, t, "vet", "./...")
			}
			r.Took = time.Since(start)
			results[i] = r
		})
	}
	wg.Wait()
	return results
}

func goCmd(ctx context.Context, dir string, t Target, args ...string) error {
	return goRun(ctx, dir, t.BuildEnv(os.Environ()), args...)
}

func goRun(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s failed: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
