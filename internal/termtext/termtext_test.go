package termtext

import (
	"strings"
	"testing"
	"unicode"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, line, text string }{
		{"hello", "hello", "hello"},
		{"a\x1b[2Jb", "a\uFFFD[2Jb", "a\uFFFD[2Jb"},
		{"title\x1b]0;pwned\x07", "title\uFFFD]0;pwned\uFFFD", "title\uFFFD]0;pwned\uFFFD"},
		{"c1\u009b31m", "c1\uFFFD31m", "c1\uFFFD31m"},
		{"abc\u202edcba", "abc\uFFFDdcba", "abc\uFFFDdcba"},
		{"iso\u2066x\u2069", "iso\uFFFDx\uFFFD", "iso\uFFFDx\uFFFD"},
		{"two\nlines\r\n", "two\uFFFDlines\uFFFD\uFFFD", "two\nlines\n"},
		{"tab\there", "tab here", "tab here"},
		{"bad\xffutf8", "bad\uFFFDutf8", "bad\uFFFDutf8"},
		{"emoji 👩‍👩‍👧 🎉", "emoji 👩‍👩‍👧 🎉", "emoji 👩‍👩‍👧 🎉"},
		{"<script>alert(1)</script>", "<script>alert(1)</script>", "<script>alert(1)</script>"},
	} {
		if got := Line(tc.in); got != tc.line {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := Text(tc.in); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

func FuzzLine(f *testing.F) {
	f.Add("a\x1b[31mred\u202e\n")
	f.Add("\u009b\u0085\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Line(s), Text(s)} {
			for _, r := range out {
				if r != '\n' && r != '\u200d' && (r < 0x20 || (r >= 0x7f && r < 0xa0) || unicode.Is(unicode.Cf, r)) {
					t.Fatalf("%q kept %U", s, r)
				}
			}
		}
		if strings.ContainsRune(Line(s), '\n') {
			t.Fatal("Line kept a newline")
		}
	})
}
