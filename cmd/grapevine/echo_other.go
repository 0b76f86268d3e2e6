//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package main

import (
	"os"

	"golang.org/x/term"
)

// hideInput, where termios is not at hand, leaves echo to term.ReadPassword.
func hideInput(f *os.File) (read func() ([]byte, error), err error) {
	return func() ([]byte, error) { return term.ReadPassword(int(f.Fd())) }, nil
}
