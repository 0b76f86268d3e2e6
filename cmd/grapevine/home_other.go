//go:build !unix

package main

import "runtime"

// checkHome has nothing to check where files carry no unix owner and mode
// (Windows: the home is in the user's profile, which only they can open).
func (c *cli) checkHome(home string) error { return c.recoverInit(home) }

func isWindows() bool { return runtime.GOOS == "windows" }
