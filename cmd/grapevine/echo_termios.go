//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package main

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// hideInput switches the terminal's echo off before it returns, and gives
// back a reader of one line. Doing the switch here, not in the reading
// goroutine, is what lets a Ctrl-C that comes at once put echo back for
// good: a switch made later by the reader could undo that restore.
func hideInput(f *os.File) (read func() ([]byte, error), err error) {
	fd := int(f.Fd())
	tio, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil, err
	}
	hidden := *tio
	hidden.Lflag &^= unix.ECHO
	hidden.Lflag |= unix.ICANON | unix.ISIG
	hidden.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &hidden); err != nil {
		return nil, err
	}
	return func() ([]byte, error) {
		defer unix.IoctlSetTermios(fd, ioctlSetTermios, tio)
		return readLineBytes(f)
	}, nil
}

// readLineBytes reads up to a newline, one byte at a time so that nothing
// after the line is taken from the terminal.
func readLineBytes(r io.Reader) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			switch b[0] {
			case '\n':
				return line, nil
			case '\r':
			default:
				line = append(line, b[0])
			}
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return line, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
