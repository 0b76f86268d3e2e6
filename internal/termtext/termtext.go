// Package termtext makes text from others safe to print on a terminal: a
// name or message cannot move the cursor, change colours, set the window
// title, reorder what follows (bidi overrides) or hide itself.
package termtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Replacement stands for what was removed.
const Replacement = '\uFFFD'

// unsafe reports runes that a terminal interprets or that reorder or hide
// text: C0 and C1 controls (ESC starts every escape sequence; C1 CSI and OSC
// do the same in one byte), DEL, bidi embeddings, overrides and isolates,
// and the other invisible format characters (Unicode category Cf).
func unsafe(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || unicode.Is(unicode.Cf, r) ||
		r == utf8.RuneError || unicode.Is(unicode.Co, r) || r == '\u2028' || r == '\u2029'
}

// Line returns s on one line with every unsafe rune, newlines and tabs
// included, replaced: a tab by a space, the others by Replacement.
func Line(s string) string {
	return clean(s, false)
}

// Text is Line that keeps newlines (and turns "\r\n" into "\n").
func Text(s string) string {
	return clean(strings.ReplaceAll(s, "\r\n", "\n"), true)
}

func clean(s string, newlines bool) string {
	ok := true
	for _, r := range s {
		if unsafe(r) && !(newlines && r == '\n') {
			ok = false
			break
		}
	}
	if ok && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // invalid UTF-8 comes as RuneError
		switch {
		case r == '\n' && newlines:
			b.WriteRune(r)
		case r == '\t':
			b.WriteByte(' ')
		case r == '\u200d': // zero-width joiner: keeps emoji sequences whole
			b.WriteRune(r)
		case unsafe(r):
			b.WriteRune(Replacement)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
