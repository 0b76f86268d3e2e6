package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the controlling side and the terminal a
// child gets as its stdin, stdout and stderr.
func openPTY(t *testing.T) (control, tty *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	control = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { control.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return control, tty
}

// session runs grapevine on a terminal of its own.
type session struct {
	t       *testing.T
	control *os.File
	tty     *os.File
	cmd     *exec.Cmd
	out     bytes.Buffer
	outc    chan []byte
	done    chan error
}

func startOnTerminal(t *testing.T, args ...string) *session {
	t.Helper()
	bin, err := exec.LookPath("grapevine") // testscript.Main put it on $PATH
	if err != nil {
		t.Fatal(err)
	}
	control, tty := openPTY(t)
	s := &session{t: t, control: control, tty: tty, outc: make(chan []byte, 64), done: make(chan error, 1)}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE=") // unset below
	var env []string
	for _, kv := range s.cmd.Env {
		if !strings.HasPrefix(kv, "GRAPEVINE_PASSPHRASE=") {
			env = append(env, kv)
		}
	}
	s.cmd.Env = env
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = tty, tty, tty
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := control.Read(buf)
			if n > 0 {
				s.outc <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				close(s.outc)
				return
			}
		}
	}()
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// expect waits until the terminal has shown want.
func (s *session) expect(want string) {
	s.t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.out.String(), want) {
		select {
		case b, ok := <-s.outc:
			if !ok {
				s.t.Fatalf("terminal closed before %q; it showed:\n%s", want, s.out.String())
			}
			s.out.Write(b)
		case <-deadline:
			s.t.Fatalf("no %q within 30s; the terminal showed:\n%s", want, s.out.String())
		}
	}
}

func (s *session) send(text string) {
	s.t.Helper()
	if _, err := s.control.Write([]byte(text)); err != nil {
		s.t.Fatal(err)
	}
}

// exit waits for the process to end and returns its error.
func (s *session) exit() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		// What it printed last.
		for {
			select {
			case b, ok := <-s.outc:
				if ok {
					s.out.Write(b)
					continue
				}
			case <-time.After(100 * time.Millisecond):
			}
			break
		}
		return err
	case <-time.After(10 * time.Second):
		s.t.Fatalf("still running 10s after; the terminal showed:\n%s", s.out.String())
	}
	return nil
}

// TestPromptInterrupt: Ctrl-C at up's name prompt and at its passphrase
// prompt stops grapevine at once, creates nothing, and leaves the terminal
// echoing again; an empty name is refused before the passphrase is asked; a
// weak passphrase typed at the prompt earns a warning.
func TestPromptInterrupt(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	up := []string{"--home", home, "up", "--listen", "127.0.0.1:0", "--no-discovery"}

	s := startOnTerminal(t, up...)
	s.expect("Your name")
	s.send("\x03") // Ctrl-C
	if err := s.exit(); err == nil || !strings.Contains(s.out.String(), "interrupted") {
		t.Errorf("Ctrl-C at the name prompt: %v\n%s", err, s.out.String())
	}

	s = startOnTerminal(t, up...)
	s.expect("Your name")
	s.send("Alice\r")
	s.expect("Passphrase: ")
	s.send("half-typed")
	s.send("\x03")
	if err := s.exit(); err == nil || !strings.Contains(s.out.String(), "interrupted") {
		t.Errorf("Ctrl-C at the passphrase prompt: %v\n%s", err, s.out.String())
	}
	if tio, err := unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS); err != nil || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("the terminal does not echo after Ctrl-C at the passphrase prompt (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(home, "grapevine.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a store was created: %v", err)
	}

	s = startOnTerminal(t, up...)
	s.expect("Your name")
	s.send("   \r")
	if err := s.exit(); err == nil || !strings.Contains(s.out.String(), "name must not be empty") || strings.Contains(s.out.String(), "Passphrase") {
		t.Errorf("an empty name: %v\n%s", err, s.out.String())
	}

	s = startOnTerminal(t, "--home", home, "init", "--name", "Alice")
	s.expect("Passphrase: ")
	s.send("x\r")
	s.expect("Repeat passphrase: ")
	s.send("x\r")
	if err := s.exit(); err != nil || !strings.Contains(s.out.String(), "WARNING: this passphrase is weak") || !strings.Contains(s.out.String(), "Created identity") {
		t.Errorf("init with a weak passphrase: %v\n%s", err, s.out.String())
	}
}
