package keys

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxNameLen bounds display names, in bytes of UTF-8 after normalisation.
const MaxNameLen = 64

// NormalizeName returns the form of a display name that is stored, shown
// and compared (SPEC §1): NFC, without leading or trailing spaces. It
// refuses names that could deceive a reader: empty or blank ones; control,
// format (zero-width, bidi overrides and marks), private-use, surrogate and
// unassigned code points; line and paragraph separators; spaces other than
// U+0020 and runs of them; invisible fillers (Unicode's default-ignorable
// code points). "Bob" followed by a zero-width space therefore cannot pose
// as "Bob".
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errors.New("name is not valid UTF-8")
	}
	n := strings.TrimSpace(norm.NFC.String(name))
	switch {
	case n == "":
		return "", errors.New("name must not be empty or blank")
	case len(n) > MaxNameLen:
		return "", fmt.Errorf("name is %d bytes, limit %d", len(n), MaxNameLen)
	case strings.Contains(n, "  "):
		return "", errors.New("name contains a run of spaces")
	}
	for _, r := range n {
		if what := forbiddenInName(r); what != "" {
			return "", fmt.Errorf("name contains %s (U+%04X)", what, r)
		}
	}
	return n, nil
}

func forbiddenInName(r rune) string {
	switch {
	case unicode.IsControl(r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character"
	case unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r):
		return "a private-use or surrogate code point"
	case unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return "a line or paragraph separator"
	case unicode.Is(unicode.Zs, r) && r != ' ':
		return "a space other than U+0020"
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), unicode.Is(unicode.Variation_Selector, r):
		return "an invisible character"
	case r == utf8.RuneError, !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
		return "an unassigned code point"
	}
	return ""
}

// CheckName reports whether name is acceptable as it stands: already in
// the normal form NormalizeName gives.
func CheckName(name string) error {
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	if n != name {
		return errors.New("name is not in normal form (NFC, no surrounding spaces)")
	}
	return nil
}

// NameKey is what two names are compared by: the normal form, case-folded,
// so "ALICE" and "alice" are the same contact name.
func NameKey(name string) string {
	return cases.Fold().String(norm.NFC.String(name))
}
