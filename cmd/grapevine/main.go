// Command grapevine is Grapevine's one multicall binary: an offline-first,
// end-to-end encrypted, delay-tolerant mesh messenger. Run `grapevine --help`.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run executes one command line and returns the exit status; main is the
// only place that exits, so the whole CLI runs in-process in tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(&cli{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "grapevine: error: %v\n", err)
		return 1
	}
	return 0
}
