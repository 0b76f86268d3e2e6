package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped in by a release build (internal/release.Ldflags):
// -X main.version=v0.3.0 -X main.commit=HASH -X main.date=RFC3339.
var version, commit, date string

// buildInfo is what `grapevine version --json` prints.
type buildInfo struct {
	Version  string `json:"version"`  // the release, or "dev"
	Commit   string `json:"commit"`   // the source's commit hash, if known
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes (dev builds)
	Date     string `json:"date,omitempty"`
	Go       string `json:"go"`       // the Go release that built it
	Platform string `json:"platform"` // GOOS/GOARCH
}

// readBuildInfo is the stamped version, else what the Go toolchain recorded
// (the commit of a `go build` in a git checkout).
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if b.Version == "" {
		b.Version = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				b.Version = v
			}
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					b.Commit = s.Value
				case "vcs.modified":
					b.Modified = s.Value == "true"
				case "vcs.time":
					b.Date = s.Value
				}
			}
		}
	}
	return b
}

func (b buildInfo) String() string {
	s := "grapevine " + b.Version
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if b.Modified {
			c += "+modified"
		}
		s += " (commit " + c + ")"
	}
	return s + ", " + b.Go + ", " + b.Platform
}

func (c *cli) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Show which grapevine this is: version, commit, Go release, platform",
		Long: `Show which grapevine this is. A release binary carries its version and commit;
check that it is authentic with grapevine verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			if asJSON {
				return c.printJSON(b)
			}
			fmt.Fprintln(c.stdout, b)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {version, commit, modified, date, go, platform} as JSON")
	return cmd
}
