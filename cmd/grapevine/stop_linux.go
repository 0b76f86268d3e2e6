package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// interruptNode sends SIGINT (what Ctrl-C sends, on which a node stops
// cleanly) to the process that answers the API socket of home. The kernel
// names that process (SO_PEERCRED), so no process table is searched; it
// must belong to this user.
func interruptNode(home string) error {
	conn, err := net.DialTimeout("unix", api.SocketPath(home), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	switch {
	case credErr != nil:
		return fmt.Errorf("failed to find the node's process: %w", credErr)
	case int(cred.Uid) != os.Getuid() || cred.Pid <= 1:
		return errors.New("the socket is not served by a process of yours")
	}
	return syscall.Kill(int(cred.Pid), syscall.SIGINT)
}

// waitUnlocked waits until no process holds the database of home locked
// (a stopping node closes its store last), for at most d.
func waitUnlocked(home string, d time.Duration) bool {
	f, err := os.Open(filepath.Join(home, store.FileName))
	if err != nil {
		return true
	}
	defer f.Close()
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
