//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package store

// releaseMemory does nothing on this platform.
func (d *boltDB) releaseMemory() {}
