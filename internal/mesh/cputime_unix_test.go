//go:build unix

package mesh

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used so far, user and system,
// on all its threads: what a benchmark costs whatever else shares the
// machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
