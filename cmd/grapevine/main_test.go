package main

// CLI acceptance tests: every script in testdata/*.txtar drives the real
// command line (run, in a subprocess of the test binary) through a scenario.
//
// Besides testscript's built-in commands, scripts may use:
//
//	jsonget FILE PATH [VAR]  find PATH in the JSON in FILE (stdout, stderr or a
//	                         file under $WORK); store the value in VAR. PATH is
//	                         dot-separated: a field name, an array index (negative
//	                         counts from the end) or KEY=VALUE, which picks the
//	                         array element whose field KEY is the string VALUE.
//	                         Fails if PATH is missing, so `! jsonget` asserts absence.
//	capture FILE REGEXP VAR  store in VAR the first submatch of REGEXP (multi-line
//	                         mode) in FILE; fails if nothing matches.
//	atmost N MAX             fail unless the integer N <= MAX.
//	nogrep STRING PATH...    fail if any file under PATH (walking directories,
//	                         byte-wise) contains STRING.
//	hasprefix FILE HEX       fail unless FILE starts with the bytes HEX.
//	truncate FILE N          cut FILE to N bytes; a negative N removes -N bytes
//	                         from its end.
//	flipbyte FILE OFFSET     invert every bit of the byte at OFFSET (negative
//	                         counts from the end).
//	zero FILE OFFSET LEN     overwrite LEN bytes of FILE at OFFSET with zeros.
//	chown UID PATH           give PATH (not following a link) to user UID (needs root).
//	eventually SECS REGEXP PROG ARGS...
//	                         run PROG until its stdout matches REGEXP (multi-line
//	                         mode), for at most SECS seconds; stdout is then
//	                         the last run's.
//
// and the condition [root]: the test runs as root.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"grapevine": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"jsonget":     cmdJSONGet,
			"capture":     cmdCapture,
			"atmost":      cmdAtMost,
			"nogrep":      cmdNoGrep,
			"hasprefix":   cmdHasPrefix,
			"truncate":    cmdTruncate,
			"flipbyte":    cmdFlipByte,
			"eventually":  cmdEventually,
			"chown":       cmdChown,
			"zero":        cmdZero,
			"signrelease": cmdSignRelease, // share_test.go
			"fetch":       cmdFetch,
			"mkfile":      cmdMkfile,      // files_test.go
			"mkjpeg":      cmdMkjpeg,      // files_test.go
			"splitbundle": cmdSplitbundle, // files_test.go
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			// Never fall back to a real home directory.
			env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, ".xdg-unused"))
			return nil
		},
	})
}

// jsonLookup walks path through v.
func jsonLookup(v any, path string) (any, error) {
	if path == "" || path == "." {
		return v, nil
	}
	for _, step := range strings.Split(path, ".") {
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[step]
			if !ok {
				return nil, fmt.Errorf("no field %q", step)
			}
			v = next
		case []any:
			if key, want, ok := strings.Cut(step, "="); ok {
				v = nil
				for _, el := range cur {
					if m, ok := el.(map[string]any); ok && m[key] == want {
						v = el
						break
					}
				}
				if v == nil {
					return nil, fmt.Errorf("no element with %s == %q", key, want)
				}
				continue
			}
			i, err := strconv.Atoi(step)
			if err != nil {
				return nil, fmt.Errorf("%q is not an index into an array", step)
			}
			if i < 0 {
				i += len(cur)
			}
			if i < 0 || i >= len(cur) {
				return nil, fmt.Errorf("index %s out of range (length %d)", step, len(cur))
			}
			v = cur[i]
		default:
			return nil, fmt.Errorf("cannot apply %q to %T", step, v)
		}
	}
	return v, nil
}

func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE PATH [VAR]")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &v); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	got, err := jsonLookup(v, args[1])
	if neg {
		if err == nil {
			ts.Fatalf("%s has %s (%v), want it absent", args[0], args[1], got)
		}
		return
	}
	if err != nil {
		ts.Fatalf("%s: %s: %v", args[0], args[1], err)
	}
	if len(args) == 3 {
		var s string
		switch g := got.(type) {
		case string:
			s = g
		default:
			b, _ := json.Marshal(g)
			s = string(b)
		}
		ts.Setenv(args[2], s)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: capture FILE REGEXP VAR")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[0]))
	if m == nil || len(m) < 2 {
		ts.Fatalf("capture: no match (with a group) for %q in %s", args[1], args[0])
	}
	ts.Setenv(args[2], m[1])
}

func cmdEventually(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: eventually SECS REGEXP PROG ARGS...")
	}
	secs, err := strconv.Atoi(args[0])
	ts.Check(err)
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		err := ts.Exec(args[2], args[3:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("eventually: %q not in the output of %s within %ds (last error: %v)", args[1], args[2], secs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdAtMost(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: atmost N MAX")
	}
	n, err1 := strconv.Atoi(args[0])
	limit, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		ts.Fatalf("atmost: %q and %q must be integers", args[0], args[1])
	}
	if (n <= limit) == neg {
		ts.Fatalf("atmost %d %d: %v", n, limit, n <= limit)
	}
}

func cmdNoGrep(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! nogrep (use grep)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: nogrep STRING PATH...")
	}
	needle := []byte(args[0])
	files := 0
	for _, root := range args[1:] {
		err := filepath.WalkDir(ts.MkAbs(root), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			if i := bytes.Index(b, needle); i >= 0 {
				return fmt.Errorf("%s contains %q at offset %d", p, needle, i)
			}
			return nil
		})
		ts.Check(err)
	}
	if files == 0 {
		ts.Fatalf("nogrep: no files under %v", args[1:])
	}
}

func cmdHasPrefix(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: hasprefix FILE HEX")
	}
	want, err := hex.DecodeString(args[1])
	ts.Check(err)
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if bytes.HasPrefix(b, want) == neg {
		ts.Fatalf("hasprefix %s %s: %v (file starts with %x)", args[0], args[1], !neg, b[:min(len(b), len(want))])
	}
}

func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE N")
	}
	path := ts.MkAbs(args[0])
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	fi, err := os.Stat(path)
	ts.Check(err)
	if n < 0 {
		n += fi.Size()
	}
	if n < 0 || n > fi.Size() {
		ts.Fatalf("truncate: %s is %d bytes, cannot cut to %d", args[0], fi.Size(), n)
	}
	ts.Check(os.Truncate(path, n))
}

func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	path := ts.MkAbs(args[0])
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	b, err := os.ReadFile(path)
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("flipbyte: offset %s outside %s (%d bytes)", args[1], args[0], len(b))
	}
	b[off] ^= 0xff
	ts.Check(os.WriteFile(path, b, 0o644))
}

func cmdChown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: chown UID PATH")
	}
	uid, err := strconv.Atoi(args[0])
	ts.Check(err)
	ts.Check(os.Lchown(ts.MkAbs(args[1]), uid, -1))
}

func cmdZero(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: zero FILE OFFSET LEN")
	}
	off, err1 := strconv.ParseInt(args[1], 10, 64)
	n, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		ts.Fatalf("zero: offset and length must be integers")
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	_, err = f.WriteAt(make([]byte, n), off)
	ts.Check(err)
}
