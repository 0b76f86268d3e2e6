package sim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/sim/mobility"
)

// roomScenario: 30 people standing within reach of each other (one
// connected component), for a few simulated minutes.
func roomScenario() Scenario {
	sc := Default
	sc.Nodes, sc.Width, sc.Height, sc.Range = 30, 300, 300, 120
	sc.Mobility, sc.Duration, sc.TTL, sc.Messages = mobility.Static, 10*time.Minute, 5*time.Minute, 20
	sc.Loss = 0.02
	return sc
}

func TestGroupMessagesReachEveryMember(t *testing.T) {
	sc := roomScenario()
	sc.GroupSize, sc.Groups, sc.GroupMessages = 8, 2, 30
	r := run(t, sc)
	logTable(t, r)
	if r.GiantComponent != 1 {
		t.Fatalf("giant component %.2f: the scenario is not connected", r.GiantComponent)
	}
	g := r.Groups
	if g == nil || g.Messages != 30 || g.Recipients != 30*7 {
		t.Fatalf("groups: %+v", g)
	}
	if g.Delivered != g.Recipients || g.Complete != g.Messages {
		t.Errorf("group messages delivered %d of %d, %d complete of %d", g.Delivered, g.Recipients, g.Complete, g.Messages)
	}
	if g.Transmissions == 0 || g.LatencyP90 <= 0 || g.LatencyP90 > 60 {
		t.Errorf("groups: %d transmissions, latency p90 %v s", g.Transmissions, g.LatencyP90)
	}
}

// A channel post, stamped, reaches the channel's readers; with spammers
// pushing posts without stamps, no honest node stores one and the honest
// posts still arrive.
func TestChannelPostsAndSpam(t *testing.T) {
	sc := roomScenario()
	sc.ChannelPosts, sc.ChannelReaders = 20, 12
	quiet := run(t, sc)
	c := quiet.Channel
	if c == nil || c.Messages != 20 || c.Recipients != 20*11 || c.StampBits != SimStampBits {
		t.Fatalf("channel: %+v", c)
	}
	if c.Delivered != c.Recipients {
		t.Errorf("channel posts delivered %d of %d", c.Delivered, c.Recipients)
	}
	if quiet.Spam != nil {
		t.Errorf("spam reported without spammers: %+v", quiet.Spam)
	}
	sc.Spammers, sc.SpamRate = 2, 30
	noisy := run(t, sc)
	logTable(t, quiet, noisy)
	s := noisy.Spam
	if s == nil || s.Posts != 2*30*10 || s.Frames < int64(s.Posts) || s.LinkBytes == 0 {
		t.Fatalf("spam: %+v", s)
	}
	if s.Stored != 0 {
		t.Errorf("honest nodes stored %d spam posts", s.Stored)
	}
	if s.Dropped != s.Frames {
		t.Errorf("%d spam frames sent, %d dropped at ingest", s.Frames, s.Dropped)
	}
	if noisy.Channel.Delivered != noisy.Channel.Recipients || noisy.Delivered != quiet.Delivered {
		t.Errorf("with spam, channel posts delivered %d of %d and messages %d (without: %d)",
			noisy.Channel.Delivered, noisy.Channel.Recipients, noisy.Delivered, quiet.Delivered)
	}
}

// Room traffic replays byte for byte, and leaves the pairwise workload as
// it was: the same messages between the same contacts.
func TestRoomsDeterministic(t *testing.T) {
	sc := roomScenario()
	sc.Duration, sc.TTL = 4*time.Minute, 2*time.Minute
	plain := run(t, sc)
	sc.GroupSize, sc.GroupMessages, sc.ChannelPosts, sc.ChannelReaders, sc.SpamRate = 5, 10, 10, 8, 10
	out := func() []byte {
		b, err := json.Marshal(run(t, sc))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := out(), out()
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
	var r Result
	if err := json.Unmarshal(a, &r); err != nil {
		t.Fatal(err)
	}
	if r.Messages != plain.Messages || r.PairsConnected != plain.PairsConnected || r.Contacts != plain.Contacts {
		t.Errorf("room traffic moved the pairwise workload: %d messages, %.2f connected, %d contacts; without: %d, %.2f, %d",
			r.Messages, r.PairsConnected, r.Contacts, plain.Messages, plain.PairsConnected, plain.Contacts)
	}
	if r.Groups == nil || r.Channel == nil || r.Spam == nil {
		t.Errorf("room results missing: %s", a)
	}
}

func logTable(t *testing.T, rs ...*Result) {
	t.Helper()
	var b strings.Builder
	if err := WriteTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}
