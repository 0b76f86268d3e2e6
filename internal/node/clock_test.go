package node

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/store"
)

// skewed is a device clock that reads real time plus an error the test
// sets, with a monotonic clock that never jumps (time since the process
// started, as time.Since gives it).
type skewed struct {
	real  *testClock
	skew  time.Duration
	start time.Time
}

func (s *skewed) Now() time.Time          { return s.real.Now().Add(s.skew) }
func (s *skewed) Elapsed() time.Duration  { return s.real.Now().Sub(s.start) }
func (s *skewed) restart()                { s.start = s.real.Now() }
func (s *skewed) set(to time.Time)        { s.skew = to.Sub(s.real.Now()) }
func (s *skewed) opts() Options           { return Options{Now: s.Now, Elapsed: s.Elapsed, KDF: store.TestKDF()} }
func newSkewed(real *testClock) *skewed   { return &skewed{real: real, start: real.Now()} }
func (tn *testNode) clockWarning() string { st, _ := tn.Stats(); return st.Clock }
func (tn *testNode) reopenWith(o Options) {
	tn.t.Helper()
	tn.Close()
	tn.Node = mustOpenNode(tn.t, tn.home, tn.id.Name, o)
}
func mustOpenNode(t testing.TB, home, name string, o Options) *Node {
	t.Helper()
	n, err := Open(home, []byte("pw-"+name), o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// exchange checks that a and b still reach each other both ways.
func exchange(t *testing.T, a, b *testNode, what string) {
	t.Helper()
	for _, w := range []struct{ from, to *testNode }{{a, b}, {b, a}} {
		text := what + ": " + w.from.id.Name + " to " + w.to.id.Name
		mustSend(t, w.from, w.to.id.Name, text)
		carry(t, w.from, w.to)
		carry(t, w.to, w.from)
		if !hasMessage(t, w.to, text) {
			t.Fatalf("%s: %q did not arrive (clock warning: %q)", what, text, w.from.clockWarning())
		}
	}
}

// TestClockErrorsDestroyNothing (claim S5): Alice's device clock goes to
// 1969, a year ahead and back, ten years ahead across a restart. Each time
// the node warns, keeps to its trusted time, loses no contact and no key,
// and messages keep flowing. Only a wrong clock the user explicitly
// trusts moves the keys; a re-key repairs that without meeting again.
func TestClockErrorsDestroyNothing(t *testing.T) {
	real := newTestClock()
	sk := newSkewed(real)
	home := filepath.Join(t.TempDir(), "Alice")
	n, err := Init(home, []byte("pw-Alice"), "Alice", DefaultConfig, sk.opts())
	if err != nil {
		t.Fatal(err)
	}
	alice := &testNode{Node: n, t: t, home: home, clk: real}
	t.Cleanup(func() { alice.Close() })
	bob := newTestNode(t, "Bob", real)
	befriend(t, alice, bob)
	exchange(t, alice, bob, "correct clock")
	if w := alice.clockWarning(); w != "" {
		t.Fatalf("a correct clock warns: %s", w)
	}

	sk.set(time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC))
	if w := alice.clockWarning(); !strings.Contains(w, "before the last trusted time") {
		t.Fatalf("a clock in 1969: warning %q", w)
	}
	if err := alice.Maintain(); err != nil {
		t.Fatal(err)
	}
	exchange(t, alice, bob, "clock in 1969")
	sk.restart()
	alice.reopenWith(sk.opts())
	if alice.clockWarning() == "" {
		t.Fatal("no warning after a restart in 1969")
	}
	exchange(t, alice, bob, "restarted in 1969")

	real.Advance(time.Hour)
	sk.set(real.Now().AddDate(1, 0, 0))
	if w := alice.clockWarning(); !strings.Contains(w, "ahead of the trusted time") {
		t.Fatalf("a clock a year ahead: warning %q", w)
	}
	alice.Maintain()
	exchange(t, alice, bob, "a year ahead")
	sk.set(real.Now()) // corrected
	if w := alice.clockWarning(); w != "" {
		t.Fatalf("the corrected clock still warns: %s", w)
	}
	exchange(t, alice, bob, "corrected")

	sk.set(real.Now().AddDate(10, 0, 0))
	sk.restart()
	alice.reopenWith(sk.opts())
	if alice.clockWarning() == "" {
		t.Fatal("no warning after a restart ten years ahead")
	}
	exchange(t, alice, bob, "restarted ten years ahead")
	if s := contactState(t, alice, "Bob"); s != StateActive {
		t.Fatalf("Bob is %s", s)
	}

	// The user trusts the wrong clock: now the keys move a year on, and
	// Bob no longer recognises what Alice writes. Once the clock is right
	// again (and trusted), a re-key repairs the contact.
	sk.set(real.Now().AddDate(1, 0, 0))
	if err := alice.TrustClock(); err != nil {
		t.Fatal(err)
	}
	alice.Maintain()
	mustSend(t, alice, "Bob", "from a trusted wrong clock")
	carry(t, alice, bob)
	if hasMessage(t, bob, "from a trusted wrong clock") {
		t.Fatal("control: a message sealed a year ahead was recognised")
	}
	sk.set(real.Now())
	if err := alice.TrustClock(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Rekey("Bob"); err != nil {
		t.Fatal(err)
	}
	carry(t, alice, bob)
	if _, err := bob.Accept("Alice"); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, alice)
	exchange(t, alice, bob, "after the re-key")
}
