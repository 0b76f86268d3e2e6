package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestQueueRunsInOrder: events run by virtual time, those at one time in
// the order they were scheduled, including events that schedule others
// (some at the current time, some in the past, which run now); the clock
// reads each event's time while it runs and the end after.
func TestQueueRunsInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var q queue
	type ran struct {
		at  time.Duration
		seq int
	}
	var got []ran
	n := 0
	var schedule func(at time.Duration, depth int)
	schedule = func(at time.Duration, depth int) {
		n++
		seq := n
		q.at(at, func() {
			if q.now != max(at, 0) && at >= q.now {
				t.Errorf("event for %s ran with the clock at %s", at, q.now)
			}
			got = append(got, ran{q.now, seq})
			if depth < 2 {
				for range r.IntN(3) {
					schedule(q.now+time.Duration(r.IntN(5)-1)*time.Second, depth+1)
				}
			}
		})
	}
	for range 2000 {
		schedule(time.Duration(r.IntN(100))*time.Second, 0)
	}
	q.run(60 * time.Second)
	if q.now != 60*time.Second {
		t.Fatalf("the clock reads %s after running to 60s", q.now)
	}
	left := len(q.heap)
	q.run(time.Hour)
	if len(got) != n || left == 0 {
		t.Fatalf("%d of %d events ran (%d left after the first minute)", len(got), n, left)
	}
	// Times never go back, and at one time the earlier scheduled runs first.
	if !slices.IsSortedFunc(got, func(a, b ran) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.seq - b.seq
	}) {
		t.Fatal("events ran out of order")
	}
}
