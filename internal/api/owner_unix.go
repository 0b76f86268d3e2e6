//go:build unix

package api

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a socket that belongs to another user: whoever owns
// it, not our node, would answer — and read what we send. (The home is
// owner-only, so only a home someone else could write allows this.)
func checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if uid := os.Geteuid(); ok && int(st.Uid) != uid {
		return fmt.Errorf("the API socket %s belongs to user %d, not to you (user %d): refusing to talk to it, since whoever owns it could pose as your node. "+
			"Run as the node's user (sudo -u), or remove the socket if no node of yours runs", path, st.Uid, uid)
	}
	return nil
}
