// Package termtext renders text that someone else wrote (a contact's message
// or name, a peer's address, a file name in an error) for a terminal, so that
// it cannot control the terminal or pass for output of grapevine's own:
//
//   - control characters (C0, DEL, C1 — ESC, and with it every escape
//     sequence, the bell, backspace, carriage return), line and paragraph
//     separators, and invalid UTF-8 are shown escaped, as \x1b, \n, \u2028,
//     \xff;
//   - bidirectional formatting characters (embeddings, overrides, isolates,
//     marks) are shown escaped, so text cannot reorder the rest of a line;
//   - Text marks every line of a multi-line message, so its lines cannot be
//     mistaken for lines of the listing;
//   - Width measures what a terminal shows (East Asian wide characters and
//     emoji take two columns, combining marks none), and Table aligns columns
//     by it.
//
// Backslashes are left as they are: a text that spells out "\x1b" shows as
// it was written, and controls nothing.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Line renders s for one line of a terminal: every character that could
// move the cursor, end the line, start an escape sequence or reorder the
// line is escaped.
func Line(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	appendLine(&b, s)
	return b.String()
}

// clean reports whether s needs no escaping (the common case, checked first).
func clean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || needsEscape(r) {
			return false
		}
	}
	return true
}

func appendLine(b *strings.Builder, s string) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x100 && needsEscape(r):
			fmt.Fprintf(b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
}

// needsEscape reports whether r must not reach a terminal as it is.
func needsEscape(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r < 0xa0: // C0, DEL, C1
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return isBidiControl(r)
}

// isBidiControl reports whether r is one of Unicode's explicit directional
// formatting characters (Bidi_Control): ALM, LRM, RLM, LRE, RLE, PDF, LRO,
// RLO, LRI, RLI, FSI, PDI.
func isBidiControl(r rune) bool {
	return unicode.Is(unicode.Bidi_Control, r)
}

// Prefix starts every line of a multi-line text that Text renders.
const Prefix = "│ "

// Text renders a message that may span lines: each line rendered as by Line,
// on a line of its own that starts with indent and Prefix, so that no line
// of the text can pass for a line of the listing around it. A text of one
// line is indent + Line(s) — unless it starts with the prefix's bar or
// looks blank, which are marked too.
func Text(s, indent string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	if len(lines) == 1 && strings.TrimSpace(s) != "" && !strings.HasPrefix(s, "│") {
		return indent + Line(s)
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(indent)
		b.WriteString(Prefix)
		appendLine(&b, l)
	}
	return b.String()
}

// Width is the number of terminal columns s takes once rendered by Line:
// 2 for East Asian wide and fullwidth characters and for emoji shown as
// emoji, 0 for combining marks, zero-width characters and a character joined
// to the one before it (U+200D, as in emoji sequences), 1 for the rest.
func Width(s string) int {
	s = Line(s)
	w := 0
	joined := false
	for _, r := range s {
		if joined {
			joined = false
			continue
		}
		switch {
		case r == 0x200d: // zero width joiner: the next rune joins this glyph
			joined = true
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf), unicode.Is(unicode.Variation_Selector, r):
		case r >= 0x1f1e6 && r <= 0x1f1ff: // regional indicators: two make a flag
			w++
		default:
			switch width.LookupRune(r).Kind() {
			case width.EastAsianWide, width.EastAsianFullwidth:
				w += 2
			default:
				w++
			}
		}
	}
	return w
}

// Pad renders s with Line and pads it with spaces to at least cols columns.
func Pad(s string, cols int) string {
	l := Line(s)
	if w := Width(s); w < cols {
		return l + strings.Repeat(" ", cols-w)
	}
	return l
}

// Table renders rows as columns separated by two spaces, each cell rendered
// by Line and aligned by its display width; the last cell of a row is not
// padded. Every row ends with a newline.
func Table(rows [][]string) string {
	widths := map[int]int{}
	for _, r := range rows {
		for i, cell := range r[:max(len(r)-1, 0)] {
			widths[i] = max(widths[i], Width(cell))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, cell := range r {
			if i == len(r)-1 {
				b.WriteString(Line(cell))
			} else {
				b.WriteString(Pad(cell, widths[i]))
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Lines splits a message into its lines ("\r\n" and "\n" end a line), each
// rendered by Line, for a client that lays out lines itself (the terminal
// chat wraps each one to the window).
func Lines(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = Line(l)
	}
	return lines
}
