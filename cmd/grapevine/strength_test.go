package main

import "testing"

func TestPassphraseBits(t *testing.T) {
	cases := []struct {
		p        string
		min, max float64
	}{
		{"a", 0, 6},
		{"password", 0, 5},
		{"Password1", 0, 5},
		{"aaaaaaaaaaaaaaaaaaaa", 0, 25},
		{"abcdefghijklmnop", 0, 25},
		{"bundles", 25, 40},
		{"correct horse battery staple", 44, 44},
		{"correct horse battery staple lamp", 55, 55},
		{"k7#Qz!p2Rv@9Lm$x", 90, 110},
	}
	for _, c := range cases {
		if got := passphraseBits(c.p); got < c.min || got > c.max {
			t.Errorf("passphraseBits(%q) = %.1f, want %.0f–%.0f", c.p, got, c.min, c.max)
		}
	}
	if got := guessTime(passphraseBits("a")); got != "less than a second" {
		t.Errorf("guessTime for one letter = %q", got)
	}
	if got := guessTime(44); got != "28 years" {
		t.Errorf("guessTime(44) = %q", got)
	}
}
