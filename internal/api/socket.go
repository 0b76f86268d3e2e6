// Package api owns the local API between the CLI (or an app) and a running
// node: HTTP+JSON on a unix socket in the node's home directory, readable and
// writable by its owner only.
//
// A running node (`grapevine up`) holds the unlocked store; while it runs,
// every command goes through it: Listen and Server on the node's side, Dial
// and Client on the caller's. Client mirrors the node's own methods (Core),
// so a caller works the same way with the store opened in-process or with a
// running node.
package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketName is the name of the API socket inside the Grapevine home.
const SocketName = "grapevine.sock"

// SocketPath is where the API socket of the node in home lives.
func SocketPath(home string) string { return filepath.Join(home, SocketName) }

var (
	// ErrNoNode is wrapped by Dial when no node answers in the home: the
	// caller may open the store itself.
	ErrNoNode = errors.New("no node is running")
	// ErrRunning is wrapped by Listen when a node already answers in the home.
	ErrRunning = errors.New("a node is already running")
)

// probeTimeout bounds connecting to the socket: a live node accepts at once.
const probeTimeout = 2 * time.Second

// maxSocketPath is roughly what every unix allows in sun_path (104 on the
// BSDs and macOS, 108 on Linux); longer paths only earn a hint in errors.
const maxSocketPath = 104

// Listen creates the API socket in home (mode 0600; home is created 0700 if
// missing). If a node already answers on it, Listen fails with an error
// wrapping ErrRunning; a stale socket left by a node that died is removed.
// Closing the listener removes the socket file.
func Listen(home string) (net.Listener, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", home, err)
	}
	path := SocketPath(home)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: move it away", path)
		}
		conn, err := net.DialTimeout("unix", path, probeTimeout)
		switch {
		case err == nil:
			conn.Close()
			return nil, fmt.Errorf("%w in %s", ErrRunning, home)
		case errors.Is(err, syscall.ECONNREFUSED): // stale: its node died
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("failed to remove stale socket: %w", err)
			}
		default:
			return nil, fmt.Errorf("failed to check socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) { // another node won a race
			return nil, fmt.Errorf("%w in %s", ErrRunning, home)
		}
		if len(path) >= maxSocketPath {
			return nil, fmt.Errorf("failed to listen on %s (%d bytes; unix sockets allow about %d): use a shorter home path: %w",
				path, len(path), maxSocketPath, err)
		}
		return nil, fmt.Errorf("failed to listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	// The socket is created with the umask's mode; until this chmod only the
	// owner can reach it anyway, since the home is 0700.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to restrict %s: %w", path, err)
	}
	return ln, nil
}

// noNode reports whether a failed connection means nobody listens on the
// socket: no file (or no home), a stale file, or a path too long for any
// node to have listened on.
func noNode(err error, path string) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		(errors.Is(err, syscall.EINVAL) && len(path) >= maxSocketPath)
}
