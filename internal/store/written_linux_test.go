package store

import (
	"bytes"
	"os"
	"strconv"
)

// bytesWritten is what this process has passed to write system calls so
// far (wchar in /proc/self/io), or -1 if it cannot be read.
func bytesWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("wchar: ")); ok {
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}
