package sim

// Room traffic (SPEC §15): private groups, one public channel, and spam
// from hostile nodes that will not pay for stamps. The groups and the
// channel are the node's own (CreateRoom, InviteToRoom, JoinRoom,
// SendRoom; PostChannel with a real stamp); only the setup happens out of
// band, before time zero, like the contacts' meetings.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/session"
)

// SimStampBits is the simulator's default channel difficulty: 2^12 hashes
// (about a millisecond) a post instead of the default 2^21 (about 0.2 s
// here, a second on a phone), so that thousands of posts mint in seconds.
// It is the channel's own cost (SPEC §15.12), and every simulated node's
// relay floor: relays still check every stamp against it.
const SimStampBits = 12

// simChannel is the public channel's name.
const simChannel = "#sim"

// Kinds of message the simulator follows.
const (
	kindPairwise = iota
	kindGroup
	kindPost
	kindSpam
)

// maxSpamRate bounds --spam-rate: a hundred posts a second per spammer.
const maxSpamRate = 6000

type simGroup struct {
	id      string // the group ID in hex
	members []int  // the admin first
}

// roomState is what the engine knows of room traffic.
type roomState struct {
	groups   []simGroup
	channel  *room.Channel
	readers  []int // of the channel, ascending
	spammer  []bool
	spammers []int
	spamBody int // an honest post's body size: spam looks the same
	// Independent random streams, so that groups, the channel and spam do
	// not move the pairwise workload or each other.
	groupRand, postRand, spamRand *rand.Rand
}

func (s Scenario) channelBits() int {
	if s.ChannelBits == 0 {
		return SimStampBits
	}
	return s.ChannelBits
}

// hasRooms says whether the scenario has room traffic.
func (s Scenario) hasRooms() bool { return s.GroupSize > 0 || s.ChannelPosts > 0 || s.SpamRate > 0 }

func (s Scenario) validateRooms() error {
	switch {
	case s.GroupSize < 0 || s.GroupSize == 1 || s.GroupSize > min(s.Nodes, room.MaxMembers):
		return fmt.Errorf("group-size: %d, must be 0 (no groups) or 2 to %d", s.GroupSize, min(s.Nodes, room.MaxMembers))
	case s.GroupSize > 0 && (s.Groups < 1 || s.Groups > 1000):
		return fmt.Errorf("groups: %d, must be 1 to 1000", s.Groups)
	case s.GroupMessages < 0:
		return fmt.Errorf("group-messages: %d, must not be negative", s.GroupMessages)
	case s.ChannelPosts < 0:
		return fmt.Errorf("channel-posts: %d, must not be negative", s.ChannelPosts)
	case s.ChannelReaders < 0 || s.ChannelReaders == 1 || s.ChannelReaders > s.Nodes:
		return fmt.Errorf("channel-readers: %d, must be 0 (every node) or 2 to %d", s.ChannelReaders, s.Nodes)
	case s.channelBits() < room.MinStampBits || s.channelBits() > room.MaxStampBits:
		return fmt.Errorf("channel-bits: %d, must be %d to %d", s.ChannelBits, room.MinStampBits, room.MaxStampBits)
	case s.SpamRate < 0 || s.SpamRate > maxSpamRate:
		return fmt.Errorf("spam-rate: %g posts a minute, must be 0 to %d", s.SpamRate, maxSpamRate)
	case s.SpamRate > 0 && (s.Spammers < 1 || s.Spammers > s.Nodes):
		return fmt.Errorf("spammers: %d, must be 1 to %d", s.Spammers, s.Nodes)
	}
	return nil
}

// setupRooms makes the groups, joins the channel and picks the spammers,
// on the setup clock (before time zero). contacts holds the contact pairs
// made so far; group admins meet members they do not know yet.
func (e *engine) setupRooms(contacts map[[2]int32]bool) error {
	sc := e.sc
	r := &roomState{
		groupRand: rand.New(rand.NewPCG(sc.Seed, 4)),
		postRand:  rand.New(rand.NewPCG(sc.Seed, 5)),
		spamRand:  rand.New(rand.NewPCG(sc.Seed, 6)),
	}
	e.rooms = r
	if sc.ChannelPosts > 0 || sc.SpamRate > 0 {
		for i, sn := range e.nodes {
			if err := sn.n.SetPublicPolicy(node.PublicPolicy{StampBits: sc.channelBits()}); err != nil {
				return fmt.Errorf("failed to set node %d's stamp floor: %w", i, err)
			}
		}
		c, err := room.JoinChannel(simChannel, "", sc.channelBits()) // one Argon2id for every reader
		if err != nil {
			return err
		}
		r.channel = c
		if r.spamBody, err = postBodySize(c, sc.Size, sc.Seed); err != nil {
			return err
		}
	}
	if sc.GroupSize > 0 {
		for g := range sc.Groups {
			if err := e.setupGroup(g, contacts); err != nil {
				return err
			}
		}
		e.res.Groups = &RoomTraffic{Rooms: sc.Groups, Members: sc.GroupSize}
	}
	if sc.ChannelPosts > 0 {
		r.readers = make([]int, sc.Nodes)
		for i := range r.readers {
			r.readers[i] = i
		}
		if sc.ChannelReaders > 0 {
			r.readers = r.postRand.Perm(sc.Nodes)[:sc.ChannelReaders]
			slices.Sort(r.readers)
		}
		k := r.channel.Keys()
		for _, i := range r.readers {
			if err := e.nodes[i].n.JoinDerivedChannel(k); err != nil {
				return fmt.Errorf("node %d failed to join the channel: %w", i, err)
			}
		}
		e.res.Channel = &RoomTraffic{Members: len(r.readers), StampBits: sc.channelBits()}
	}
	if sc.SpamRate > 0 {
		r.spammer = make([]bool, sc.Nodes)
		r.spammers = r.spamRand.Perm(sc.Nodes)[:sc.Spammers]
		slices.Sort(r.spammers)
		for _, i := range r.spammers {
			r.spammer[i] = true
		}
		e.res.Spam = &SpamResult{Spammers: sc.Spammers, Rate: sc.SpamRate}
	}
	return nil
}

// postBodySize is the body size of an honest post of size text bytes.
func postBodySize(c *room.Channel, size int, seed uint64) (int, error) {
	src := rand.NewChaCha8(seedFor(seed, -1))
	id, err := keys.NewIdentity("size", src)
	if err != nil {
		return 0, err
	}
	content := append([]byte{byte(node.TypeText)}, strings.Repeat("x", size)...)
	env, err := c.Seal(id, 0, content, 0, 1, src)
	if err != nil {
		return 0, err
	}
	return len(env.Body), nil
}

// setupGroup creates group g as the node does it: a random admin creates
// it and invites the other members one after another; each joins, and the
// admin's welcomes of each new epoch go to every member so far. Every
// envelope is handed over directly, in the order it was made.
func (e *engine) setupGroup(g int, contacts map[[2]int32]bool) error {
	sc := e.sc
	members := e.rooms.groupRand.Perm(sc.Nodes)[:sc.GroupSize]
	admin := e.nodes[members[0]]
	for _, m := range members[1:] {
		p := [2]int32{int32(min(members[0], m)), int32(max(members[0], m))}
		if contacts[p] {
			continue
		}
		if err := e.meet(members[0], m); err != nil {
			return err
		}
		contacts[p] = true
	}
	info, err := admin.n.CreateRoom("group" + strconv.Itoa(g))
	if err != nil {
		return fmt.Errorf("failed to create group %d: %w", g, err)
	}
	seen := map[envelope.ID]bool{}
	ownSince(admin.n, seen)
	fail := func(err error) error { return fmt.Errorf("failed to set up group %d: %w", g, err) }
	for j, m := range members[1:] {
		sn := e.nodes[m]
		if err := admin.n.InviteToRoom(info.ID, sn.name); err != nil {
			return fail(err)
		}
		if err := give(admin.n, sn.n, ownSince(admin.n, seen)); err != nil {
			return fail(err)
		}
		if err := sn.n.JoinRoom(info.ID); err != nil {
			return fail(err)
		}
		if err := handOver(sn.n, admin.n); err != nil {
			return err
		}
		welcomes := ownSince(admin.n, seen)
		for _, x := range members[1 : j+2] {
			if err := give(admin.n, e.nodes[x].n, welcomes); err != nil {
				return fail(err)
			}
		}
	}
	for _, m := range members {
		ri, err := e.nodes[m].n.Room(info.ID)
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", m, err))
		}
		if len(ri.Members) != sc.GroupSize {
			return fail(fmt.Errorf("node %d sees %d members of %d", m, len(ri.Members), sc.GroupSize))
		}
	}
	e.rooms.groups = append(e.rooms.groups, simGroup{id: info.ID, members: members})
	return nil
}

// ownSince returns the envelopes of n's own outbox not in seen, and adds
// them to it.
func ownSince(n *node.Node, seen map[envelope.ID]bool) []envelope.ID {
	var ids []envelope.ID
	for _, h := range n.Inventory() {
		if h.Own && !seen[h.ID] {
			seen[h.ID] = true
			ids = append(ids, h.ID)
		}
	}
	return ids
}

// startRooms schedules the room workload: group messages and channel
// posts at random times in the send window, spam throughout the run.
func (e *engine) startRooms() {
	sc, r := e.sc, e.rooms
	window := sc.sendUntil()
	times := func(rng *rand.Rand, n int, span time.Duration) []time.Duration {
		ts := make([]time.Duration, n)
		for i := range ts {
			ts[i] = time.Duration(rng.Int64N(int64(span)))
		}
		slices.Sort(ts)
		return ts
	}
	if len(r.groups) > 0 {
		for _, t := range times(r.groupRand, sc.GroupMessages, window) {
			g := r.groups[r.groupRand.IntN(len(r.groups))]
			from := g.members[r.groupRand.IntN(len(g.members))]
			e.q.at(t, func() { e.sendGroup(g, from) })
		}
	}
	if sc.ChannelPosts > 0 {
		for _, t := range times(r.postRand, sc.ChannelPosts, window) {
			from := r.readers[r.postRand.IntN(len(r.readers))]
			e.q.at(t, func() { e.post(from) })
		}
	}
	if sc.SpamRate > 0 {
		per := int(sc.SpamRate*sc.Duration.Minutes() + 0.5)
		for _, s := range r.spammers {
			for _, t := range times(r.spamRand, per, sc.Duration) {
				e.q.at(t, func() { e.spam(s) })
			}
		}
	}
}

// track follows a room message: readers are those who should read it.
func (e *engine) track(raw string, kind uint8, readers []int, from int) *message {
	id, err := envelope.ParseID(raw)
	if err != nil {
		e.fail(err)
		return nil
	}
	m := &message{kind: kind, to: -1, sent: e.q.now, waiting: map[int32]bool{}}
	for _, i := range readers {
		if i != from {
			m.waiting[int32(i)] = true
		}
	}
	e.msgs[id] = m
	return m
}

func (e *engine) sendGroup(g simGroup, from int) {
	rm, err := e.nodes[from].n.SendRoom(g.id, strings.Repeat("x", e.sc.Size))
	if err != nil {
		e.fail(fmt.Errorf("failed to send to a group from node %d: %w", from, err))
		return
	}
	if m := e.track(rm.ID, kindGroup, g.members, from); m != nil {
		e.res.Groups.Messages++
		e.res.Groups.Recipients += len(m.waiting)
	}
	e.fanout(from)
}

func (e *engine) post(from int) {
	p, err := e.nodes[from].n.PostChannel(context.Background(), simChannel, strings.Repeat("x", e.sc.Size))
	if err != nil {
		e.fail(fmt.Errorf("failed to post from node %d: %w", from, err))
		return
	}
	if m := e.track(p.ID, kindPost, e.rooms.readers, from); m != nil {
		e.res.Channel.Messages++
		e.res.Channel.Recipients += len(m.waiting)
	}
	e.fanout(from)
}

// spam pushes one post without a valid stamp from spammer s to every
// neighbour it has now, as Envelope frames, unasked (as the hostile
// "spam" mode of test/netns does over real links).
func (e *engine) spam(s int) {
	r := e.rooms
	env := envelope.Envelope{Kind: envelope.KindPublic, Hops: e.sc.Hops,
		Expiry: uint32(epoch.Add(e.q.now + e.sc.TTL).Unix()), Body: make([]byte, r.spamBody)}
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.spamRand.Uint32())
		}
	}
	fill(env.Nonce[:])
	fill(env.Tag[:])
	fill(env.Body)
	raw := env.Marshal()
	for room.CheckStamp(raw, room.MinStampBits) == nil {
		raw[6]++ // the nonce's first byte: this one happened to be a valid stamp
	}
	e.msgs[envelope.ComputeID(raw)] = &message{kind: kindSpam, to: -1, sent: e.q.now}
	e.res.Spam.Posts++
	for _, l := range e.nodes[s].links {
		k := 0
		if int(l.ends[1]) == s {
			k = 1
		}
		e.send(l, k, []session.Frame{{Type: session.TypeEnvelope, Payload: raw}})
	}
}

// roomRead records that node i read room message m (a group message or
// a channel post).
func (e *engine) roomRead(i int, m *message, t *RoomTraffic) {
	if !m.waiting[int32(i)] {
		return
	}
	delete(m.waiting, int32(i))
	latency := e.q.now - m.sent
	t.delivered(latency, e.sc.TTL)
	m.late = m.late || latency > e.sc.TTL
	if len(m.waiting) == 0 && !m.late {
		t.Complete++
	}
}

// noteHeld looks at what node i newly holds: a channel post a reader holds
// is one it read (a reader stores a post only once it has opened it and
// found it within the channel's rules); spam held by a node that is not a
// spammer was stored where it must have been dropped.
func (e *engine) noteHeld(i int, ids []envelope.ID) {
	for _, id := range ids {
		m, ok := e.msgs[id]
		if !ok {
			continue
		}
		switch m.kind {
		case kindPost:
			e.roomRead(i, m, e.res.Channel)
		case kindSpam:
			if !e.rooms.spammer[i] {
				e.res.Spam.Stored++
			}
		}
	}
}

// roomTransmission counts a room envelope put on a link (again, when lost).
func (e *engine) roomTransmission(m *message, size int, again bool) {
	var tx, bytes *int64
	switch m.kind {
	case kindGroup:
		tx, bytes = &e.res.Groups.Transmissions, &e.res.Groups.LinkBytes
	case kindPost:
		tx, bytes = &e.res.Channel.Transmissions, &e.res.Channel.LinkBytes
	case kindSpam:
		tx, bytes = &e.res.Spam.Frames, &e.res.Spam.LinkBytes
	default:
		return
	}
	if !again {
		*tx++
	}
	*bytes += int64(size)
}

// noteReport adds what an ingest dropped for stamps and rates.
func (e *engine) noteReport(rep node.IngestReport) {
	if e.res.Spam != nil {
		e.res.Spam.Dropped += int64(rep.Unstamped)
	}
	if e.res.Channel != nil {
		e.res.Channel.RateLimited += rep.Limited
	}
}
