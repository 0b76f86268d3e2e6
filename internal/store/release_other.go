//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package store

// ReleaseMemory does nothing on this platform.
func (s *Store) ReleaseMemory() {}
