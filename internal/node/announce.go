package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Announcement channels at the node (SPEC §15.14, §15.16). The owner key
// of my channel "name" is room.Owner(identity, name); my key as a delegate
// of owner O is room.Owner(identity, "delegate " + hex(O)).

// AnnouncementChannel is one I own or follow.
type AnnouncementChannel struct {
	Name  string `json:"name"`
	Owner string `json:"owner"` // the owner key, hex: what followers follow
	Mine  bool   `json:"mine,omitempty"`
}

func (n *Node) ownerKey(name string) ed25519.PrivateKey { return room.Owner(n.id, name) }

func pubOf(k ed25519.PrivateKey) (o [32]byte) {
	copy(o[:], k.Public().(ed25519.PublicKey))
	return o
}

// CreateAnnouncements makes (or names again) my announcement channel name
// and returns its owner key, which followers need.
func (n *Node) CreateAnnouncements(name string) (AnnouncementChannel, error) {
	if name == "" || len(name) > 64 {
		return AnnouncementChannel{}, invalid(ReasonInvalidName, "announcement channel name of %d bytes: want 1 to 64", len(name))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	o := pubOf(n.ownerKey(name))
	err := n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		pr.owned[name] = true
		pr.followTags(o, keys.PeriodOf(n.now()))
		return putJSON(tx, colPublic, []byte("o"+name), publicRecord{Owned: name}, farFuture)
	})
	return AnnouncementChannel{Name: name, Owner: hex.EncodeToString(o[:]), Mine: true}, err
}

// FollowAnnouncements follows the announcement channel of an owner key
// (hex), shown under a local name.
func (n *Node) FollowAnnouncements(owner, name string) error {
	o, err := parseKey(owner)
	if err != nil {
		return err
	}
	n.mu.Lock()
	err = n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		pr.follows[o] = name
		pr.followTags(o, keys.PeriodOf(n.now()))
		return putJSON(tx, colPublic, []byte("f"+hex.EncodeToString(o[:])), publicRecord{Follow: hex.EncodeToString(o[:]), Name: name}, farFuture)
	})
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("failed to follow: %w", err)
	}
	return n.readCarried()
}

// DelegateKey is my key as a delegate of owner (hex): what I give the
// owner to be delegated.
func (n *Node) DelegateKey(owner string) (string, error) {
	o, err := parseKey(owner)
	if err != nil {
		return "", err
	}
	k := pubOf(n.ownerKey("delegate " + hex.EncodeToString(o[:])))
	return hex.EncodeToString(k[:]), nil
}

// Delegate lets key (hex, from DelegateKey) post to my announcement
// channel name until the given time; it returns the delegation, in hex,
// to hand to the delegate.
func (n *Node) Delegate(name, key string, until time.Time) (string, error) {
	k, err := parseKey(key)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(room.Delegate(n.ownerKey(name), k[:], uint32(until.Unix())).Marshal()), nil
}

// Announce posts text to my announcement channel name, signed by its owner
// key, stamped.
func (n *Node) Announce(ctx context.Context, name, text string) (PublicPost, error) {
	owner := n.ownerKey(name)
	return n.announce(ctx, pubOf(owner), owner, nil, name, text)
}

// AnnounceAs posts text as a delegate, with the delegation (hex) the owner
// gave me.
func (n *Node) AnnounceAs(ctx context.Context, delegation, text string) (PublicPost, error) {
	b, err := hex.DecodeString(delegation)
	if err != nil {
		return PublicPost{}, invalid(ReasonInvalidSetting, "not a delegation: want %d bytes in hex", room.DelegationSize)
	}
	d, err := room.ParseDelegation(b)
	if err != nil {
		return PublicPost{}, invalid(ReasonInvalidSetting, "%v", err)
	}
	signer := n.ownerKey("delegate " + hex.EncodeToString(d.Owner[:]))
	if pubOf(signer) != d.Key {
		return PublicPost{}, invalid(ReasonInvalidSetting, "the delegation is for another key")
	}
	return n.announce(ctx, d.Owner, signer, &d, hex.EncodeToString(d.Owner[:8]), text)
}

func (n *Node) announce(ctx context.Context, o [32]byte, signer ed25519.PrivateKey, d *room.Delegation, name, text string) (PublicPost, error) {
	if err := checkText(text); err != nil {
		return PublicPost{}, err
	}
	n.mu.Lock()
	now := n.now().UTC().Truncate(time.Second)
	expiry, hops := n.envelopeExpiry(), n.startHops()
	if d != nil {
		expiry = min(expiry, d.Expiry)
	}
	bits := DefaultPublicPolicy.StampBits
	err := n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err == nil {
			bits = pr.policy.StampBits
			name = pr.followName(n, o)
		}
		return err
	})
	n.mu.Unlock()
	if err != nil {
		return PublicPost{}, fmt.Errorf("failed to announce: %w", err)
	}
	e, err := room.Announce(o, signer, d, keys.PeriodOf(now), postContent(text), expiry, hops)
	if err != nil {
		return PublicPost{}, invalid(ReasonInvalidSetting, "%v", err)
	}
	return n.stampAndStore(ctx, e, bits, "announce:"+name, hex.EncodeToString(signer.Public().(ed25519.PublicKey)), text, now)
}
