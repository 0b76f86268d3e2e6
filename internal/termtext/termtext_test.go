package termtext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"See you at the well at nine", "See you at the well at nine"},
		{"Zoë 日本 🍇", "Zoë 日本 🍇"},
		{`C:\Users\bob`, `C:\Users\bob`},
		{"\x1b[2J\x1b[Hcleared", `\x1b[2J\x1b[Hcleared`},
		{"ring\a", `ring\x07`},
		{"over\rwrite", `over\rwrite`},
		{"two\nlines", `two\nlines`},
		{"tab\there", `tab\there`},
		{"back\bspace", `back\x08space`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m csi", `c1 \x9b31m csi`},
		{"nel\u0085", `nel\x85`},
		{"\u202eevil.exe", `\u202eevil.exe`},
		{"iso\u2066late\u2069", `iso\u2066late\u2069`},
		{"mark\u200f", `mark\u200f`},
		{"sep\u2028arator", `sep\u2028arator`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"", ""},
	}
	for _, c := range cases {
		if got := Line(c.in); got != c.want {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"one line", "    one line"},
		{"Alice: hi\n2026-01-01 12:00  from Bob [received]", "    │ Alice: hi\n    │ 2026-01-01 12:00  from Bob [received]"},
		{"windows\r\nlines", "    │ windows\n    │ lines"},
		{"trailing\n", "    │ trailing\n    │ "},
		{"   ", "    │    "},
		{"│ fake continuation", "    │ │ fake continuation"},
		{"esc\x1b[31m\nred", "    │ esc\\x1b[31m\n    │ red"},
	}
	for _, c := range cases {
		if got := Text(c.in, "    "); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWidth(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"Bob", 3},
		{"日本語", 6},
		{"🍇", 2},
		{"e\u0301", 1},         // e + combining acute
		{"👩\u200d👩\u200d👧", 2}, // a family: one glyph
		{"🇫🇷", 2},
		{"❤\ufe0f", 1},
		{"ＡＢ", 4},    // fullwidth
		{"a\x1b", 5}, // shown as a\x1b
	}
	for _, c := range cases {
		if got := Width(c.in); got != c.want {
			t.Errorf("Width(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestTable(t *testing.T) {
	got := Table([][]string{
		{"NAME", "STATE", "FINGERPRINT"},
		{"Bob", "active", "abcd"},
		{"日本 🍇", "request", "ef01"},
		{"\x1b[2Jx", "pending", "2345"},
	})
	want := "NAME      STATE    FINGERPRINT\n" +
		"Bob       active   abcd\n" +
		"日本 🍇   request  ef01\n" +
		`\x1b[2Jx` + "  pending  2345\n"
	if got != want {
		t.Errorf("Table =\n%s\nwant\n%s", got, want)
	}
	// Every row's columns start at the same display column.
	for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		i := strings.Index(line, "  ")
		for line[i] == ' ' {
			i++
		}
		if w := Width(line[:i]); w != 10 {
			t.Errorf("second column of %q starts at %d, want 10", line, w)
		}
	}
}

// FuzzLine: whatever the input, what Line and Text print holds no control
// character, separator or bidi control but the newlines Text puts there, and
// is valid UTF-8.
func FuzzLine(f *testing.F) {
	for _, s := range []string{"hello", "\x1b[31mred", "\u202e", "a\nb\r\nc", "\xff", "🍇\u200d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Line(s), strings.ReplaceAll(Text(s, "  "), "\n", "")} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
			}
			for _, r := range out {
				if unicode.IsControl(r) || needsEscape(r) {
					t.Fatalf("%q out of %q holds %U", out, s, r)
				}
			}
		}
		if Width(s) < 0 {
			t.Fatal("negative width")
		}
		if clean(s) && Line(s) != s {
			t.Fatalf("clean %q changed to %q", s, Line(s))
		}
	})
}

func TestLines(t *testing.T) {
	got := Lines("hi\r\nthere\x1b[2J\n\u202eevil")
	want := []string{"hi", `there\x1b[2J`, `\u202eevil`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
}
