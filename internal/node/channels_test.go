package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
)

// testBits is the stamp difficulty of these tests: cheap to mint, and
// well above what a random nonce meets by chance often.
const testBits = 10

// publicNode is a test node whose relays ask testBits of stamps.
func publicNode(t *testing.T, name string, clk *testClock, p PublicPolicy) *testNode {
	t.Helper()
	n := newTestNode(t, name, clk)
	if p.StampBits == 0 {
		p.StampBits = testBits
	}
	if err := n.SetPublicPolicy(p); err != nil {
		t.Fatal(err)
	}
	return n
}

func holds(t *testing.T, n *testNode, id envelope.ID) bool {
	t.Helper()
	for _, e := range mustEnvelopes(t, n) {
		if e.ID == id.String() {
			return true
		}
	}
	return false
}

func postTexts(t *testing.T, n *testNode, name string) []string {
	t.Helper()
	ps, err := n.ChannelMessages(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Text)
	}
	return out
}

func mustPost(t *testing.T, n *testNode, name, text string) PublicPost {
	t.Helper()
	p, err := n.PostChannel(context.Background(), name, text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forgePost seals a post in c as id, with a stamp of exactly the given
// difficulty or more (bits < 0: no stamp at all, a nonce that fails).
func forgePost(t *testing.T, c *room.Channel, id *keys.Identity, now time.Time, text string, bits int, rnd string) []byte {
	t.Helper()
	e, err := c.Seal(id, keys.PeriodOf(now), postContent(text), uint32(now.Add(24*time.Hour).Unix()), 5, bytes.NewReader(bytes.Repeat([]byte(rnd), 9)))
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Marshal()
	if bits >= 0 {
		if _, err := room.Mint(context.Background(), raw, bits); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for i := 0; ; i++ { // a nonce whose stamp fails testBits
		raw[6] = byte(i)
		if room.CheckStamp(raw, testBits) != nil {
			return raw
		}
	}
}

// TestRelayDropsPostsWithoutAValidStamp: a relay that reads none of the
// channels stores a well-stamped post and drops, before storing, a post
// with no stamp, with a stamp ground for another envelope, and with one
// too easy.
func TestRelayDropsPostsWithoutAValidStamp(t *testing.T) {
	clk := newTestClock()
	alice, relay := publicNode(t, "Alice", clk, PublicPolicy{}), publicNode(t, "Relay", clk, PublicPolicy{})
	if _, err := alice.JoinChannel("#rescue-kathmandu", "", testBits); err != nil {
		t.Fatal(err)
	}
	good := mustPost(t, alice, "#rescue-kathmandu", "water at the school")
	carry(t, alice, relay)
	gid, _ := envelope.ParseID(good.ID)
	if !holds(t, relay, gid) {
		t.Fatal("the relay dropped a well-stamped post")
	}
	c, err := room.JoinChannel("#rescue-kathmandu", "", testBits)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	unstamped := forgePost(t, c, alice.id, now, "spam 1", -1, "a")
	moved := forgePost(t, c, alice.id, now, "spam 2", -1, "b")
	donor := forgePost(t, c, alice.id, now, "spam 3", testBits, "c")
	copy(moved[6:14], donor[6:14])
	if room.CheckStamp(moved, testBits) == nil {
		t.Skip("the donor's nonce happens to stamp the other envelope too")
	}
	tooEasy := forgePost(t, c, alice.id, now, "spam 4", -1, "d")
	for room.CheckStamp(tooEasy, 2) != nil || room.CheckStamp(tooEasy, testBits) == nil { // easy, not hard enough
		tooEasy[13]++
	}
	rep, err := relay.IngestFrom("10.0.0.7:4000", [][]byte{unstamped, moved, tooEasy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unstamped != 3 || rep.New != 0 {
		t.Fatalf("relay report %+v, want 3 unstamped and nothing new", rep)
	}
	for _, raw := range [][]byte{unstamped, moved, tooEasy} {
		if holds(t, relay, envelope.ComputeID(raw)) {
			t.Fatal("the relay stored a post without a valid stamp")
		}
	}
	// A kind-0 envelope needs no stamp: unaffected (see the node's other tests).
}

// TestPosterFloodIsLimited: a relay that reads a channel keeps a
// pseudonym's first PseudonymBurst posts and drops the rest, while
// another poster's post still goes through; a link that hands over more
// stamped envelopes than LinkBurst has the rest dropped.
func TestPosterFloodIsLimited(t *testing.T) {
	clk := newTestClock()
	relay := publicNode(t, "Relay", clk, PublicPolicy{PseudonymBurst: 5, LinkBurst: 1000})
	if _, err := relay.JoinChannel("#market", "", testBits); err != nil {
		t.Fatal(err)
	}
	c, _ := room.JoinChannel("#market", "", testBits)
	spammer, honest := newTestNode(t, "Spammer", clk), newTestNode(t, "Honest", clk)
	var flood [][]byte
	for i := range 20 {
		flood = append(flood, forgePost(t, c, spammer.id, clk.Now(), fmt.Sprintf("buy %d", i), testBits, fmt.Sprint(i%10)+string(rune('a'+i))))
	}
	flood = append(flood, forgePost(t, c, honest.id, clk.Now(), "bridge is out", testBits, "h"))
	rep, err := relay.IngestFrom("10.0.0.9:1", flood, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != 6 || rep.Limited != 15 {
		t.Fatalf("report %+v: want 5 of the spammer's and the honest post kept, 15 limited", rep)
	}
	got := postTexts(t, relay, "#market")
	if len(got) != 6 || got[5] != "bridge is out" && !strings.Contains(strings.Join(got, "|"), "bridge is out") {
		t.Fatalf("relay reads %q", got)
	}
	// An hour later the spammer's bucket has refilled by PseudonymPerHour.
	clk.Advance(time.Hour)
	if rep, _ := relay.IngestFrom("10.0.0.9:1", [][]byte{forgePost(t, c, spammer.id, clk.Now(), "again", testBits, "z")}, nil); rep.New != 1 {
		t.Fatalf("after an hour: %+v", rep)
	}

	// Per link: a relay that reads no channel, and a link over its burst.
	other := publicNode(t, "Other", clk, PublicPolicy{LinkBurst: 8, LinkPerMinute: 1})
	var many [][]byte
	for i := range 12 {
		many = append(many, forgePost(t, c, honest.id, clk.Now(), fmt.Sprintf("post %d", i), testBits, string(rune('A'+i))))
	}
	rep, err = other.IngestFrom("10.0.0.10:1", many, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != 8 || rep.Limited != 4 {
		t.Fatalf("per link: %+v, want 8 kept and 4 limited", rep)
	}
	if rep, _ := other.IngestFrom("10.0.0.11:1", many[8:], nil); rep.New != 4 {
		t.Fatalf("another link is limited by the first's flood: %+v", rep)
	}
}

// TestChannelsAtTheNode: posts reach readers through a relay that is in
// no channel; a wrong password reads nothing; one identity's pseudonyms in
// two channels differ and are not its identity key; a channel joined late
// reads what is already carried; leaving stops reading.
func TestChannelsAtTheNode(t *testing.T) {
	clk := newTestClock()
	alice, relay, bob, eve := publicNode(t, "Alice", clk, PublicPolicy{}), publicNode(t, "Relay", clk, PublicPolicy{}),
		publicNode(t, "Bob", clk, PublicPolicy{}), publicNode(t, "Eve", clk, PublicPolicy{})
	one, err := alice.JoinChannel("#one", "pw", testBits)
	if err != nil {
		t.Fatal(err)
	}
	two, err := alice.JoinChannel("#two", "", testBits)
	if err != nil {
		t.Fatal(err)
	}
	if one.Pseudonym == two.Pseudonym || one.Pseudonym == hex.EncodeToString(alice.id.Sign.Public().(ed25519.PublicKey)) {
		t.Fatal("pseudonyms link")
	}
	if _, err := bob.JoinChannel("#ONE", "pw", testBits); err != nil {
		t.Fatal(err)
	}
	if _, err := eve.JoinChannel("#one", "wrong", testBits); err != nil {
		t.Fatal(err)
	}
	mustPost(t, alice, "#one", "hello one")
	mustPost(t, alice, "#two", "hello two")
	carry(t, alice, relay)
	carry(t, relay, bob)
	carry(t, relay, eve)
	if got := postTexts(t, bob, "#one"); len(got) != 1 || got[0] != "hello one" {
		t.Fatalf("Bob reads %q", got)
	}
	ps, _ := bob.ChannelMessages("#one")
	if ps[0].Poster != one.Pseudonym {
		t.Fatalf("poster %s, want Alice's pseudonym %s", ps[0].Poster, one.Pseudonym)
	}
	if got := postTexts(t, eve, "#one"); len(got) != 0 {
		t.Fatalf("a wrong password reads %q", got)
	}
	if _, err := bob.JoinChannel("#two", "", testBits); err != nil { // joined late: reads what is carried
		t.Fatal(err)
	}
	ps, _ = bob.ChannelMessages("#two")
	if len(ps) != 1 || ps[0].Poster != two.Pseudonym || ps[0].Poster == one.Pseudonym {
		t.Fatalf("Bob reads in #two %+v", ps)
	}
	if err := bob.LeaveChannel("#one"); err != nil {
		t.Fatal(err)
	}
	mustPost(t, alice, "#one", "second")
	carry(t, alice, bob)
	if got := postTexts(t, bob, "#one"); len(got) != 1 {
		t.Fatalf("after leaving, Bob reads %q", got)
	}
	bob.reopen()
	if cs, err := bob.Channels(); err != nil || len(cs) != 2 || cs[0].Name != "nearby" || cs[1].Name != "#two" {
		t.Fatalf("after a restart: %+v, %v", cs, err)
	}
}

// TestNearbyHopLimit: a Nearby post with hop limit h reaches the nodes h
// hops away along a line and not the node h+1 hops away, for h = 2 and 3;
// a relay holds a Nearby copy handed over with a larger budget to
// NearbyMaxHops, and refuses one that would live longer than
// NearbyMaxLifetime.
func TestNearbyHopLimit(t *testing.T) {
	for _, h := range []int{2, 3} {
		t.Run(fmt.Sprint(h), func(t *testing.T) {
			clk := newTestClock()
			var line []*testNode
			for i := range h + 2 {
				line = append(line, publicNode(t, fmt.Sprintf("N%d", i), clk, PublicPolicy{}))
			}
			if _, err := line[0].PostNearby(context.Background(), "anyone at the bridge?", h, 0); err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(line); i++ {
				carry(t, line[i], line[i+1])
			}
			for i, n := range line[1:] {
				got := postTexts(t, n, "nearby")
				if reached := len(got) == 1; reached != (i+1 <= h) {
					t.Fatalf("hop limit %d: node %d hops away reads %q", h, i+1, got)
				}
			}
		})
	}
	clk := newTestClock()
	relay := publicNode(t, "Relay", clk, PublicPolicy{})
	w := newTestNode(t, "Writer", clk)
	now := clk.Now()
	e, err := room.Nearby().Seal(w.id, keys.PeriodOf(now), postContent("far"), uint32(now.Add(time.Hour).Unix()), 12, bytes.NewReader(make([]byte, 9)))
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Marshal()
	room.Mint(context.Background(), raw, testBits)
	long, _ := room.Nearby().Seal(w.id, keys.PeriodOf(now), postContent("long"), uint32(now.Add(24*time.Hour).Unix()), 2, bytes.NewReader(bytes.Repeat([]byte{1}, 9)))
	lraw := long.Marshal()
	room.Mint(context.Background(), lraw, testBits)
	rep, err := relay.IngestFrom("10.0.0.1:1", [][]byte{raw, lraw}, nil)
	if err != nil || rep.New != 1 || rep.Clamped != 1 || rep.Invalid != 1 {
		t.Fatalf("%+v, %v", rep, err)
	}
	for _, info := range mustEnvelopes(t, relay) {
		if info.Hops > room.NearbyMaxHops {
			t.Fatalf("a Nearby copy held with %d hops", info.Hops)
		}
	}
	// A neighbour announcing a larger budget for its copy (a Have, SPEC
	// §12.2) raises the held copy's through the same caps: this one is
	// held at its cap already. An envelope not held is not raised.
	id := envelope.ComputeID(raw)
	if n, err := relay.Raise([]envelope.ID{id, {1}}, []uint8{200, 200}); err != nil || n != 0 {
		t.Fatalf("raised %d (%v), want none", n, err)
	}
	if !relay.Redundant(id, room.NearbyMaxHops) || relay.Redundant(id, room.NearbyMaxHops+1) {
		t.Fatal("a Nearby post's budget was raised past its cap")
	}
}

// TestAnnouncements: followers read the owner's and a delegate's
// announcements through a relay that follows nothing; an announcement
// forged by someone else under the owner's key is dropped by the relay
// before it is stored.
func TestAnnouncements(t *testing.T) {
	clk := newTestClock()
	clinic, relay, bob, carol := publicNode(t, "Clinic", clk, PublicPolicy{}), publicNode(t, "Relay", clk, PublicPolicy{}),
		publicNode(t, "Bob", clk, PublicPolicy{}), publicNode(t, "Carol", clk, PublicPolicy{})
	ch, err := clinic.CreateAnnouncements("clinic")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.FollowAnnouncements(ch.Owner, "clinic"); err != nil {
		t.Fatal(err)
	}
	if _, err := clinic.Announce(context.Background(), "clinic", "open 8-12 tomorrow"); err != nil {
		t.Fatal(err)
	}
	key, err := carol.DelegateKey(ch.Owner)
	if err != nil {
		t.Fatal(err)
	}
	d, err := clinic.Delegate("clinic", key, clk.Now().Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.AnnounceAs(context.Background(), d, "vaccines on friday"); err != nil {
		t.Fatal(err)
	}
	// Mallory signs an announcement with her own key under the clinic's owner key.
	o, _ := parseKey(ch.Owner)
	mallory := room.Owner(newTestNode(t, "Mallory", clk).id, "x")
	good, err := room.Announce(pubOf(mallory), mallory, nil, keys.PeriodOf(clk.Now()), postContent("clinic closed forever"), clinic.envelopeExpiry(), 8)
	if err != nil {
		t.Fatal(err)
	}
	forged := *good
	forged.Body = append(append([]byte{}, o[:]...), good.Body[32:]...) // the clinic's key, Mallory's signature
	forged.Tag = room.AnnounceTag(o, keys.PeriodOf(clk.Now()))
	fraw := forged.Marshal()
	room.Mint(context.Background(), fraw, testBits)
	rep, err := relay.IngestFrom("10.0.0.5:1", [][]byte{fraw}, nil)
	if err != nil || rep.New != 0 || rep.Invalid != 1 || holds(t, relay, envelope.ComputeID(fraw)) {
		t.Fatalf("forged announcement: %+v, %v", rep, err)
	}
	carry(t, clinic, relay)
	carry(t, carol, relay)
	rep = carry(t, relay, bob).IngestReport
	got := postTexts(t, bob, "announce:clinic")
	if len(got) != 2 || rep.Invalid != 0 {
		t.Fatalf("Bob reads %q (%+v)", got, rep)
	}
	if _, err := bob.IngestFrom("10.0.0.5:1", [][]byte{fraw}, nil); err != nil {
		t.Fatal(err)
	}
	if got := postTexts(t, bob, "announce:clinic"); len(got) != 2 {
		t.Fatalf("Bob reads a forgery: %q", got)
	}
}

// TestMuteAndBlock: a muted poster's posts are hidden but carried; a
// blocked poster's later posts are neither shown nor carried; unmute
// shows the muted posts again.
func TestMuteAndBlock(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol := publicNode(t, "Alice", clk, PublicPolicy{}), publicNode(t, "Bob", clk, PublicPolicy{}), publicNode(t, "Carol", clk, PublicPolicy{})
	var pa, pc string
	for _, n := range []*testNode{alice, bob, carol} {
		info, err := n.JoinChannel("#street", "", testBits)
		if err != nil {
			t.Fatal(err)
		}
		switch n {
		case alice:
			pa = info.Pseudonym
		case carol:
			pc = info.Pseudonym
		}
	}
	a := mustPost(t, alice, "#street", "hello from alice")
	mustPost(t, carol, "#street", "hello from carol")
	carry(t, alice, bob)
	carry(t, carol, bob)
	if err := bob.Mute(pa); err != nil {
		t.Fatal(err)
	}
	if got := postTexts(t, bob, "#street"); len(got) != 1 || got[0] != "hello from carol" {
		t.Fatalf("after mute: %q", got)
	}
	aid, _ := envelope.ParseID(a.ID)
	if !holds(t, bob, aid) {
		t.Fatal("a muted post is no longer carried")
	}
	if err := bob.Block(pc); err != nil {
		t.Fatal(err)
	}
	c2 := mustPost(t, carol, "#street", "spam spam")
	carry(t, carol, bob)
	cid, _ := envelope.ParseID(c2.ID)
	if holds(t, bob, cid) {
		t.Fatal("a blocked poster's post is carried")
	}
	bob.reopen() // mutes and blocks are stored
	if got := postTexts(t, bob, "#street"); len(got) != 0 {
		t.Fatalf("after a restart, muted and blocked posters show: %q", got)
	}
	if err := bob.Unmute(strings.ToUpper(pa)); err != nil {
		t.Fatal(err)
	}
	if got := postTexts(t, bob, "#street"); len(got) != 1 || got[0] != "hello from alice" {
		t.Fatalf("after unmute and block: %q", got)
	}
}

// TestReadersHoldAChannelToItsDifficulty: a channel that asks more than the
// relays' floor gets posts stamped at the floor carried by relays (they
// cannot know the channel) and dropped by its readers, who show none.
func TestReadersHoldAChannelToItsDifficulty(t *testing.T) {
	clk := newTestClock()
	relay, bob := publicNode(t, "Relay", clk, PublicPolicy{}), publicNode(t, "Bob", clk, PublicPolicy{})
	if _, err := bob.JoinChannel("#hard", "", testBits+3); err != nil {
		t.Fatal(err)
	}
	c, _ := room.JoinChannel("#hard", "", testBits+3)
	w := newTestNode(t, "Writer", clk)
	weak := forgePost(t, c, w.id, clk.Now(), "cheap", testBits, "w")
	for i := 0; room.CheckStamp(weak, testBits+3) == nil; i++ { // at the floor, below the channel's
		weak = forgePost(t, c, w.id, clk.Now(), "cheap", testBits, fmt.Sprint(i))
	}
	strong := forgePost(t, c, w.id, clk.Now(), "paid", testBits+3, "s")
	if rep, err := relay.IngestFrom("10.0.0.2:1", [][]byte{weak, strong}, nil); err != nil || rep.New != 2 {
		t.Fatalf("relay: %+v, %v", rep, err)
	}
	rep, err := bob.IngestFrom("10.0.0.3:1", [][]byte{weak, strong}, nil)
	if err != nil || rep.New != 1 || rep.Unstamped != 1 {
		t.Fatalf("reader: %+v, %v", rep, err)
	}
	if got := postTexts(t, bob, "#hard"); len(got) != 1 || got[0] != "paid" {
		t.Fatalf("Bob reads %q", got)
	}
}
