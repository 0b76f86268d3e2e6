package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// errInterrupted is what a prompt returns on Ctrl-C.
var errInterrupted = errors.New("interrupted")

// terminal returns stdin if it is a terminal.
func (c *cli) terminal() (*os.File, bool) {
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

// readSecret asks for a secret on the terminal, without echo. Ctrl-C (which
// cancels ctx) gives up at once and puts the terminal back as it was.
func (c *cli) readSecret(ctx context.Context, f *os.File, prompt string) ([]byte, error) {
	fd := int(f.Fd())
	old, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("failed to read from the terminal: %w", err)
	}
	read, err := hideInput(f)
	if err != nil {
		return nil, fmt.Errorf("failed to switch the terminal's echo off: %w", err)
	}
	fmt.Fprint(c.stderr, prompt)
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := read()
		got <- result{b, err}
	}()
	select {
	case r := <-got:
		fmt.Fprintln(c.stderr)
		if r.err != nil {
			return nil, fmt.Errorf("failed to read from the terminal: %w", r.err)
		}
		return r.b, nil
	case <-ctx.Done():
		term.Restore(fd, old) // echo back on; the reader is abandoned
		fmt.Fprintln(c.stderr)
		return nil, errInterrupted
	}
}

// readLine asks for one line on the terminal; Ctrl-C gives up at once.
func (c *cli) readLine(ctx context.Context, f *os.File, prompt string) (string, error) {
	fmt.Fprint(c.stderr, prompt)
	type result struct {
		s   string
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := bufio.NewReader(f).ReadString('\n')
		got <- result{s, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			fmt.Fprintln(c.stderr)
			return "", fmt.Errorf("failed to read from the terminal: %w", r.err)
		}
		return strings.TrimSpace(r.s), nil
	case <-ctx.Done():
		fmt.Fprintln(c.stderr)
		return "", errInterrupted
	}
}

// ask reads one line from a terminal.
func (c *cli) ask(ctx context.Context, prompt string) (string, error) {
	f, ok := c.terminal()
	if !ok {
		return "", errors.New("not on a terminal to ask")
	}
	return c.readLine(ctx, f, prompt)
}
