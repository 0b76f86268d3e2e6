// Command grapevine is Grapevine's one multicall binary: an offline-first,
// end-to-end encrypted, delay-tolerant mesh messenger. Run `grapevine --help`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run executes one command line and returns the exit status; main is the
// only place that exits, so the whole CLI runs in-process in tests.
//
// The first Ctrl-C (or SIGTERM) cancels the command's context: a prompt
// gives up, a long import or export stops and cleans up, a running node
// stops cleanly. A second one ends the process at once.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs) // the next one is not caught here
			cancel()
		case <-ctx.Done():
		}
	}()

	root := newRoot(&cli{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "grapevine: error: %s\n", errorText(withHint(err)))
		return 1
	}
	return 0
}

// errorText renders an error for the terminal: what others chose (a name, a
// path, a node's answer) may be in it, so each line is rendered safely, and
// lines after the first are indented so that none passes for a line of its
// own.
func errorText(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = safe(l)
	}
	return strings.Join(lines, "\n    ")
}
