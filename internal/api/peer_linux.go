package api

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer asks the kernel which user the process at the other end of c
// runs as (SO_PEERCRED), and refuses anyone but ourselves: the socket file
// may have been replaced since it was checked.
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
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
	if credErr != nil {
		return fmt.Errorf("failed to learn who serves the API socket: %w", credErr)
	}
	if uid := os.Geteuid(); int(cred.Uid) != uid {
		return fmt.Errorf("the API socket is served by a process of user %d, not yours (user %d): refusing to talk to it", cred.Uid, uid)
	}
	return nil
}
