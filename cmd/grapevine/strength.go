package main

import (
	"fmt"
	"math"
	"strings"
	"unicode"
)

// weakBits is the estimate below which a new passphrase earns a warning.
const weakBits = 45

// guessesPerSecond is what the warning assumes of someone with a copy of the
// home: Argon2id with 64 MiB per guess holds even a rack of GPUs to some
// thousands a second.
const guessesPerSecond = 10_000

// common are passphrases that any guesser tries first.
var common = map[string]bool{}

func init() {
	for _, p := range strings.Fields(`password passw0rd p@ssw0rd 123456 12345678 123456789 1234567890 qwerty qwertyuiop
	azerty abc123 111111 000000 letmein welcome admin iloveyou monkey dragon sunshine princess football baseball
	master shadow secret grapevine passphrase changeme trustno1 hello test`) {
		common[p] = true
	}
}

// passphraseBits is a rough, conservative estimate of a passphrase's
// strength in bits: for several words, about 11 bits a word (as if drawn
// from a list of 2,048); otherwise the characters' variety over their
// length, where a repeated character or the next in a run (abc, 321) counts
// one bit. Well-known passwords count nearly nothing.
func passphraseBits(p string) float64 {
	lower := strings.ToLower(p)
	if common[lower] || common[strings.TrimRight(lower, "0123456789!")] {
		return 4
	}
	var pool float64
	var lowerSeen, upperSeen, digitSeen, symbolSeen, otherSeen bool
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z':
			lowerSeen = true
		case r >= 'A' && r <= 'Z':
			upperSeen = true
		case r >= '0' && r <= '9':
			digitSeen = true
		case r < 0x80:
			symbolSeen = true
		default:
			otherSeen = true
		}
	}
	for _, c := range []struct {
		seen bool
		n    float64
	}{{lowerSeen, 26}, {upperSeen, 26}, {digitSeen, 10}, {symbolSeen, 33}, {otherSeen, 100}} {
		if c.seen {
			pool += c.n
		}
	}
	perChar := math.Log2(max(pool, 2))
	var bits float64
	var prev rune = -1
	for _, r := range p {
		if d := r - prev; prev >= 0 && (d >= -1 && d <= 1) {
			bits++ // repeats or runs on
		} else {
			bits += perChar
		}
		prev = r
	}
	// Words apart (spaces, hyphens, dots, underscores): a guesser tries
	// words from a list, not letters.
	words := strings.FieldsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("-_.,", r) })
	var n int
	for _, w := range words {
		if len([]rune(w)) >= 3 && strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) }) < 0 {
			n++
		}
	}
	if len(words) >= 2 && n >= 2 {
		bits = min(bits, float64(n)*11+float64(len(words)-n)*8)
	}
	return bits
}

// guessTime says how long guessing a passphrase of bits takes on average.
func guessTime(bits float64) string {
	secs := math.Exp2(bits-1) / guessesPerSecond
	switch {
	case secs < 1:
		return "less than a second"
	case secs < 120:
		return fmt.Sprintf("%.0f seconds", secs)
	case secs < 2*3600:
		return fmt.Sprintf("%.0f minutes", secs/60)
	case secs < 2*86400:
		return fmt.Sprintf("%.0f hours", secs/3600)
	case secs < 2*365*86400:
		return fmt.Sprintf("%.0f days", secs/86400)
	case secs < 1e6*365*86400:
		return fmt.Sprintf("%.0f years", secs/(365*86400))
	}
	return "more than a million years"
}

// warnWeak warns on stderr if a new passphrase is weak. It does not refuse:
// the owner decides, knowing.
func (c *cli) warnWeak(p []byte) {
	bits := passphraseBits(string(p))
	if bits >= weakBits {
		return
	}
	fmt.Fprintf(c.stderr, "WARNING: this passphrase is weak (about %.0f bits): someone with a copy of your home could guess it in about %s\n"+
		"(at %d guesses a second). Four or more random words are strong and easy to type; change it with `grapevine passphrase`.\n",
		bits, guessTime(bits), guessesPerSecond)
}
