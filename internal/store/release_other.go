//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package store

// releaseMemory does nothing on this platform.
func (d *boltDB) releaseMemory() {}
