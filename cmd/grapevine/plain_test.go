package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// jsonFields lists the JSON names of t's fields, embedded structs included.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			names = append(names, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// TestJSONHelp: the --json help of every listing names every field it prints.
func TestJSONHelp(t *testing.T) {
	root := newRoot(&cli{})
	find := func(path ...string) *cobra.Command {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cases := []struct {
		cmd  []string
		typ  any
		also []string
	}{
		{[]string{"contacts"}, node.Contact{}, nil},
		{[]string{"messages"}, node.Message{}, nil},
		{[]string{"envelopes"}, node.EnvelopeInfo{}, nil},
		{[]string{"peers"}, mesh.PeerInfo{}, nil},
		{[]string{"id"}, node.Self{}, nil},
		{[]string{"import"}, node.ImportReport{}, nil},
		{[]string{"status"}, mesh.Status{}, []string{"running"}},
		{[]string{"version"}, buildInfo{}, nil},
	}
	braces := regexp.MustCompile(`\{([^}]*)\}`)
	for _, c := range cases {
		usage := find(c.cmd...).Flags().Lookup("json").Usage
		m := braces.FindStringSubmatch(usage)
		if m == nil {
			t.Errorf("%s --json: %q lists no fields", c.cmd, usage)
			continue
		}
		var listed []string
		for _, f := range strings.Split(m[1], ",") {
			listed = append(listed, strings.TrimSuffix(strings.TrimSpace(f), "?"))
		}
		want := append(jsonFields(reflect.TypeOf(c.typ)), c.also...)
		slices.Sort(listed)
		slices.Sort(want)
		if !slices.Equal(listed, want) {
			t.Errorf("%s --json lists %v, prints %v", c.cmd, listed, want)
		}
	}
}

func TestImportTextSaysEvicted(t *testing.T) {
	var out bytes.Buffer
	c := &cli{stdout: &out}
	c.printImport("x.gvb", node.ImportReport{IngestReport: node.IngestReport{Received: 5, New: 5, Evicted: 3, Refused: 2}, Complete: true})
	for _, want := range []string{"  3 carried envelopes dropped to stay within the relay quota\n", "  2 for others, not carried"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("import report without %q:\n%s", want, out.String())
		}
	}
}

// TestMalformedAnswers: whatever a socket in the home answers — empty
// objects, nulls, wrong types, garbage — the CLI does not panic.
func TestMalformedAnswers(t *testing.T) {
	home, err := os.MkdirTemp("", "gvbad")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	answers := []string{`{}`, `[]`, `null`, `[{}]`, `{"id": 7}`, `[null]`, `garbage`, `{"peers": "many"}`, ``}
	commands := [][]string{{"id"}, {"contacts"}, {"contacts", "add", "grapevine:x"}, {"contacts", "accept", "Bob"},
		{"send", "Bob", "hi"}, {"messages"}, {"envelopes"}, {"peers"}, {"status"}, {"clock"},
		{"export", home + "/x.gvb"}, {"import", "/dev/null"}, {"contacts", "verify", "Bob"}}
	for _, answer := range answers {
		ln, err := api.Listen(home)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(answer))
		})}
		go srv.Serve(ln)
		for _, args := range commands {
			for _, js := range []bool{false, true} {
				a := append([]string{"--home", home}, args...)
				if js {
					a = append(a, "--json")
				}
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Errorf("grapevine %s, with the answer %q: panic: %v", strings.Join(a, " "), answer, p)
						}
					}()
					var out, errOut bytes.Buffer
					run(a, strings.NewReader(""), &out, &errOut)
				}()
			}
		}
		srv.Shutdown(context.Background())
		ln.Close()
	}
}

func TestHints(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&node.Error{Kind: node.ErrConflict, Reason: node.ReasonAlreadyContact, Contact: "Bob", Msg: "Bob is already a contact"},
			`Bob is already a contact (to start new keys with them: grapevine contacts rekey "Bob")`},
		{&api.Error{Code: api.CodeConflict, Reason: node.ReasonNameTaken, Contact: "Bob", Message: `a contact named "Bob" already exists`},
			`a contact named "Bob" already exists: choose another with --name`},
		{&api.Error{Code: api.CodeConflict, Reason: node.ReasonRequestWaiting, Contact: "Eve", Message: "Eve asked to be your contact: accept the request first"},
			`Eve asked to be your contact: accept the request first (grapevine contacts accept "Eve", or reject)`},
		{node.ErrNoContact, "no such contact"},
	}
	for _, c := range cases {
		if got := withHint(c.err).Error(); got != c.want {
			t.Errorf("withHint(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"0": 0, "512": 512, "1G": 1 << 30, "1g": 1 << 30, "1GB": 1e9, "1GiB": 1 << 30, "1.5GiB": 3 << 29,
		"256MiB": 256 << 20, "64 MB": 64e6, "2k": 2048, "1T": 1 << 40, "8388607TiB": 8388607 << 40}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1", "+1", "1.5", "99999999999GiB", "8388608TiB", "1e30", "1GiBB", "0x10"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1G", "1.5GiB", "99999999999GiB", "-1", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseSize(s); err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		checkPeer(s)
	})
}
