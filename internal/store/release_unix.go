//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package store

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// releaseMemory tells the kernel that the store file's pages need not stay
// mapped in this process (madvise MADV_DONTNEED). They stay in the page
// cache and come back on the next access; resident memory no longer counts
// every page a full scan (such as loading the envelope inventory at start)
// touched. Errors are ignored: this is only advice.
func (d *boltDB) releaseMemory() {
	size, err := d.size()
	if err != nil || size <= 0 {
		return
	}
	info := d.db.Info()
	if info.Data == 0 {
		return
	}
	// bbolt reports its mapping as a uintptr; reading the same word as a
	// pointer keeps vet's unsafe.Pointer rules satisfied.
	base := *(*unsafe.Pointer)(unsafe.Pointer(&info.Data))
	page := int64(unix.Getpagesize())
	unix.Madvise(unsafe.Slice((*byte)(base), size/page*page), unix.MADV_DONTNEED)
}
