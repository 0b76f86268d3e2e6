// Package release builds, signs and verifies Grapevine's release binaries:
// the platforms they are built for, reproducible builds with the version
// stamped in, SHA-256 sums, and minisign signatures made with the project's
// release key, which every grapevine binary carries the public half of
// (grapevine verify).
package release

import "fmt"

// Target is one platform a release is built for.
type Target struct {
	GOOS, GOARCH string
	// Env is extra build environment (GOARM for 32-bit ARM).
	Env []string
}

func (t Target) String() string { return t.GOOS + "/" + t.GOARCH }

// BinaryName is the file name of the binary for t in a release of version.
func (t Target) BinaryName(version string) string {
	name := fmt.Sprintf("grapevine-%s-%s-%s", version, t.GOOS, t.GOARCH)
	if t.GOOS == "windows" {
		name += ".exe"
	}
	return name
}

// Targets lists every platform a release supports, and CI cross-compiles
// (all with CGO_ENABLED=0: Grapevine is pure Go).
func Targets() []Target {
	return []Target{
		{GOOS: "linux", GOARCH: "amd64"},
		{GOOS: "linux", GOARCH: "arm64"}, // Raspberry Pi 3 and later, 64-bit
		// ARMv6 with VFP runs on every Raspberry Pi (the Zero and 1 are ARMv6)
		// and on ARMv7 routers.
		{GOOS: "linux", GOARCH: "arm", Env: []string{"GOARM=6"}},
		{GOOS: "linux", GOARCH: "riscv64"},
		{GOOS: "darwin", GOARCH: "amd64"},
		{GOOS: "darwin", GOARCH: "arm64"},
		{GOOS: "windows", GOARCH: "amd64"},
		{GOOS: "freebsd", GOARCH: "amd64"},
		{GOOS: "openbsd", GOARCH: "amd64"},
		{GOOS: "android", GOARCH: "arm64"},
	}
}
