//go:build !linux

package main

import (
	"errors"
	"time"
)

// interruptNode cannot find the node's process on this platform.
func interruptNode(string) error {
	return errors.New("stopping a node from another process is only supported on Linux")
}

// waitUnlocked cannot tell here; the caller has seen the socket go.
func waitUnlocked(string, time.Duration) bool { return true }
