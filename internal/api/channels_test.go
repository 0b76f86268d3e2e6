package api

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// TestChannelEndpoints: Alice (behind the API) and Bob (in-process) share
// a channel over bundle files; the channel, Nearby, mute and announcement
// endpoints answer as the node does in-process, and refusals come back as
// the caller's errors with reasons.
func TestChannelEndpoints(t *testing.T) {
	const bits = 10 // cheap stamps
	f := newFixture(t)
	a, c := f.n, f.c
	dir := shortDir(t)
	bob := newNode(t, filepath.Join(dir, "bob"), "Bob")
	for _, n := range []*node.Node{a, bob} {
		if err := n.SetPublicPolicy(node.PublicPolicy{StampBits: bits}); err != nil {
			t.Fatal(err)
		}
	}
	fromBob := func() {
		t.Helper()
		p := filepath.Join(dir, "b.gvb")
		must(bob.Export(p))(t)
		must(c.ImportFile(ctx, p))(t)
	}

	joined := must(c.JoinChannel(ctx, "#Market", "", bits))(t)
	if joined.Name != "#market" || joined.Bits != bits || len(joined.Pseudonym) != 64 {
		t.Fatalf("JoinChannel = %+v", joined)
	}
	same(t, "Channels", must(c.Channels(ctx))(t), must(a.Channels())(t))
	must(bob.JoinChannel("#market", "", bits))(t)
	mine := must(c.PostChannel(ctx, "#market", "eggs at the well"))(t)
	if mine.Room != "#market" || mine.Poster != "me" || mine.Text != "eggs at the well" {
		t.Errorf("PostChannel = %+v", mine)
	}
	bp := must(bob.PostChannel(ctx, "#market", "rice for eggs?"))(t)
	fromBob()
	posts := must(c.ChannelPosts(ctx, "#market"))(t)
	same(t, "ChannelPosts", posts, must(a.ChannelMessages("#market"))(t))
	if len(posts) != 2 || posts[1].Text != bp.Text || posts[1].Poster == "me" {
		t.Fatalf("Alice reads %+v", posts)
	}
	poster := posts[1].Poster
	if err := c.MutePoster(ctx, poster, "mute"); err != nil {
		t.Fatal(err)
	}
	if ps := must(c.ChannelPosts(ctx, "#market"))(t); len(ps) != 1 {
		t.Errorf("after muting Bob: %+v", ps)
	}
	if ls := must(c.LatestPosts(ctx))(t); len(ls) != 1 || ls[0].Room != "#market" || ls[0].Posts != 1 || ls[0].Last.ID != mine.ID {
		t.Errorf("LatestPosts with Bob muted = %+v", ls)
	}
	if err := c.MutePoster(ctx, poster, ""); err != nil {
		t.Fatal(err)
	}
	if ps := must(c.ChannelPosts(ctx, "#market"))(t); len(ps) != 2 {
		t.Errorf("after unmuting Bob: %+v", ps)
	}

	same(t, "LatestPosts", must(c.LatestPosts(ctx))(t), must(a.LatestPosts())(t))
	if ls := must(c.LatestPosts(ctx))(t); len(ls) != 1 || ls[0].Posts != 2 || ls[0].Last.ID != posts[1].ID {
		t.Errorf("LatestPosts = %+v, want Bob's post the newest of 2", ls)
	}

	// Nearby: joined from the start, a post with a hop limit.
	np := must(c.PostNearby(ctx, "road to the school is open", 2, time.Hour))(t)
	if np.Room != "nearby" || time.Until(np.Expires) > time.Hour+time.Minute {
		t.Errorf("PostNearby = %+v", np)
	}
	if ps := must(c.ChannelPosts(ctx, "nearby"))(t); len(ps) != 1 || ps[0].ID != np.ID {
		t.Errorf("Nearby reads %+v", ps)
	}

	// Announcements: Alice's channel, Bob a delegate of it.
	ac := must(c.CreateAnnouncements(ctx, "clinic"))(t)
	if !ac.Mine || len(ac.Owner) != 64 {
		t.Fatalf("CreateAnnouncements = %+v", ac)
	}
	ap := must(c.Announce(ctx, "clinic", "open at nine"))(t)
	if ap.Text != "open at nine" {
		t.Errorf("Announce = %+v", ap)
	}
	key := must(bob.DelegateKey(ac.Owner))(t)
	d := must(c.Delegate(ctx, "clinic", key, time.Now().Add(time.Hour)))(t)
	if d == "" {
		t.Error("Delegate gave no delegation")
	}
	if err := c.FollowAnnouncements(ctx, ac.Owner, "clinic2"); err != nil {
		t.Error(err)
	}
	as := must(c.Announcements(ctx))(t)
	same(t, "Announcements", as, must(a.Announcements())(t))
	if len(as) != 2 || as[0] != ac || as[1] != (node.AnnouncementChannel{Name: "clinic2", Owner: ac.Owner}) {
		t.Errorf("Announcements = %+v", as)
	}
	if err := c.LeaveChannel(ctx, "#market"); err != nil {
		t.Fatal(err)
	}
	if cs := must(c.Channels(ctx))(t); len(cs) != 1 || cs[0].Name != "nearby" {
		t.Errorf("after leaving: %+v", cs)
	}

	refusals := []struct {
		name   string
		err    error
		status int
		reason string
		text   string
	}{
		{"leave a channel not joined", c.LeaveChannel(ctx, "#market"), 400, node.ReasonNoRoom, "not in channel #market"},
		{"leave Nearby", c.LeaveChannel(ctx, "nearby"), 400, "", ""},
		{"post to a channel not joined", second(c.PostChannel(ctx, "#market", "hi")), 400, node.ReasonNoRoom, ""},
		{"empty post", second(c.PostNearby(ctx, " ", 0, 0)), 400, node.ReasonInvalidText, "empty"},
		{"hop limit too high", second(c.PostNearby(ctx, "hi", 99, 0)), 400, node.ReasonInvalidSetting, "hop limit"},
		{"weak stamps", second(c.JoinChannel(ctx, "#x", "", 8)), 400, node.ReasonInvalidSetting, "below"},
		{"bad poster key", c.MutePoster(ctx, "abc", "block"), 400, node.ReasonInvalidName, "not a key"},
		{"bad mode", c.MutePoster(ctx, poster, "shun"), 400, "", "want mute, block or unmute"},
		{"missing name", second(c.JoinChannel(ctx, "", "", 0)), 400, "", `missing "name"`},
		{"missing channel", second(c.ChannelPosts(ctx, "")), 400, "", `missing query parameter "channel"`},
	}
	for _, r := range refusals {
		var ae *Error
		if !errors.As(r.err, &ae) || ae.Status != r.status || (r.reason != "" && ae.Reason != r.reason) || !strings.Contains(ae.Error(), r.text) {
			t.Errorf("%s: %#v, want %d %q saying %q", r.name, r.err, r.status, r.reason, r.text)
		}
	}
}
