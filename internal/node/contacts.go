package node

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Contact states, as the CLI shows them.
const (
	StateRequest = "request" // they added me; waiting for my answer
	StatePending = "pending" // I added them; no answer yet
	StateActive  = "active"
)

// contactRecord is a contact as stored (sealed).
type contactRecord struct {
	Fingerprint string           `json:"fingerprint"`
	Name        string           `json:"name"`
	Sign        []byte           `json:"sign"`
	DH          []byte           `json:"dh"`
	State       string           `json:"state"`
	Added       time.Time        `json:"added"`
	Send        keys.SendChain   `json:"send"`
	Recv        []keys.RecvChain `json:"recv"`
	// Pending holds the receipts of what arrived while this contact was a
	// request: sent on accept, discarded on reject, so a stranger learns
	// nothing from being ignored.
	Pending []pendingReceipt `json:"pending,omitempty"`
}

type pendingReceipt struct {
	Target envelope.ID `json:"target"`
	Expiry uint32      `json:"expiry"`
	Secret [16]byte    `json:"secret"`
}

func (c *contactRecord) public() keys.Public {
	var p keys.Public
	p.Sign = c.Sign
	copy(p.DH[:], c.DH)
	return p
}

// Contact is what callers see of a contact.
type Contact struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	State       string `json:"state"`
}

func (c *contactRecord) view() Contact {
	return Contact{Name: c.Name, Fingerprint: c.Fingerprint, State: c.State}
}

type prekeyRecord struct {
	Priv   []byte   `json:"priv"`
	Secret [16]byte `json:"secret"`
	Expiry uint32   `json:"expiry"`
	Used   bool     `json:"used"`
}

func (r *prekeyRecord) prekey() (*keys.Prekey, error) {
	priv, err := ecdh.X25519().NewPrivateKey(r.Priv)
	if err != nil {
		return nil, fmt.Errorf("corrupt prekey: %w", err)
	}
	return &keys.Prekey{Priv: priv, Secret: r.Secret, Expiry: r.Expiry}, nil
}

func saveContact(tx *store.Tx, c *contactRecord) error {
	return putJSON(tx, colContacts, []byte(c.Fingerprint), c, store.Forever)
}

func loadContact(tx *store.Tx, fp string) (*contactRecord, error) {
	var c contactRecord
	ok, err := getJSON(tx, colContacts, []byte(fp), &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func allContacts(tx *store.Tx) ([]*contactRecord, error) {
	var out []*contactRecord
	err := tx.ForEach(colContacts, func(v []byte, _ time.Time) error {
		var c contactRecord
		if err := jsonUnmarshal(v, &c); err != nil {
			return fmt.Errorf("failed to decode contact: %w", err)
		}
		out = append(out, &c)
		return nil
	})
	return out, err
}

// Self returns the name, fingerprint and current invite link.
func (n *Node) Self() (Self, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	inv, err := n.invite()
	if err != nil {
		return Self{}, err
	}
	return Self{Name: n.id.Name, Fingerprint: n.id.Public().Fingerprint(), Link: inv.Link()}, nil
}

// Identity returns the local public identity.
func (n *Node) Identity() keys.Public { return n.id.Public() }

// Invite returns the current invite: its one-time prekey is unused and has at
// least half its lifetime left; otherwise a new one is made. Earlier prekeys
// keep working until they expire, then their private keys are deleted.
func (n *Node) Invite() (*keys.Invite, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.invite()
}

func (n *Node) invite() (*keys.Invite, error) {
	now := n.now()
	minExpiry := uint32(now.Add(n.cfg.InviteLifetime / 2).Unix())
	var inv *keys.Invite
	err := n.st.View(func(tx *store.Tx) error { // look first: showing an invite writes nothing
		return tx.ForEach(colPrekeys, func(v []byte, _ time.Time) error {
			var r prekeyRecord
			if err := jsonUnmarshal(v, &r); err != nil {
				return err
			}
			if r.Used || r.Expiry < minExpiry || (inv != nil && r.Expiry <= inv.Expiry) {
				return nil
			}
			pk, err := r.prekey()
			if err == nil {
				inv = keys.NewInvite(n.id, pk)
			}
			return err
		})
	})
	if err == nil && inv == nil {
		err = n.update(func(tx *store.Tx) error {
			priv, err := keys.NewX25519(n.rand)
			if err != nil {
				return err
			}
			r := prekeyRecord{Priv: priv.Bytes(), Expiry: uint32(now.Add(n.cfg.InviteLifetime).Unix())}
			if _, err := n.rand.Read(r.Secret[:]); err != nil {
				return err
			}
			pk, _ := r.prekey()
			inv = keys.NewInvite(n.id, pk)
			return putJSON(tx, colPrekeys, inv.Prekey[:], r, inv.ExpiresAt())
		})
	}
	if err != nil {
		return nil, fmt.Errorf("failed to prepare invite: %w", err)
	}
	n.idx.addPrekey(inv.Prekey, inv.Secret)
	return inv, nil
}

// Contacts lists contacts sorted by name.
func (n *Node) Contacts() ([]Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Contact
	err := n.st.View(func(tx *store.Tx) error {
		cs, err := allContacts(tx)
		for _, c := range cs {
			out = append(out, c.view())
		}
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// ErrNoContact is returned when a name or fingerprint prefix matches nobody.
var ErrNoContact = errors.New("no such contact")

// resolve finds a contact by exact name (case-insensitive) or by a unique
// fingerprint prefix of at least 4 characters.
func resolve(tx *store.Tx, ref string) (*contactRecord, error) {
	cs, err := allContacts(tx)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if strings.EqualFold(c.Name, ref) {
			return c, nil
		}
	}
	var found *contactRecord
	if len(ref) >= 4 {
		for _, c := range cs {
			if strings.HasPrefix(c.Fingerprint, strings.ToLower(ref)) {
				if found != nil {
					return nil, fmt.Errorf("%q matches more than one contact's fingerprint; give more characters", ref)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %q (give a contact's name or the start of its fingerprint)", ErrNoContact, ref)
	}
	return found, nil
}

func nameTaken(tx *store.Tx, name, exceptFP string) (bool, error) {
	cs, err := allContacts(tx)
	for _, c := range cs {
		if strings.EqualFold(c.Name, name) && c.Fingerprint != exceptFP {
			return true, err
		}
	}
	return false, err
}

// uniqueName returns name, or name followed by " (2)", " (3)" … if taken.
func uniqueName(tx *store.Tx, name, fp string) (string, error) {
	for i := 1; ; i++ {
		cand := name
		if i > 1 {
			suffix := fmt.Sprintf(" (%d)", i)
			cand = truncate(name, keys.MaxNameLen-len(suffix)) + suffix
		}
		taken, err := nameTaken(tx, cand, fp)
		if err != nil || !taken {
			return cand, err
		}
	}
}

func truncate(s string, n int) string {
	for len(s) > n {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}

// AddContact adds the person behind an invite link. If they had already
// added me (a request), this accepts them. Otherwise the contact is pending,
// and a contact request (a first-contact envelope) is queued at once, so I
// can write to them before they answer.
func (n *Node) AddContact(link, name string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	inv, err := keys.ParseLink(link)
	if err != nil {
		return Contact{}, err
	}
	now := n.now()
	if !now.Before(inv.ExpiresAt()) {
		return Contact{}, fmt.Errorf("this invite expired on %s: ask %s for a new one", inv.ExpiresAt().Format(time.DateOnly), inv.Name)
	}
	if inv.Identity.Equal(n.id.Public()) {
		return Contact{}, errors.New("that is your own invite")
	}
	if name == "" {
		name = inv.Name
	} else if err := keys.CheckName(name); err != nil {
		return Contact{}, fmt.Errorf("invalid name: %w", err)
	}
	fp := inv.Identity.Fingerprint()
	var out *contactRecord
	err = n.update(func(tx *store.Tx) error {
		c, err := loadContact(tx, fp)
		if err != nil {
			return err
		}
		if c != nil && c.State != StateRequest {
			return fmt.Errorf("%s is already a contact (%s)", c.Name, c.State)
		}
		if taken, err := nameTaken(tx, name, fp); err != nil || taken {
			if err == nil {
				err = fmt.Errorf("a contact named %q already exists: choose another with --name", name)
			}
			return err
		}
		if c != nil { // they asked first: adding them is accepting
			c.Name = name
			out = c
			return n.accept(tx, c)
		}
		if err := tx.Delete(colBlocked, []byte(fp)); err != nil {
			return err
		}
		out, err = n.initiate(tx, inv, name)
		return err
	})
	if err != nil {
		n.rebuildIndexQuietly()
		return Contact{}, err
	}
	n.reindex(out)
	return out.view(), nil
}

// initiate makes first contact: pending contact, chains, and the request envelope.
func (n *Node) initiate(tx *store.Tx, inv *keys.Invite, name string) (*contactRecord, error) {
	now := n.now()
	fc, err := keys.Initiate(n.id, inv, n.rand)
	if err != nil {
		return nil, err
	}
	p0 := keys.PeriodOf(now)
	c := &contactRecord{
		Fingerprint: inv.Identity.Fingerprint(), Name: name,
		Sign: inv.Identity.Sign, DH: inv.Identity.DH[:],
		State: StatePending, Added: now.UTC(),
		Send: keys.SendChain{Chain: keys.NewChain(fc.SK, keys.FromInitiator, p0)},
		Recv: []keys.RecvChain{{Chain: keys.NewChain(fc.SK, keys.FromResponder, p0)}},
	}
	var slot [2]byte
	if _, err := n.rand.Read(slot[:]); err != nil {
		return nil, err
	}
	tag := keys.IntroTag(inv.Secret, binary.BigEndian.Uint16(slot[:])%keys.IntroSlots)
	content := &Content{Type: TypeRequest, Time: uint32(now.Unix()), Period: p0, Name: n.id.Name}
	e, err := envelope.SealIntro(envelope.Sealing{
		Tag:    tag,
		Commit: envelope.Commitment(keys.IntroReceiptSecret(fc.SK)),
		Expiry: n.envelopeExpiry(),
		Hops:   n.cfg.Hops,
	}, keys.MaskEK(fc.EK, inv.Secret, tag), fc.IdentityKey, n.id.Public().Bytes(), keys.IntroSealKey(fc.SK), content.Marshal())
	if err != nil {
		return nil, fmt.Errorf("failed to seal contact request: %w", err)
	}
	if err := saveContact(tx, c); err != nil {
		return nil, err
	}
	if err := n.putEnvelope(tx, e.Marshal(), n.ownFlags()); err != nil {
		return nil, err
	}
	return c, nil
}

// Accept answers a contact request: the contact becomes active and learns
// so from an accept envelope.
func (n *Node) Accept(ref string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out *contactRecord
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		if c.State != StateRequest {
			return fmt.Errorf("%s is not a contact request (state %s)", c.Name, c.State)
		}
		out = c
		return n.accept(tx, c)
	})
	if err != nil {
		n.rebuildIndexQuietly()
		return Contact{}, err
	}
	n.reindex(out)
	return out.view(), nil
}

func (n *Node) accept(tx *store.Tx, c *contactRecord) error {
	c.State = StateActive
	for _, p := range c.Pending {
		if p.Expiry <= uint32(n.now().Unix()) {
			continue
		}
		r := envelope.NewReceipt(p.Target, p.Expiry, p.Secret, n.cfg.Hops)
		if err := n.putEnvelope(tx, r.Marshal(), n.ownFlags()); err != nil {
			return err
		}
	}
	c.Pending = nil
	_, err := n.sendContent(tx, c, &Content{Type: TypeAccept, Time: uint32(n.now().Unix())})
	return err
}

// Reject refuses a contact request: the request and anything that came with
// it are deleted, and further envelopes from that identity are ignored.
func (n *Node) Reject(ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var fp string
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		if c.State != StateRequest {
			return fmt.Errorf("%s is not a contact request (state %s)", c.Name, c.State)
		}
		fp = c.Fingerprint
		if err := deleteMessagesOf(tx, fp); err != nil {
			return err
		}
		if err := tx.Delete(colContacts, []byte(fp)); err != nil {
			return err
		}
		return tx.Put(colBlocked, []byte(fp), []byte(fp), n.now().Add(n.cfg.History))
	})
	if err != nil {
		return err
	}
	n.idx.removeOwner(ownerContact(fp))
	n.recog = nil
	return nil
}

// SafetyNumber returns the safety number shared with a contact.
func (n *Node) SafetyNumber(ref string) (Contact, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var c *contactRecord
	err := n.st.View(func(tx *store.Tx) error {
		var err error
		c, err = resolve(tx, ref)
		return err
	})
	if err != nil {
		return Contact{}, "", err
	}
	return c.view(), keys.SafetyNumber(n.id.Public(), c.public()), nil
}

// hasChain reports whether c already receives on a chain with the same root.
func hasChain(c *contactRecord, ch keys.Chain) bool {
	for _, r := range c.Recv {
		probe := ch
		probe.AdvanceTo(r.Period)
		if r.Period >= ch.Period && bytes.Equal(probe.Key[:], r.Key[:]) {
			return true
		}
	}
	return false
}
