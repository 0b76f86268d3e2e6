package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Public rooms at the node (SPEC §15.16): channels joined by name, Nearby
// (always joined), announcement channels owned or followed; the relay-side
// stamp check, rate limits, and mute and block. Everything here is in the
// store except the rate limiters, which are in memory.

const (
	colPublic      = "public"       // joined channels, followed and owned announcement channels, mutes and blocks
	colPublicPosts = "public_posts" // posts read, by envelope ID
)

// PublicPolicy is what a node asks of stamped envelopes it carries.
type PublicPolicy struct {
	// StampBits is the least stamp a relay accepts on any stamped
	// envelope, and the difficulty of Nearby and announcements.
	StampBits int
	// LinkBurst and LinkPerMinute bound the stamped envelopes one link
	// (one source address) may hand over.
	LinkBurst, LinkPerMinute float64
	// PseudonymBurst and PseudonymPerHour bound the posts of one
	// pseudonym (in a channel this node reads, or Nearby) and of one
	// announcement signer that this node stores.
	PseudonymBurst, PseudonymPerHour float64
}

// DefaultPublicPolicy is the policy of a node that sets none.
var DefaultPublicPolicy = PublicPolicy{StampBits: room.DefaultStampBits, LinkBurst: 120, LinkPerMinute: 60,
	PseudonymBurst: 10, PseudonymPerHour: 30}

// maxBuckets bounds each rate limiter's memory: beyond it, the fullest
// buckets (those that would allow a burst anyway) are forgotten.
const maxBuckets = 4096

type bucket struct {
	tokens float64
	last   time.Time
}

type limiter struct {
	burst, perSecond float64
	m                map[string]*bucket
}

func newLimiter(burst, perSecond float64) *limiter {
	return &limiter{burst: burst, perSecond: perSecond, m: map[string]*bucket{}}
}

// allow takes a token from key's bucket at now, if it has one.
func (l *limiter) allow(key string, now time.Time) bool {
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[key] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.perSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) prune(now time.Time) {
	for k, b := range l.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.perSecond >= l.burst {
			delete(l.m, k)
		}
	}
	for k := range l.m { // still full: forget any (a flooder's fresh key gets a burst, no more)
		if len(l.m) < maxBuckets {
			break
		}
		delete(l.m, k)
	}
}

// publicRooms is a node's public-room state in memory, loaded from the
// store on first use.
type publicRooms struct {
	policy    PublicPolicy
	channels  map[string]*room.Channel // joined, by normalised name (Nearby too)
	follows   map[[32]byte]string      // announcement owners followed, with a local name
	owned     map[string]bool          // my announcement channels, by local name
	blocks    map[[32]byte]string      // pseudonyms or signers: "mute" or "block"
	idx       *room.ChannelIndex
	ann       map[[16]byte][32]byte // tags of followed announcement channels
	idxPeriod keys.Period
	stale     bool // a write that changed this state failed: reload from the store
	links     *limiter
	posters   *limiter
}

type publicRecord struct {
	Channel *room.ChannelKeys `json:"channel,omitempty"`
	Follow  string            `json:"follow,omitempty"` // owner key hex
	Owned   string            `json:"owned,omitempty"`  // local name of my announcement channel
	Block   string            `json:"block,omitempty"`  // key hex
	Name    string            `json:"name,omitempty"`
	Mode    string            `json:"mode,omitempty"` // mute or block
}

// PublicPost is a post of a channel, of Nearby or an announcement, as shown.
type PublicPost struct {
	ID        string    `json:"id"`
	Room      string    `json:"room"`   // "#name", "nearby", or "announce:" and the owner key's first 16 hex digits
	Poster    string    `json:"poster"` // the pseudonym (or announcement signer) in hex; "me" for mine
	Direction string    `json:"direction"`
	Text      string    `json:"text"`
	Time      time.Time `json:"time"`
	Expires   time.Time `json:"expires"`
}

type postRecord struct {
	PublicPost
	Key  string `json:"key"` // the poster's full key in hex (Poster may be "me")
	Seq  uint64 `json:"seq"`
	Owne string `json:"owner,omitempty"`
}

// SetPublicPolicy replaces the policy for stamped envelopes (see
// DefaultPublicPolicy); a zero field keeps the default. Limiters restart.
func (n *Node) SetPublicPolicy(p PublicPolicy) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := DefaultPublicPolicy
	if p.StampBits == 0 {
		p.StampBits = d.StampBits
	}
	if p.StampBits < room.MinStampBits || p.StampBits > room.MaxStampBits {
		return invalid(ReasonInvalidSetting, "stamp difficulty %d outside %d..%d", p.StampBits, room.MinStampBits, room.MaxStampBits)
	}
	for _, f := range []struct {
		v *float64
		d float64
	}{{&p.LinkBurst, d.LinkBurst}, {&p.LinkPerMinute, d.LinkPerMinute},
		{&p.PseudonymBurst, d.PseudonymBurst}, {&p.PseudonymPerHour, d.PseudonymPerHour}} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	return n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		pr.setPolicy(p)
		return nil
	})
}

func (pr *publicRooms) setPolicy(p PublicPolicy) {
	pr.policy = p
	pr.links = newLimiter(p.LinkBurst, p.LinkPerMinute/60)
	pr.posters = newLimiter(p.PseudonymBurst, p.PseudonymPerHour/3600)
}

// public returns the public-room state, loading it on first use, with its
// tag index built for the current period.
func (n *Node) public(tx *store.Tx) (*publicRooms, error) {
	if n.pub == nil || n.pub.stale {
		pr := &publicRooms{channels: map[string]*room.Channel{"nearby": room.Nearby()}, follows: map[[32]byte]string{},
			owned: map[string]bool{}, blocks: map[[32]byte]string{}}
		if old := n.pub; old != nil { // reloaded after a failed write: the policy and rates stay
			pr.policy, pr.links, pr.posters = old.policy, old.links, old.posters
		} else {
			pr.setPolicy(DefaultPublicPolicy)
		}
		err := tx.ForEach(colPublic, func(v []byte, _ time.Time) error {
			var r publicRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("failed to read a public room record: %w", err)
			}
			switch {
			case r.Channel != nil:
				c, err := room.ChannelFromKeys(*r.Channel)
				if err != nil {
					return err
				}
				pr.channels[c.Name] = c
			case r.Follow != "":
				k, err := parseKey(r.Follow)
				if err != nil {
					return err
				}
				pr.follows[k] = r.Name
			case r.Owned != "":
				pr.owned[r.Owned] = true
			case r.Block != "":
				k, err := parseKey(r.Block)
				if err != nil {
					return err
				}
				pr.blocks[k] = r.Mode
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to load public rooms: %w", err)
		}
		n.pub = pr
		n.pub.idxPeriod = ^keys.Period(0)
	}
	if p := keys.PeriodOf(n.now()); n.pub.idxPeriod != p {
		n.pub.reindex(n, p)
	}
	return n.pub, nil
}

func (pr *publicRooms) reindex(n *Node, p keys.Period) {
	pr.idx = room.NewChannelIndex()
	for _, c := range pr.channels {
		pr.idx.Update(c, p)
	}
	pr.ann = map[[16]byte][32]byte{}
	for o := range pr.follows {
		pr.followTags(o, p)
	}
	for name := range pr.owned {
		var o [32]byte
		copy(o[:], room.Owner(n.id, name).Public().(ed25519.PublicKey))
		pr.followTags(o, p)
	}
	pr.idxPeriod = p
}

func (pr *publicRooms) followTags(o [32]byte, p keys.Period) {
	for q := p - min(p, room.ChannelRetention); q <= p+1; q++ {
		pr.ann[room.AnnounceTag(o, q)] = o
	}
}

func parseKey(s string) (k [32]byte, err error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, invalid(ReasonInvalidName, "%q is not a key: want 64 hex digits", s)
	}
	copy(k[:], b)
	return k, nil
}

// publicUpdate runs fn in a write transaction; if it fails, the public
// state it may have changed in memory is reloaded from the store at next use.
func (n *Node) publicUpdate(fn func(tx *store.Tx, pr *publicRooms) error) error {
	err := n.update(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		return fn(tx, pr)
	})
	if err != nil && n.pub != nil {
		n.pub.stale = true
	}
	return err
}

// ChannelInfo is a joined channel.
type ChannelInfo struct {
	Name      string `json:"name"`
	Bits      int    `json:"bits"`
	Pseudonym string `json:"pseudonym"` // mine in it (Nearby: today's)
}

// JoinChannel joins a public channel by name, with an optional password and
// stamp difficulty (0: the default). It costs one Argon2id (about a
// quarter of a second here), run without holding the node. Posts of the
// channel already carried here are read at once.
func (n *Node) JoinChannel(name, password string, bits int) (ChannelInfo, error) {
	if bits == 0 {
		bits = room.DefaultStampBits
	}
	n.mu.Lock()
	floor := DefaultPublicPolicy.StampBits
	if n.pub != nil {
		floor = n.pub.policy.StampBits
	}
	n.mu.Unlock()
	if bits < floor {
		return ChannelInfo{}, invalid(ReasonInvalidSetting, "stamp difficulty %d is below the %d relays require", bits, floor)
	}
	c, err := room.JoinChannel(name, password, bits)
	if err != nil {
		return ChannelInfo{}, invalid(ReasonInvalidName, "%v", err)
	}
	n.mu.Lock()
	err = n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		k := c.Keys()
		if err := putJSON(tx, colPublic, []byte("c"+c.Name), publicRecord{Channel: &k}, farFuture); err != nil {
			return err
		}
		pr.channels[c.Name] = c
		pr.idx.Update(c, keys.PeriodOf(n.now()))
		return nil
	})
	n.mu.Unlock()
	if err != nil {
		return ChannelInfo{}, fmt.Errorf("failed to join channel: %w", err)
	}
	if err := n.readCarried(); err != nil {
		return ChannelInfo{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.channelInfo(c), nil
}

// farFuture is the expiry of records that live until deleted.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (n *Node) channelInfo(c *room.Channel) ChannelInfo {
	return ChannelInfo{Name: c.Name, Bits: c.Bits, Pseudonym: hex.EncodeToString(c.Pseudonym(n.id, keys.PeriodOf(n.now())).Public().(ed25519.PublicKey))}
}

// LeaveChannel leaves a channel: its posts stay until they expire, its
// tags are no longer watched, its keys are deleted.
func (n *Node) LeaveChannel(name string) error {
	norm, err := room.NormaliseName(name)
	if err != nil {
		return invalid(ReasonInvalidName, "%v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		c, ok := pr.channels[norm]
		if !ok || c.Nearby() {
			return invalid(ReasonNoRoom, "not in channel %s", norm)
		}
		delete(pr.channels, norm)
		pr.idx.Remove(c)
		return tx.Delete(colPublic, []byte("c"+norm))
	})
}

// Channels lists the joined channels, Nearby first.
func (n *Node) Channels() ([]ChannelInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []ChannelInfo
	err := n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		for _, c := range pr.channels {
			out = append(out, n.channelInfo(c))
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if ni, nj := out[i].Name == "nearby", out[j].Name == "nearby"; ni != nj {
			return ni
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}

func checkText(text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return invalid(ReasonInvalidText, "the message is empty")
	case len(text) > MaxText:
		return invalid(ReasonInvalidText, "the message is %d bytes, limit %d", len(text), MaxText)
	case !utf8.ValidString(text):
		return invalid(ReasonInvalidText, "the message is not valid UTF-8")
	}
	return nil
}

// postContent is a public post's content: type 1 (text) and the text, no
// time (SPEC §15.11: it must fit 256 bytes; the reader shows when it
// arrived).
func postContent(text string) []byte { return append([]byte{byte(TypeText)}, text...) }

// PostChannel posts text to a joined channel (or "nearby"). Sealing and
// the stamp (about a second on a phone) run without holding the node;
// ctx may stop the stamp.
func (n *Node) PostChannel(ctx context.Context, name, text string) (PublicPost, error) {
	return n.postPublic(ctx, name, text, 0, 0)
}

// PostNearby posts text to Nearby with a hop limit (0: room.NearbyHops,
// at most room.NearbyMaxHops) and lifetime (0: room.NearbyLifetime, at most
// room.NearbyMaxLifetime).
func (n *Node) PostNearby(ctx context.Context, text string, hops int, lifetime time.Duration) (PublicPost, error) {
	if hops < 0 || hops > room.NearbyMaxHops {
		return PublicPost{}, invalid(ReasonInvalidSetting, "Nearby hop limit %d outside 1..%d", hops, room.NearbyMaxHops)
	}
	if lifetime < 0 || lifetime > room.NearbyMaxLifetime {
		return PublicPost{}, invalid(ReasonInvalidSetting, "Nearby lifetime %s outside 1s..%s", lifetime, room.NearbyMaxLifetime)
	}
	return n.postPublic(ctx, "nearby", text, hops, lifetime)
}

func (n *Node) postPublic(ctx context.Context, name, text string, hops int, lifetime time.Duration) (PublicPost, error) {
	if err := checkText(text); err != nil {
		return PublicPost{}, err
	}
	norm := "nearby"
	if name != "nearby" {
		var err error
		if norm, err = room.NormaliseName(name); err != nil {
			return PublicPost{}, invalid(ReasonInvalidName, "%v", err)
		}
	}
	n.mu.Lock()
	var c *room.Channel
	var bits int
	err := n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		c, bits = pr.channels[norm], pr.policy.StampBits
		return nil
	})
	now := n.now().UTC().Truncate(time.Second)
	expiry, h := n.envelopeExpiry(), n.startHops()
	if c != nil && c.Nearby() {
		if hops == 0 {
			hops = room.NearbyHops
		}
		if lifetime == 0 {
			lifetime = room.NearbyLifetime
		}
		expiry, h = uint32(now.Add(lifetime).Unix()), uint8(hops)
	} else if c != nil {
		bits = max(bits, c.Bits)
	}
	var e *envelope.Envelope
	if err == nil && c != nil {
		e, err = c.Seal(n.id, keys.PeriodOf(now), postContent(text), expiry, h, n.rand)
	}
	n.mu.Unlock()
	switch {
	case err != nil:
		return PublicPost{}, fmt.Errorf("failed to post: %w", err)
	case c == nil:
		return PublicPost{}, invalid(ReasonNoRoom, "not in channel %s", norm)
	}
	return n.stampAndStore(ctx, e, bits, c.Name, hex.EncodeToString(c.Pseudonym(n.id, keys.PeriodOf(now)).Public().(ed25519.PublicKey)), text, now)
}

func (n *Node) stampAndStore(ctx context.Context, e *envelope.Envelope, bits int, roomName, key, text string, now time.Time) (PublicPost, error) {
	raw := e.Marshal()
	if _, err := room.Mint(ctx, raw, bits); err != nil {
		return PublicPost{}, fmt.Errorf("failed to post: %w", err)
	}
	id := envelope.ComputeID(raw)
	rec := postRecord{PublicPost: PublicPost{ID: id.String(), Room: roomName, Poster: "me", Direction: "out", Text: text, Time: now,
		Expires: time.Unix(int64(e.Expiry), 0).UTC()}, Key: key}
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.update(func(tx *store.Tx) error {
		var err error
		if rec.Seq, err = nextSeq(tx); err != nil {
			return err
		}
		if err := putJSON(tx, colPublicPosts, []byte(rec.ID), rec, rec.Expires); err != nil {
			return err
		}
		return n.putEnvelope(tx, raw, withCopies(flagOwn, 0)) // public posts spread epidemically
	})
	if err != nil {
		return PublicPost{}, fmt.Errorf("failed to post: %w", err)
	}
	return rec.PublicPost, nil
}

// ChannelMessages lists a channel's (or Nearby's, or a followed or owned
// announcement channel's, by "announce:" and its local name) posts, oldest
// first, without those of muted or blocked posters.
func (n *Node) ChannelMessages(name string) ([]PublicPost, error) {
	norm := name
	if name != "nearby" && !strings.HasPrefix(name, "announce:") {
		var err error
		if norm, err = room.NormaliseName(name); err != nil {
			return nil, invalid(ReasonInvalidName, "%v", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var recs []postRecord
	err := n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		return tx.ForEach(colPublicPosts, func(v []byte, _ time.Time) error {
			var r postRecord
			if err := json.Unmarshal(v, &r); err != nil || r.Room != norm {
				return err
			}
			if k, err := parseKey(r.Key); err == nil && pr.blocks[k] != "" {
				return nil
			}
			recs = append(recs, r)
			return nil
		})
	})
	sort.SliceStable(recs, func(i, j int) bool {
		if !recs[i].Time.Equal(recs[j].Time) {
			return recs[i].Time.Before(recs[j].Time)
		}
		return recs[i].Seq < recs[j].Seq
	})
	out := make([]PublicPost, len(recs))
	for i, r := range recs {
		out[i] = r.PublicPost
	}
	return out, err
}

// Mute hides a poster's posts (by pseudonym or announcement signer key,
// hex) here; they are still carried. Block also stops carrying them: this
// node drops its posts in every channel it reads (SPEC §15.16).
func (n *Node) Mute(key string) error  { return n.setBlock(key, "mute") }
func (n *Node) Block(key string) error { return n.setBlock(key, "block") }

// Unmute undoes Mute or Block.
func (n *Node) Unmute(key string) error { return n.setBlock(key, "") }

func (n *Node) setBlock(key, mode string) error {
	k, err := parseKey(key)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		if mode == "" {
			delete(pr.blocks, k)
			return tx.Delete(colPublic, []byte("b"+hex.EncodeToString(k[:])))
		}
		pr.blocks[k] = mode
		return putJSON(tx, colPublic, []byte("b"+hex.EncodeToString(k[:])), publicRecord{Block: hex.EncodeToString(k[:]), Mode: mode}, farFuture)
	})
}

// readCarried reads the posts of joined channels and followed
// announcement channels among the stamped envelopes already carried.
func (n *Node) readCarried() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var raws [][]byte
	err := n.eachEnvelope(func(flags byte, raw []byte, e *envelope.Envelope) error {
		if e.Kind.Stamped() && flags&flagOwn == 0 {
			raws = append(raws, append([]byte(nil), raw...))
		}
		return nil
	})
	if err != nil || len(raws) == 0 {
		return err
	}
	err = n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		now := n.now()
		for _, raw := range raws {
			e, err := envelope.Parse(raw)
			if err != nil {
				continue
			}
			id := envelope.ComputeID(raw)
			if _, _, ok, err := tx.Get(colPublicPosts, []byte(id.String())); err != nil || ok {
				if err != nil {
					return err
				}
				continue
			}
			if _, err := pr.read(n, tx, id, e, raw, now, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && n.offerStarted() {
		err = n.lookAgain() // an offer read now may find its chunks here already
	}
	return err
}

// Verdicts of read.
const (
	pubCarry = iota // carry it (and it was read if it was for me)
	pubDrop         // not stored
	pubLimit        // over a rate limit: not stored
	pubWeak         // stamp below the channel's: not stored
)

// read recognises and reads a stamped envelope: an announcement is
// verified (every relay does); a post under a tag of a channel I read is
// opened, checked against the channel's difficulty, block list and the
// poster's rate, and kept if it is for me. limit says whether rate limits
// apply (not when reading what is already carried).
func (pr *publicRooms) read(n *Node, tx *store.Tx, id envelope.ID, e *envelope.Envelope, raw []byte, now time.Time, limit bool) (int, error) {
	var rec *postRecord
	switch e.Kind {
	case envelope.KindAnnounce:
		a, err := room.VerifyAnnouncement(e)
		if err != nil {
			return pubDrop, nil
		}
		if pr.blocks[a.Signer] == "block" {
			return pubDrop, nil
		}
		if limit && !pr.posters.allow("a"+string(a.Signer[:]), now) {
			return pubLimit, nil
		}
		if o, ok := pr.ann[e.Tag]; ok && o == a.Owner && len(a.Content) > 0 && a.Content[0] == byte(TypeText) {
			rec = &postRecord{PublicPost: PublicPost{Room: "announce:" + pr.followName(n, a.Owner), Poster: hex.EncodeToString(a.Signer[:]),
				Text: string(a.Content[1:])}, Key: hex.EncodeToString(a.Signer[:])}
		}
	case envelope.KindPublic:
		c, p, ok := pr.idx.Lookup(e.Tag)
		if !ok {
			return pubCarry, nil // not a channel I read: carried on its stamp alone
		}
		post, err := c.Open(e, p)
		if err != nil {
			return pubDrop, nil // under a tag I read, and not a post of it: junk
		}
		need := c.Bits
		if c.Nearby() {
			need = pr.policy.StampBits
		}
		if err := room.CheckStamp(raw, need); err != nil {
			return pubWeak, nil
		}
		if pr.blocks[post.Pseudonym] == "block" {
			return pubDrop, nil
		}
		if limit && !pr.posters.allow(string(c.ID[:])+string(post.Pseudonym[:]), now) {
			return pubLimit, nil
		}
		if len(post.Content) > 0 && post.Content[0] == byte(TypeReleaseOffer) && c.Name == ReleaseChannel {
			return n.readOffer(tx, post.Content[1:], now) // releases.go
		}
		if len(post.Content) > 0 && post.Content[0] == byte(TypeText) {
			rec = &postRecord{PublicPost: PublicPost{Room: c.Name, Poster: hex.EncodeToString(post.Pseudonym[:]), Text: string(post.Content[1:])},
				Key: hex.EncodeToString(post.Pseudonym[:])}
		}
	}
	if rec == nil {
		return pubCarry, nil
	}
	if !utf8.ValidString(rec.Text) || len(rec.Text) > MaxText {
		return pubDrop, nil
	}
	rec.ID, rec.Direction, rec.Time, rec.Expires = id.String(), "in", now.UTC().Truncate(time.Second), time.Unix(int64(e.Expiry), 0).UTC()
	var err error
	if rec.Seq, err = nextSeq(tx); err != nil {
		return pubDrop, err
	}
	return pubCarry, putJSON(tx, colPublicPosts, []byte(rec.ID), rec, rec.Expires)
}

func (pr *publicRooms) followName(n *Node, o [32]byte) string {
	if name, ok := pr.follows[o]; ok {
		return name
	}
	for name := range pr.owned {
		if ed25519.PublicKey(o[:]).Equal(room.Owner(n.id, name).Public()) {
			return name
		}
	}
	return hex.EncodeToString(o[:8])
}

// stamped is ingest's step for a stamped envelope (kinds 2 and 3, SPEC
// §15.16), before anything is stored: the stamp (one hash), Nearby's hop
// and lifetime bounds, duplicates, the link's rate, then what read decides.
func (in *ingest) stamped(id envelope.ID, e *envelope.Envelope, raw []byte) error {
	pr, err := in.n.public(in.tx)
	if err != nil {
		return err
	}
	if err := room.CheckStamp(raw, pr.policy.StampBits); err != nil {
		in.rep.Unstamped++
		return nil
	}
	if c, _, ok := pr.idx.Lookup(e.Tag); ok && c.Nearby() && e.Kind == envelope.KindPublic {
		if e.ExpiresAt().After(in.now.Add(room.NearbyMaxLifetime)) {
			in.rep.Invalid++
			return nil
		}
		if e.Hops > room.NearbyMaxHops {
			raw = append([]byte(nil), raw...)
			envelope.SetHops(raw, room.NearbyMaxHops)
			e.Hops = room.NearbyMaxHops
			in.rep.Clamped++
		}
	}
	if held, err := in.keepMoreHops(id, e); held || err != nil {
		return err
	}
	if in.n.source != "" && !pr.links.allow(in.n.source, in.now) {
		in.rep.Limited++
		return nil
	}
	verdict, err := pr.read(in.n, in.tx, id, e, raw, in.now, true)
	in.changed = in.n.offerStarted() || in.changed // a release's chunks may be here already
	switch {
	case err != nil:
		return err
	case verdict == pubDrop:
		in.rep.Invalid++
		return nil
	case verdict == pubWeak:
		in.rep.Unstamped++
		return nil
	case verdict == pubLimit:
		in.rep.Limited++
		return nil
	}
	if in.n.quota <= 0 {
		in.rep.Refused++
		return nil
	}
	in.rep.New++
	// Always epidemic within its hop budget, whatever copies came with it:
	// a public post has many readers, and a wait-phase Offer (§12.7) is
	// answered only for pairwise tags.
	return in.n.putEnvelope(in.tx, raw, withCopies(0, 0))
}
