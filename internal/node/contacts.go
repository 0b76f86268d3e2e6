package node

import (
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
	Fingerprint string    `json:"fingerprint"`
	Name        string    `json:"name"`
	Sign        []byte    `json:"sign"`
	DH          []byte    `json:"dh"`
	State       string    `json:"state"`
	Added       time.Time `json:"added"`
	// Sessions are the pairwise sessions with this contact, the one I send
	// on first; the others only receive, until what they may still bring
	// has expired (SPEC §3.4).
	Sessions []*peerSession `json:"sessions"`
	// Proposal is a new session the contact proposed (a re-key, or a new
	// request from an active contact): it stays out of use, and what
	// arrives on it stays hidden, until I accept it.
	Proposal *peerSession `json:"proposal,omitempty"`
	// Pending holds the receipts of what arrived while this contact was a
	// request (or on a proposal): sent on accept, discarded on reject, so a
	// stranger learns nothing from being ignored.
	Pending []pendingReceipt `json:"pending,omitempty"`
	// Invite is the link I added them by, while pending: a request that
	// never arrived can be sent again.
	Invite string `json:"invite,omitempty"`
	// Prekey is the invite prekey their request came through, while a
	// request: deleted once I accept (prekeys are used once).
	Prekey []byte `json:"prekey,omitempty"`
	// RekeyBase keys the re-key requests of the pair (keys.RekeyBase).
	RekeyBase [32]byte `json:"rekey_base"`
}

// peerSession is one session with a contact.
type peerSession struct {
	S *keys.Session `json:"s"`
	// Since is when the session stopped being the one I send on (zero for
	// the primary): it is dropped a retention window later.
	Since time.Time `json:"since,omitzero"`
	// Initiator says I made the first contact (or re-key) of this session.
	Initiator bool `json:"initiator,omitempty"`
	// Rekey says it began with a re-key request rather than an invite.
	Rekey bool `json:"rekey,omitempty"`
	// Started is when its first contact was written, to order two sessions
	// made at once.
	Started time.Time `json:"started"`
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

// session returns the session with the given ID, the proposal included.
func (c *contactRecord) session(id [8]byte) *peerSession {
	for _, ps := range c.Sessions {
		if ps.S.ID == id {
			return ps
		}
	}
	if c.Proposal != nil && c.Proposal.S.ID == id {
		return c.Proposal
	}
	return nil
}

// promote makes ps the session I send on; the former primary only
// receives from now on.
func (c *contactRecord) promote(ps *peerSession, now time.Time) {
	i := slices.Index(c.Sessions, ps)
	if i == 0 {
		return
	}
	if i > 0 {
		c.Sessions = slices.Delete(c.Sessions, i, i+1)
	}
	if len(c.Sessions) > 0 && c.Sessions[0].Since.IsZero() {
		c.Sessions[0].Since = now
	}
	ps.Since = time.Time{}
	c.Sessions = slices.Insert(c.Sessions, 0, ps)
}

// Contact is what callers see of a contact.
type Contact struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	State       string `json:"state"`
	// Rekey says the contact proposed new keys: accept or reject.
	Rekey bool `json:"rekey,omitempty"`
}

func (c *contactRecord) view() Contact {
	return Contact{Name: c.Name, Fingerprint: c.Fingerprint, State: c.State, Rekey: c.Proposal != nil}
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
	return Self{Name: n.id.Name, Fingerprint: n.id.Public().Fingerprint(), Link: inv.Link(), InviteExpires: inv.ExpiresAt()}, nil
}

// Identity returns the local public identity.
func (n *Node) Identity() keys.Public { return n.id.Public() }

// Invite returns the current invite: its one-time prekey is unused and has at
// least half its lifetime left; otherwise a new one is made. Earlier prekeys
// keep working until they expire or a request that came through them is
// accepted; then their private keys are deleted.
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
	sort.Slice(out, func(i, j int) bool { return keys.NameKey(out[i].Name) < keys.NameKey(out[j].Name) })
	return out, err
}

// ErrNoContact is returned when a name or fingerprint prefix matches nobody.
var ErrNoContact = errors.New("no such contact")

// resolve finds a contact by name (compared in normal form, ignoring case)
// or by a fingerprint prefix of at least 4 characters. A reference that
// matches more than one contact — a name and another's fingerprint, or two
// fingerprints — is refused rather than guessed.
func resolve(tx *store.Tx, ref string) (*contactRecord, error) {
	// Names and fingerprints only: a record is mostly its sessions' keys,
	// and a node with a thousand contacts resolves a name at every send.
	type head struct {
		Fingerprint string `json:"fingerprint"`
		Name        string `json:"name"`
	}
	var cs []head
	err := tx.ForEach(colContacts, func(v []byte, _ time.Time) error {
		var h head
		if err := jsonUnmarshal(v, &h); err != nil {
			return fmt.Errorf("failed to decode contact: %w", err)
		}
		cs = append(cs, h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	key := keys.NameKey(strings.TrimSpace(ref))
	var matches []head
	for _, c := range cs {
		if keys.NameKey(c.Name) == key {
			matches = append(matches, c)
		}
	}
	if len(ref) >= 4 {
		fp := strings.ToLower(strings.ReplaceAll(ref, " ", ""))
		for _, c := range cs {
			if strings.HasPrefix(c.Fingerprint, fp) && !slices.Contains(matches, c) {
				matches = append(matches, c)
			}
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w: %q (give a contact's name or the start of its fingerprint)", ErrNoContact, ref)
	case 1:
		c, err := loadContact(tx, matches[0].Fingerprint)
		if err == nil && c == nil {
			err = fmt.Errorf("%w: %q", ErrNoContact, ref)
		}
		return c, err
	}
	var names []string
	for _, c := range matches {
		names = append(names, fmt.Sprintf("%q (%s)", c.Name, c.Fingerprint[:8]))
	}
	return nil, invalid(ReasonAmbiguous, "%q is ambiguous: it matches %s; give more of the fingerprint", ref, strings.Join(names, ", "))
}

// nameTaken reports whether another contact than exceptFP has this name.
func nameTaken(tx *store.Tx, name, exceptFP string, fresh map[string]*contactRecord) (bool, error) {
	key := keys.NameKey(name)
	for _, c := range fresh {
		if c.Fingerprint != exceptFP && keys.NameKey(c.Name) == key {
			return true, nil
		}
	}
	cs, err := allContacts(tx)
	for _, c := range cs {
		if c.Fingerprint != exceptFP && keys.NameKey(c.Name) == key {
			return true, err
		}
	}
	return false, err
}

// requestName is the local name of someone whose request arrived: the
// name they chose, or, if a contact already has it, that name marked as a
// request with the start of their fingerprint ("Alice (request 7xk2)"), so
// an impostor never takes a known contact's name. fresh holds contacts
// created in the same batch, not yet stored.
func requestName(tx *store.Tx, name, fp string, fresh map[string]*contactRecord) (string, error) {
	if taken, err := nameTaken(tx, name, fp, fresh); err != nil || !taken {
		return name, err
	}
	for i := 4; i <= len(fp); i += 4 {
		suffix := " (request " + fp[:i] + ")"
		cand := truncate(name, keys.MaxNameLen-len(suffix)) + suffix
		if taken, err := nameTaken(tx, cand, fp, fresh); err != nil || !taken {
			return cand, err
		}
	}
	return "", fmt.Errorf("no free name for %s", fp)
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
// can write to them before they answer. Adding a pending contact again
// sends a new request, for when the first never arrived.
func (n *Node) AddContact(link, name string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	inv, err := keys.ParseLink(link)
	if err != nil {
		return Contact{}, err
	}
	now := n.now()
	if !now.Before(inv.ExpiresAt()) {
		return Contact{}, expired(inv.Name, "this invite expired on %s: ask %s for a new one", inv.ExpiresAt().Format(time.DateOnly), inv.Name)
	}
	if inv.Identity.Equal(n.id.Public()) {
		return Contact{}, conflict(ReasonOwnInvite, "", "that is your own invite")
	}
	if name == "" {
		name = inv.Name
	} else if name, err = keys.NormalizeName(name); err != nil {
		return Contact{}, badName(err)
	}
	fp := inv.Identity.Fingerprint()
	var out *contactRecord
	err = n.update(func(tx *store.Tx) error {
		c, err := loadContact(tx, fp)
		if err != nil {
			return err
		}
		switch {
		case c != nil && c.State == StateActive:
			return conflict(ReasonAlreadyContact, c.Name, "%s is already a contact", c.Name)
		case c != nil && c.State == StatePending: // send the request again
			out = c
			return n.initiate(tx, c, inv, link)
		}
		if taken, err := nameTaken(tx, name, fp, nil); err != nil || taken {
			if err == nil {
				err = conflict(ReasonNameTaken, name, "a contact named %q already exists", name)
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
		base, err := keys.RekeyBase(n.id, inv.Identity)
		if err != nil {
			return err
		}
		out = &contactRecord{Fingerprint: fp, Name: name, Sign: inv.Identity.Sign, DH: inv.Identity.DH[:],
			State: StatePending, Added: now.UTC(), RekeyBase: base}
		return n.initiate(tx, out, inv, link)
	})
	if err != nil {
		n.rebuildIndexQuietly()
		return Contact{}, err
	}
	n.reindex(out)
	return out.view(), nil
}

// initiate makes first contact with c through inv: a new session that I
// send on, and the request envelope.
func (n *Node) initiate(tx *store.Tx, c *contactRecord, inv *keys.Invite, link string) error {
	now := n.now()
	p0 := keys.PeriodOf(now)
	fc, err := keys.Initiate(n.id, inv, p0, n.rand)
	if err != nil {
		return err
	}
	var slot [2]byte
	if _, err := n.rand.Read(slot[:]); err != nil {
		return err
	}
	tag := keys.IntroTag(inv.Secret, binary.BigEndian.Uint16(slot[:])%keys.IntroSlots)
	content := &Content{Type: TypeRequest, Time: uint32(now.Unix()), Period: p0, Ratchet: fc.Ratchet, KEM: fc.KEMKey, Name: n.id.Name}
	e, err := envelope.SealIntro(envelope.Sealing{
		Tag:    tag,
		Commit: envelope.Commitment(keys.IntroReceiptSecret(fc.SK)),
		Expiry: n.envelopeExpiry(),
		Hops:   n.startHops(),
	}, keys.MaskEK(fc.EK, inv.Secret, tag), fc.IdentityKey, n.id.Binding(), keys.IntroSealKey(fc.SK), content.Marshal())
	if err != nil {
		return fmt.Errorf("failed to seal contact request: %w", err)
	}
	ps := &peerSession{S: fc.Session, Initiator: true, Started: now.UTC()}
	c.promote(ps, now)
	c.Invite = link
	if err := n.recordSent(tx, c, e, kindRequest, keys.Sent{}); err != nil {
		return err
	}
	if err := saveContact(tx, c); err != nil {
		return err
	}
	return n.putEnvelope(tx, e.Marshal(), flagOwn) // epidemic whatever the routing: no offers of intro tags
}

// Accept answers a contact request, or a proposal of new keys from an
// active contact: the contact becomes active on that session and learns
// so from an accept envelope, which opens my first epoch on it.
func (n *Node) Accept(ref string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out *contactRecord
	files := false
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		if c.State != StateRequest && c.Proposal == nil {
			return conflict(ReasonNotRequest, c.Name, "%s is not a contact request and proposed no new keys (state %s)", c.Name, c.State)
		}
		out = c
		if err := n.accept(tx, c); err != nil {
			return err
		}
		files, err = n.startHeldFiles(tx, c.Fingerprint) // attach.go: files that came with the request
		return err
	})
	if err != nil {
		n.rebuildIndexQuietly()
		return Contact{}, err
	}
	n.reindex(out)
	if files {
		if err := n.lookAgain(); err != nil {
			return out.view(), err
		}
	}
	return out.view(), nil
}

func (n *Node) accept(tx *store.Tx, c *contactRecord) error {
	now := n.now()
	if c.Proposal != nil {
		c.promote(c.Proposal, now)
		c.Proposal = nil
		if err := unholdMessages(tx, c.Fingerprint); err != nil {
			return err
		}
	}
	c.State = StateActive
	for _, p := range c.Pending {
		if p.Expiry <= uint32(now.Unix()) {
			continue
		}
		if err := n.queueReceipt(tx, envelope.NewReceipt(p.Target, p.Expiry, p.Secret, n.startHops())); err != nil {
			return err
		}
	}
	c.Pending = nil
	if c.Prekey != nil { // the prekey their request came through is used: delete it
		if err := tx.Delete(colPrekeys, c.Prekey); err != nil {
			return err
		}
		n.idx.removeOwner(ownerPrekey([32]byte(c.Prekey)))
		c.Prekey = nil
	}
	_, _, err := n.sendContent(tx, c, &Content{Type: TypeAccept, Time: uint32(now.Unix())}, kindAccept)
	return err
}

// Reject refuses a contact request — the request and anything that came
// with it are deleted, and further envelopes from that identity are
// ignored — or a proposal of new keys from an active contact, which is
// dropped with what came on it.
func (n *Node) Reject(ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var fp string
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		fp = c.Fingerprint
		if c.Proposal != nil {
			c.Proposal, c.Pending = nil, nil
			if err := deleteMessagesOf(tx, fp, true); err != nil {
				return err
			}
			return saveContact(tx, c)
		}
		if c.State != StateRequest {
			return conflict(ReasonNotRequest, c.Name, "%s is not a contact request (state %s)", c.Name, c.State)
		}
		if err := deleteMessagesOf(tx, fp, false); err != nil {
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
	n.rebuildIndexQuietly()
	return nil
}

// Remove forgets a contact: its keys, its messages and what waits for it.
// Envelopes it sends later are carried like a stranger's and never opened.
// Adding its invite again starts afresh.
func (n *Node) Remove(ref string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out Contact
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		out = c.view()
		if err := deleteMessagesOf(tx, c.Fingerprint, false); err != nil {
			return err
		}
		if c.Prekey != nil {
			if err := tx.Delete(colPrekeys, c.Prekey); err != nil {
				return err
			}
		}
		return tx.Delete(colContacts, []byte(c.Fingerprint))
	})
	if err != nil {
		return Contact{}, err
	}
	n.rebuildIndexQuietly()
	return out, nil
}

// Rename gives a contact another local name, unique among contacts.
func (n *Node) Rename(ref, name string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	name, err := keys.NormalizeName(name)
	if err != nil {
		return Contact{}, badName(err)
	}
	var out Contact
	err = n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		if taken, err := nameTaken(tx, name, c.Fingerprint, nil); err != nil || taken {
			if err == nil {
				err = conflict(ReasonNameTaken, name, "a contact named %q already exists", name)
			}
			return err
		}
		c.Name = name
		out = c.view()
		return saveContact(tx, c)
	})
	return out, err
}

// Rekey starts a new session with a contact, without meeting again (SPEC
// §3.3): after a restored backup or a clock error, or just for fresh keys.
// For an active contact it sends a re-key request, which the contact must
// accept; for a pending one it sends the request again through the invite
// I added them by.
func (n *Node) Rekey(ref string) (Contact, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out *contactRecord
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		out = c
		switch c.State {
		case StatePending:
			inv, err := keys.ParseLink(c.Invite)
			if err != nil {
				return fmt.Errorf("cannot send the request to %s again: %w", c.Name, err)
			}
			if !n.now().Before(inv.ExpiresAt()) {
				return expired(c.Name, "the invite you added %s by expired on %s: ask them for a new one and add it", c.Name, inv.ExpiresAt().Format(time.DateOnly))
			}
			return n.initiate(tx, c, inv, c.Invite)
		case StateActive:
			return n.initiateRekey(tx, c)
		}
		return conflict(ReasonRequestWaiting, c.Name, "%s asked to be your contact: accept or reject the request instead", c.Name)
	})
	if err != nil {
		n.rebuildIndexQuietly()
		return Contact{}, err
	}
	n.reindex(out)
	return out.view(), nil
}

func (n *Node) initiateRekey(tx *store.Tx, c *contactRecord) error {
	now := n.now()
	p0 := keys.PeriodOf(now)
	fc, err := keys.InitiateRekey(n.id, c.public(), p0, n.rand)
	if err != nil {
		return err
	}
	var slot [2]byte
	if _, err := n.rand.Read(slot[:]); err != nil {
		return err
	}
	tag := keys.RekeyTag(c.RekeyBase, n.id.Public(), p0, binary.BigEndian.Uint16(slot[:])%keys.RekeySlots)
	content := &Content{Type: TypeRekey, Time: uint32(now.Unix()), Period: p0, Ratchet: fc.Ratchet, KEM: fc.KEMKey}
	masked := xor32(fc.EK, keys.RekeyMask(c.RekeyBase, tag))
	e, err := envelope.Seal(envelope.Sealing{
		Key:    keys.IntroSealKey(fc.SK),
		Tag:    tag,
		Commit: envelope.Commitment(keys.IntroReceiptSecret(fc.SK)),
		Expiry: n.envelopeExpiry(),
		Hops:   n.startHops(),
		Prefix: masked[:],
	}, content.Marshal())
	if err != nil {
		return fmt.Errorf("failed to seal re-key request: %w", err)
	}
	c.promote(&peerSession{S: fc.Session, Initiator: true, Rekey: true, Started: now.UTC()}, now)
	if err := n.recordSent(tx, c, e, kindRekey, keys.Sent{}); err != nil {
		return err
	}
	if err := saveContact(tx, c); err != nil {
		return err
	}
	return n.putEnvelope(tx, e.Marshal(), flagOwn) // epidemic whatever the routing: no offers of intro tags
}

func xor32(a, b [32]byte) [32]byte {
	for i := range a {
		a[i] ^= b[i]
	}
	return a
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
