package main

// The progress bar of export and import: a bundle with files in it can be
// tens of MB, written to or read from a slow USB stick, and a silent
// terminal for a minute looks like a hang. Drawn on stderr, and only when
// stderr is a terminal, so scripts and --json see exactly what they did.

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// redrawEvery bounds how often the bar is redrawn while its percentage
// stays: progress comes per envelope, thousands a second, and a terminal
// need not show each. A new percentage is drawn at once (at most 100 times).
const redrawEvery = 100 * time.Millisecond

// progressBar draws node.Progress as one line, redrawn in place.
type progressBar struct {
	w     io.Writer
	verb  string // "Exporting", "Importing"
	start time.Time
	drawn time.Time // when it was last drawn
	pct   int       // the percentage drawn
	open  bool      // drawn, and not yet at its end
}

// progress returns the function that draws an export's or import's
// progress on stderr, or nil when stderr is not a terminal; and end, to be
// called when it is over, which ends a bar that an error cut short, so that
// the error is printed on a line of its own.
func (c *cli) progress(verb string) (show func(node.Progress), end func()) {
	if !isTerminal(c.stderr) {
		return nil, func() {}
	}
	b := &progressBar{w: c.stderr, verb: verb, start: time.Now()}
	return b.show, b.end
}

func (b *progressBar) show(p node.Progress) {
	now := time.Now()
	pct := p.Percent()
	if !p.Done && b.open && pct == b.pct && now.Sub(b.drawn) < redrawEvery {
		return
	}
	b.drawn, b.pct, b.open = now, pct, !p.Done
	// \r back to the line's start, \x1b[K clears what a longer line left.
	fmt.Fprintf(b.w, "\r%s\x1b[K", progressLine(b.verb, p, now.Sub(b.start)))
	if p.Done {
		fmt.Fprintln(b.w)
	}
}

func (b *progressBar) end() {
	if b.open {
		fmt.Fprintln(b.w)
		b.open = false
	}
}

// progressLine says how far p has come after elapsed: a bar of the bytes,
// the percentage, the envelopes (of how many, when known), the bytes of
// their total and the rate.
func progressLine(verb string, p node.Progress, elapsed time.Duration) string {
	pct := p.Percent()
	envs := fmt.Sprintf("%d envelopes", p.Envelopes)
	if p.TotalEnvelopes > 0 {
		envs = fmt.Sprintf("%d of %d envelopes", p.Envelopes, p.TotalEnvelopes)
	}
	rate := "—"
	if s := elapsed.Seconds(); s > 0 {
		rate = bytesText(int64(float64(p.Bytes)/s)) + "/s"
	}
	return strings.Join([]string{verb, bar(pct, 100), fmt.Sprintf("%3d %%", pct), envs,
		bytesText(p.Bytes) + " of " + bytesText(p.TotalBytes), rate}, "  ")
}
