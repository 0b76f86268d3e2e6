package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/store"
)

// The node's clock (SPEC §4.5). Every decision that depends on time — which
// period to send in, which tags to watch, when keys are forgotten, when
// envelopes expire — is taken on a *trusted* time, never on the raw wall
// clock, so that a wrong clock (a Raspberry Pi without a real-time clock
// booting in 1970, a clock set a year ahead by mistake, and corrected
// later) can neither destroy keys nor leave chains where nothing gets
// through.
//
// The last trusted time is kept in the store. A wall-clock reading is
// trusted when it is no earlier than the last trusted time (less
// ClockSlack) and no later than it plus the time that has really passed
// since (measured on the monotonic clock while the node runs) plus
// MaxClockJump. Otherwise the node keeps to its own estimate — the last
// trusted time plus the time that has passed — and reports the disagreement
// (Stats.Clock) until the wall clock agrees again or the user confirms it
// (TrustClock).
const (
	// ClockSlack absorbs small corrections (NTP stepping a clock back).
	ClockSlack = time.Hour
	// MaxClockJump is how far the wall clock may run ahead of the estimate
	// across a restart (a device switched off for weeks) and still be
	// trusted without confirmation.
	MaxClockJump = 30 * 24 * time.Hour
)

// clockFloor is the earliest time a clock is believed at all: a node that
// starts for the first time with its clock before it keeps to this instead.
var clockFloor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu      sync.Mutex
	wall    func() time.Time
	elapsed func() time.Duration // monotonic time since start; nil: trust the injected wall clock's progress
	last    time.Time            // last trusted time
	since   time.Duration        // elapsed at last
	wallAt  time.Time            // wall reading at last, when elapsed is nil
	warning string               // why the wall clock is not trusted now
	saved   time.Time            // last value written to the store
	started bool                 // before start (loading the home), the wall clock is taken as it is
}

func newClock(wall func() time.Time, elapsed func() time.Duration) *clock {
	return &clock{wall: wall, elapsed: elapsed}
}

// start sets the clock from the persisted last trusted time. A home with
// none (a new one) trusts the wall clock if it reads no earlier than
// clockFloor.
func (c *clock) start(last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.wall()
	if last.IsZero() {
		last = later(w, clockFloor)
	}
	c.last, c.saved, c.started = later(last, clockFloor), last, true
	c.since, c.wallAt = c.sinceStart(), w
	c.judge(w, true)
}

func (c *clock) sinceStart() time.Duration {
	if c.elapsed == nil {
		return 0
	}
	return c.elapsed()
}

// estimate is the last trusted time plus what has passed since.
func (c *clock) estimate(w time.Time) time.Time {
	if c.elapsed == nil {
		if d := w.Sub(c.wallAt); d > 0 {
			return c.last.Add(d)
		}
		return c.last
	}
	return c.last.Add(c.sinceStart() - c.since)
}

// judge decides whether the wall reading w is trusted. While the node
// runs, the wall clock must follow the monotonic clock to within
// ClockSlack; at start it may be up to MaxClockJump ahead of the last
// trusted time (the node was off), never before it.
func (c *clock) judge(w time.Time, atStart bool) time.Time {
	est := c.estimate(w)
	limit := est.Add(ClockSlack)
	if atStart {
		limit = c.last.Add(MaxClockJump)
	}
	switch {
	case w.Before(c.last.Add(-ClockSlack)):
		c.warning = fmt.Sprintf("the clock reads %s, before the last trusted time %s: keeping to %s",
			w.UTC().Format(time.DateTime), c.last.UTC().Format(time.DateTime), est.UTC().Format(time.DateTime))
		return est
	case w.After(limit):
		c.warning = fmt.Sprintf("the clock reads %s, %s ahead of the trusted time %s: keeping to the trusted time",
			w.UTC().Format(time.DateTime), w.Sub(est).Round(time.Minute), est.UTC().Format(time.DateTime))
		return est
	}
	c.warning = ""
	c.last, c.since, c.wallAt = w, c.sinceStart(), w
	return w
}

// now is the trusted time.
func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return c.wall()
	}
	return c.judge(c.wall(), false)
}

// trust accepts the wall clock as it reads now.
func (c *clock) trust() {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.wall()
	c.last, c.since, c.wallAt, c.warning = w, c.sinceStart(), w, ""
}

// status returns the warning, if the wall clock is not trusted now.
func (c *clock) status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.judge(c.wall(), false)
	return c.warning
}

// due returns the last trusted time if it moved on by at least d since it
// was last written (or went back, after trust).
func (c *clock) due(d time.Duration) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.started && (c.last.Sub(c.saved) >= d || c.last.Before(c.saved))
}

func (c *clock) wrote(t time.Time) {
	c.mu.Lock()
	c.saved = t
	c.mu.Unlock()
}

// putClock writes the last trusted time in a transaction that writes anyway.
func putClock(tx *store.Tx, t time.Time) error {
	return putJSON(tx, colSelf, []byte("clock"), t.UTC(), store.Forever)
}

func loadClock(tx *store.Tx) (time.Time, error) {
	var t time.Time
	_, err := getJSON(tx, colSelf, []byte("clock"), &t)
	return t, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
