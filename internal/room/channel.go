package room

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/text/unicode/norm"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// Public channels (SPEC §15.11). A channel is joined by its name, and
// optionally a password: its secret is Argon2id of both, so anyone who knows
// them can read, and a relay that wants to know which channel an envelope
// belongs to must pay the slow KDF for every guess. Every post is a stamped
// envelope (kind 2) signed by the poster's pseudonym for the channel.
//
//	seed      = Argon2id(pass = name || 0x00 || password, salt = "grapevine channel v1" || byte(bits), t=3, m=64 MiB, p=1, 32)
//	CID       = HKDF(seed, "grapevine channel id")
//	T_p       = HMAC(HKDF(seed, "grapevine channel tags"), be64(p))
//	tag_{p,i} = HMAC(T_p, "tag" || byte(i))[0:16]         i < TagsPerPeriod, drawn by the poster
//	M         = HKDF(seed, "grapevine channel messages")
//	seal key  = HMAC(M, "seal" || tag || salt)             salt: 8 random bytes
//
// Nearby (nearby.go) is a channel whose seed everyone knows.
const (
	// TagsPerPeriod is how many tags a channel has per period: a poster
	// draws one at random, so an observer who sees two envelopes with the
	// same tag learns only that they may be of one channel's period.
	TagsPerPeriod = 32
	// ChannelRetention is how many periods back a reader watches a
	// channel's tags (and the one ahead, for a sender's fast clock).
	ChannelRetention = 7
	// MaxChannelName bounds a normalised name, '#' included.
	MaxChannelName = 64

	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 1

	publicSalt = 8
	pubSize    = ed25519.PublicKeySize
	// publicGrain is what a public post's body is padded to a multiple of,
	// up to 256 bytes (SPEC §15.11: a 100-character post fits 256 bytes
	// on the wire; the standard buckets would take it to 302).
	publicGrain = 16
	postLabel   = "grapevine channel post v1"
)

// Errors of public rooms.
var (
	ErrChannelName = errors.New("invalid channel name")
	ErrNotPublic   = errors.New("not a public post")
)

// Channel is a public channel's keys: what anyone who knows its name (and
// password) derives. It holds no per-member state.
type Channel struct {
	Name   string   // normalised, "#" first; "nearby" for Nearby
	Bits   int      // the stamp difficulty its readers require
	ID     [32]byte // CID: names it in signatures, never on the wire
	tagKey [32]byte
	msgKey [32]byte
	nearby bool
}

// NormaliseName returns a channel name's one form: NFKC, lower case, with a
// leading '#' (added if missing); 1 to 63 letters, digits, '-', '_' or '.'
// after it.
func NormaliseName(name string) (string, error) {
	s := strings.ToLower(norm.NFKC.String(strings.TrimSpace(name)))
	s = strings.TrimPrefix(s, "#")
	if s == "" || len(s)+1 > MaxChannelName {
		return "", fmt.Errorf("%w %q: want 1 to %d bytes after '#'", ErrChannelName, name, MaxChannelName-1)
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' {
			return "", fmt.Errorf("%w %q: %q is not a letter, digit, '-', '_' or '.'", ErrChannelName, name, r)
		}
	}
	return "#" + s, nil
}

// JoinChannel derives a channel's keys from its name, password (may be
// empty) and stamp difficulty (0 for DefaultStampBits). It costs one
// Argon2id (about 0.25 s and 64 MiB on the development machine).
func JoinChannel(name, password string, bits int) (*Channel, error) {
	n, err := NormaliseName(name)
	if err != nil {
		return nil, fmt.Errorf("failed to join channel: %w", err)
	}
	if bits == 0 {
		bits = DefaultStampBits
	}
	if bits < MinStampBits || bits > MaxStampBits {
		return nil, fmt.Errorf("failed to join channel: stamp difficulty %d outside %d..%d", bits, MinStampBits, MaxStampBits)
	}
	pass := append(append([]byte(n), 0), password...)
	salt := append([]byte("grapevine channel v1"), byte(bits))
	seed := argon2.IDKey(pass, salt, argonTime, argonMemory, argonThreads, 32)
	return channelFrom(n, bits, seed, false), nil
}

func channelFrom(name string, bits int, seed []byte, nearby bool) *Channel {
	return &Channel{Name: name, Bits: bits, ID: kdf(seed, "grapevine channel id"), tagKey: kdf(seed, "grapevine channel tags"),
		msgKey: kdf(seed, "grapevine channel messages"), nearby: nearby}
}

// Nearby reports whether c is the Nearby room.
func (c *Channel) Nearby() bool { return c.nearby }

// Tag returns tag i of period p.
func (c *Channel) Tag(p keys.Period, i int) (tag [16]byte) {
	tp := prf(c.tagKey[:], binary.BigEndian.AppendUint64(nil, uint64(p)))
	t := prf(tp[:], []byte("tag"), []byte{byte(i)})
	copy(tag[:], t[:16])
	return tag
}

// Tags returns the TagsPerPeriod tags of period p.
func (c *Channel) Tags(p keys.Period) [][16]byte {
	tp := prf(c.tagKey[:], binary.BigEndian.AppendUint64(nil, uint64(p)))
	out := make([][16]byte, TagsPerPeriod)
	for i := range out {
		t := prf(tp[:], []byte("tag"), []byte{byte(i)})
		copy(out[i][:], t[:16])
	}
	return out
}

// Watched returns the periods whose tags a reader watches at now: the
// retention window and the period ahead.
func (c *Channel) Watched(now keys.Period) (first, last keys.Period) {
	first = now - min(now, ChannelRetention)
	if c.nearby {
		first = now - min(now, 1) // Nearby posts live hours
	}
	return first, now + 1
}

// Pseudonym returns my signing key in this channel as of period p: for a
// channel, one key per identity and channel,
// HKDF(identity seed, "grapevine channel pseudonym" || CID); for Nearby,
// one per day, HKDF(identity seed, "grapevine nearby pseudonym" || be64(p)).
// Two channels' pseudonyms of one identity are independent keys.
func (c *Channel) Pseudonym(id *keys.Identity, p keys.Period) ed25519.PrivateKey {
	info := "grapevine channel pseudonym" + string(c.ID[:])
	if c.nearby {
		info = "grapevine nearby pseudonym" + string(binary.BigEndian.AppendUint64(nil, uint64(p)))
	}
	seed := kdf(id.Sign.Seed(), info)
	return ed25519.NewKeyFromSeed(seed[:])
}

// Post is an opened public post.
type Post struct {
	Channel   *Channel
	Period    keys.Period
	Pseudonym [32]byte // the poster's key in this channel (Nearby: this day)
	Content   []byte
}

func publicAD(kind envelope.Kind, expiry uint32, tag [16]byte, salt []byte) []byte {
	ad := make([]byte, 0, 1+4+16+publicSalt)
	ad = append(ad, envelope.Version<<4|byte(kind))
	ad = binary.BigEndian.AppendUint32(ad, expiry)
	ad = append(ad, tag[:]...)
	return append(ad, salt...)
}

func (c *Channel) signedPost(expiry uint32, tag [16]byte, salt, content []byte) []byte {
	b := make([]byte, 0, len(postLabel)+32+4+16+publicSalt+len(content))
	b = append(b, postLabel...)
	b = append(b, c.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, expiry)
	b = append(b, tag[:]...)
	b = append(b, salt...)
	return append(b, content...)
}

func (c *Channel) sealKey(tag [16]byte, salt []byte) [32]byte {
	return prf(c.msgKey[:], []byte("seal"), tag[:], salt)
}

// padPublic pads plaintext (uvarint length, bytes, zeros) so that reserve
// plus the result is a multiple of publicGrain up to 256, and a standard
// bucket (§5.1) beyond.
func padPublic(plain []byte, reserve int) ([]byte, error) {
	need := reserve + binary.PutUvarint(make([]byte, binary.MaxVarintLen64), uint64(len(plain))) + len(plain)
	if need > 256 {
		return envelope.Pad(plain, reserve)
	}
	size := (need+publicGrain-1)/publicGrain*publicGrain - reserve
	p := make([]byte, 0, size)
	p = binary.AppendUvarint(p, uint64(len(plain)))
	p = append(p, plain...)
	return p[:size], nil
}

// Seal seals content as my post in the channel in period now, under a tag
// drawn at random; it draws the tag's index (1 byte) and the salt (8 bytes)
// from rand. The envelope is not stamped yet: Mint does that.
func (c *Channel) Seal(id *keys.Identity, now keys.Period, content []byte, expiry uint32, hops uint8, rand io.Reader) (*envelope.Envelope, error) {
	var r [1 + publicSalt]byte
	if _, err := io.ReadFull(rand, r[:]); err != nil {
		return nil, fmt.Errorf("failed to draw salt: %w", err)
	}
	tag := c.Tag(now, int(r[0])%TagsPerPeriod)
	salt := r[1:]
	priv := c.Pseudonym(id, now)
	sig := ed25519.Sign(priv, c.signedPost(expiry, tag, salt, content))
	plain := make([]byte, 0, pubSize+len(sig)+len(content))
	plain = append(plain, priv.Public().(ed25519.PublicKey)...)
	plain = append(plain, sig...)
	plain = append(plain, content...)
	padded, err := padPublic(plain, publicSalt)
	if err != nil {
		return nil, fmt.Errorf("failed to seal post: %w", err)
	}
	key := c.sealKey(tag, salt)
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	body := append(make([]byte, 0, publicSalt+len(padded)+envelope.Overhead), salt...)
	body = aead.Seal(body, nonce[:], padded, publicAD(envelope.KindPublic, expiry, tag, salt))
	return &envelope.Envelope{Kind: envelope.KindPublic, Hops: hops, Expiry: expiry, Tag: tag, Body: body}, nil
}

// Open opens a public envelope whose tag is this channel's tag of period
// p (the index says which). It checks the AEAD and the pseudonym's
// signature; it does not check the stamp (the node does, CheckStamp with
// c.Bits).
func (c *Channel) Open(e *envelope.Envelope, p keys.Period) (*Post, error) {
	if e.Kind != envelope.KindPublic || len(e.Body) < publicSalt+envelope.Overhead {
		return nil, fmt.Errorf("failed to open post: %w", ErrNotPublic)
	}
	salt := e.Body[:publicSalt]
	key := c.sealKey(e.Tag, salt)
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	padded, err := aead.Open(nil, nonce[:], e.Body[publicSalt:], publicAD(e.Kind, e.Expiry, e.Tag, salt))
	if err != nil {
		return nil, fmt.Errorf("failed to open post: %w", ErrOpen)
	}
	plain, err := envelope.Unpad(padded)
	if err != nil || len(plain) < pubSize+sigSize {
		return nil, fmt.Errorf("failed to open post: %w: bad padding or no signature", ErrMalformed)
	}
	pub, sig, content := plain[:pubSize], plain[pubSize:pubSize+sigSize], plain[pubSize+sigSize:]
	if !ed25519.Verify(pub, c.signedPost(e.Expiry, e.Tag, salt, content), sig) {
		return nil, fmt.Errorf("failed to open post: %w", ErrSignature)
	}
	post := &Post{Channel: c, Period: p, Content: content}
	copy(post.Pseudonym[:], pub)
	return post, nil
}

// ChannelIndex maps the tags of every channel a node reads to the channel
// and period: recognising a public post is one map lookup, however many
// channels are joined.
type ChannelIndex struct {
	tags  map[[16]byte]channelSlot
	owned map[*Channel][][16]byte
}

type channelSlot struct {
	c *Channel
	p keys.Period
}

// NewChannelIndex returns an empty index.
func NewChannelIndex() *ChannelIndex {
	return &ChannelIndex{tags: map[[16]byte]channelSlot{}, owned: map[*Channel][][16]byte{}}
}

// Update sets c's watched tags for the periods Watched(now).
func (x *ChannelIndex) Update(c *Channel, now keys.Period) {
	x.Remove(c)
	first, last := c.Watched(now)
	var owned [][16]byte
	for p := first; p <= last; p++ {
		for _, t := range c.Tags(p) {
			x.tags[t] = channelSlot{c, p}
			owned = append(owned, t)
		}
	}
	x.owned[c] = owned
}

// Remove forgets c's tags.
func (x *ChannelIndex) Remove(c *Channel) {
	for _, t := range x.owned[c] {
		if s, ok := x.tags[t]; ok && s.c == c {
			delete(x.tags, t)
		}
	}
	delete(x.owned, c)
}

// Lookup returns the channel and period a tag belongs to.
func (x *ChannelIndex) Lookup(tag [16]byte) (*Channel, keys.Period, bool) {
	s, ok := x.tags[tag]
	return s.c, s.p, ok
}

// Len is the number of tags watched.
func (x *ChannelIndex) Len() int { return len(x.tags) }

// ChannelKeys is what a node stores of a joined channel: its derived keys,
// never its password (SPEC §15.11).
type ChannelKeys struct {
	Name   string   `json:"name"`
	Bits   int      `json:"bits"`
	ID     [32]byte `json:"id"`
	TagKey [32]byte `json:"tag_key"`
	MsgKey [32]byte `json:"msg_key"`
}

// Keys returns the channel's keys to store.
func (c *Channel) Keys() ChannelKeys {
	return ChannelKeys{Name: c.Name, Bits: c.Bits, ID: c.ID, TagKey: c.tagKey, MsgKey: c.msgKey}
}

// ChannelFromKeys rebuilds a joined channel from its stored keys.
func ChannelFromKeys(k ChannelKeys) (*Channel, error) {
	if n, err := NormaliseName(k.Name); err != nil || n != k.Name {
		return nil, fmt.Errorf("failed to load channel: %w %q", ErrChannelName, k.Name)
	}
	if k.Bits < MinStampBits || k.Bits > MaxStampBits {
		return nil, fmt.Errorf("failed to load channel %s: stamp difficulty %d outside %d..%d", k.Name, k.Bits, MinStampBits, MaxStampBits)
	}
	return &Channel{Name: k.Name, Bits: k.Bits, ID: k.ID, tagKey: k.TagKey, msgKey: k.MsgKey}, nil
}
