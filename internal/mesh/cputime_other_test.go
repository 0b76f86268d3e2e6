//go:build !unix

package mesh

import "time"

// cpuTime is not measured here: benchmarks leave their CPU figures out.
func cpuTime() time.Duration { return 0 }
