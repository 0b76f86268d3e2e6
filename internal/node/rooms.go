package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Private groups at the node (SPEC §15): a room's state lives in the store
// (colRooms, erasable: it holds chain keys), invitations in colRoomInvites
// (erasable: a joiner's room key waits there), and what members wrote in
// colRoomMessages. Everything a room needs to travel pairwise — invite,
// join, welcome — rides in ordinary pairwise content (SPEC §5.3 types 5–7);
// posts are one group envelope each, opened through the tag index.
//
// The flow: an admin invites a contact (type 7); the contact's user joins
// (type 5: its member entry, signed with a room key made for the group);
// the admin's node commits the add when the join arrives from a contact it
// invited, and sends the new epoch's welcome (type 6) to every member —
// with the history to the newcomer. A removal sends the new welcome to
// everyone but the removed member.

const (
	colRooms        = "rooms"
	colRoomInvites  = "room_invites"
	colRoomMessages = "room_messages"
)

// RoomInfo is what callers see of a room.
type RoomInfo struct {
	ID      string       `json:"id"` // the group ID in hex
	Name    string       `json:"name"`
	Epoch   uint64       `json:"epoch"`
	Admin   bool         `json:"admin"`
	Members []RoomMember `json:"members"`
}

// RoomMember is one member as this node knows it.
type RoomMember struct {
	Name        string `json:"name"` // the contact's name, "me", or the fingerprint's start
	Fingerprint string `json:"fingerprint"`
	Admin       bool   `json:"admin,omitempty"`
}

// RoomInvitation is an invitation received (and not yet joined) or sent.
type RoomInvitation struct {
	Room string `json:"room"`
	Name string `json:"name"`
	From string `json:"from"` // the inviting contact's name
}

// RoomMessage is a post in a room.
type RoomMessage struct {
	ID        string    `json:"id"`
	Room      string    `json:"room"`
	Sender    string    `json:"sender"` // the contact's name, "me", or the fingerprint's start
	Direction string    `json:"direction"`
	Text      string    `json:"text"`
	Time      time.Time `json:"time"`
	// Earlier says the post was sealed in an epoch before the room's
	// current one: its sender had not yet seen the later changes.
	Earlier bool `json:"earlier,omitempty"`
	// Attachment is the post's file (attach.go), Text its caption.
	Attachment *Attachment `json:"attachment,omitempty"`
}

type inviteRecord struct {
	Group   string `json:"group"`
	Name    string `json:"name"`
	Contact string `json:"contact"` // fingerprint: who invited me, or whom I invited
	Out     bool   `json:"out"`
	RoomKey []byte `json:"room_key,omitempty"` // my room key seed, once I sent my join
	// Early holds welcomes of later epochs that arrived before the one
	// that lets me join (at most maxEarly), applied once I have joined.
	Early []earlyWelcome `json:"early,omitempty"`
}

type earlyWelcome struct {
	From    [32]byte `json:"from"`
	Welcome []byte   `json:"welcome"`
}

// maxEarly bounds the welcomes (or parts of one) a joiner holds before the
// part that lets it join; maxWelcome bounds one welcome part, so that it
// fits a pairwise envelope's largest bucket with room to spare.
const (
	maxEarly   = 16
	maxWelcome = 24 * 1024
)

type roomMessageRecord struct {
	ID        string      `json:"id"`
	Room      string      `json:"room"`
	Sender    string      `json:"sender"` // fingerprint
	Direction string      `json:"direction"`
	Text      string      `json:"text"`
	Time      time.Time   `json:"time"`
	Epoch     string      `json:"epoch"` // hex epoch hash
	Seq       uint64      `json:"seq"`
	File      *fileRecord `json:"file,omitempty"` // a post carrying a file (attach.go)
}

func inviteKey(group, fp string, out bool) []byte {
	if out {
		return []byte("out/" + group + "/" + fp)
	}
	return []byte("in/" + group)
}

// adminRoom resolves a room that I administer; what says what only an
// admin does, for the refusal.
func (n *Node) adminRoom(tx *store.Tx, ref, what string) (*room.Room, string, error) {
	r, id, err := n.resolveRoom(tx, ref, true)
	if err != nil {
		return nil, "", err
	}
	if !n.isAdmin(r) {
		return nil, "", invalid(ReasonNotAdmin, "only an admin of %q %s", r.Head().Name, what)
	}
	return r, id, nil
}

// resolveRoom finds a room by its ID's hex prefix (at least 4 characters)
// or its name; take says the caller will change it (and save it).
func (n *Node) resolveRoom(tx *store.Tx, ref string, take bool) (*room.Room, string, error) {
	ref = strings.TrimSpace(ref)
	var matches []*room.Room
	err := n.eachRoom(tx, func(id string, r *room.Room) {
		if (len(ref) >= 4 && strings.HasPrefix(id, strings.ToLower(ref))) || keys.NameKey(r.Head().Name) == keys.NameKey(ref) {
			matches = append(matches, r)
		}
	})
	switch {
	case err != nil:
		return nil, "", err
	case len(matches) == 0:
		return nil, "", invalid(ReasonNoRoom, "no room %q (give its name or the start of its ID)", ref)
	case len(matches) > 1:
		return nil, "", invalid(ReasonAmbiguous, "%q matches %d rooms; give more of the ID", ref, len(matches))
	}
	id := hex.EncodeToString(matches[0].Group[:])
	if take {
		n.roomc.drop(id)
	}
	return matches[0], id, nil
}

// CreateRoom starts a private group with me as its only member and admin.
func (n *Node) CreateRoom(name string) (RoomInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	norm, err := keys.NormalizeName(name)
	if err != nil {
		return RoomInfo{}, badName(err)
	}
	var info RoomInfo
	err = n.update(func(tx *store.Tx) error {
		r, err := room.Create(n.id, norm, keys.PeriodOf(n.now()), n.rand)
		if err != nil {
			return err
		}
		h := r.Head().Hash
		r.ForgetSecret(h) // nobody to welcome yet
		if err := n.saveRoom(tx, r); err != nil {
			return err
		}
		n.idx.setRoom(hex.EncodeToString(r.Group[:]), r)
		info, err = n.roomInfo(tx, r)
		return err
	})
	return info, err
}

// InviteToRoom sends a contact an invitation to a room I administer.
func (n *Node) InviteToRoom(roomRef, contactRef string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.update(func(tx *store.Tx) error {
		r, id, err := n.adminRoom(tx, roomRef, "invites")
		if err != nil {
			return err
		}
		c, err := resolve(tx, contactRef)
		if err != nil {
			return err
		}
		switch c.State {
		case StateRequest:
			return conflict(ReasonRequestWaiting, c.Name, "%s asked to be your contact: accept the request first", c.Name)
		case StatePending:
			return conflict(ReasonNotAnswered, c.Name, "%s has not answered your contact request yet: invite them once they have", c.Name)
		case StateActive:
		default:
			return conflict(ReasonNotAnswered, c.Name, "%s is not an active contact", c.Name)
		}
		if _, member := r.Head().Member([32]byte(c.Sign)); member {
			return invalid(ReasonAlreadyContact, "%s is already in %q", c.Name, r.Head().Name)
		}
		name := r.Head().Name
		payload := append(append(bytes.Clone(r.Group[:]), byte(len(name))), name...)
		if _, _, err := n.sendContent(tx, c, &Content{Type: TypeRoomInvite, Time: n.unixNow(), Room: payload}, kindRoom); err != nil {
			return err
		}
		return putJSON(tx, colRoomInvites, inviteKey(id, c.Fingerprint, true),
			inviteRecord{Group: id, Name: name, Contact: c.Fingerprint, Out: true}, n.now().Add(n.cfg.Retention))
	})
}

// RoomInvitations lists the invitations I received and have not joined.
func (n *Node) RoomInvitations() ([]RoomInvitation, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []RoomInvitation
	err := n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colRoomInvites, func(v []byte, _ time.Time) error {
			var ir inviteRecord
			if err := json.Unmarshal(v, &ir); err != nil {
				return err
			}
			if ir.Out {
				return nil
			}
			c, err := loadContact(tx, ir.Contact)
			if err != nil || c == nil {
				return err
			}
			out = append(out, RoomInvitation{Room: ir.Group, Name: ir.Name, From: c.Name})
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out, err
}

// JoinRoom answers an invitation: it makes my room key for the group and
// sends my member entry to the contact who invited me. The room appears
// when that admin's welcome arrives.
func (n *Node) JoinRoom(ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.update(func(tx *store.Tx) error {
		var found *inviteRecord
		err := tx.ForEach(colRoomInvites, func(v []byte, _ time.Time) error {
			var ir inviteRecord
			if err := json.Unmarshal(v, &ir); err == nil && !ir.Out &&
				(strings.HasPrefix(ir.Group, strings.ToLower(ref)) && len(ref) >= 4 || keys.NameKey(ir.Name) == keys.NameKey(ref)) {
				found = &ir
			}
			return nil
		})
		if err != nil {
			return err
		}
		if found == nil {
			return invalid(ReasonNoRoom, "no invitation to %q", ref)
		}
		c, err := loadContact(tx, found.Contact)
		if err != nil || c == nil {
			return fmt.Errorf("failed to join: the inviting contact is gone (%v)", err)
		}
		rk, err := room.NewRoomKey(n.rand)
		if err != nil {
			return err
		}
		g, _ := hex.DecodeString(found.Group)
		m := room.NewMember(n.id, [32]byte(g), rk.Public().(ed25519.PublicKey))
		payload := append(bytes.Clone(g), memberBytes(m)...)
		if _, _, err := n.sendContent(tx, c, &Content{Type: TypeRoomJoin, Time: n.unixNow(), Room: payload}, kindRoom); err != nil {
			return err
		}
		found.RoomKey = rk.Seed()
		return putJSON(tx, colRoomInvites, inviteKey(found.Group, "", false), found, n.now().Add(n.cfg.Retention))
	})
}

func memberBytes(m room.Member) []byte {
	b := make([]byte, 0, roomMemberEntry)
	b = append(b, m.Ed[:]...)
	b = append(b, m.X[:]...)
	b = append(b, m.Key[:]...)
	return append(b, m.Join[:]...)
}

func memberFrom(b []byte) room.Member {
	var m room.Member
	copy(m.Ed[:], b[0:32])
	copy(m.X[:], b[32:64])
	copy(m.Key[:], b[64:96])
	copy(m.Join[:], b[96:160])
	return m
}

// RemoveFromRoom removes a member from a room I administer: a new epoch
// whose secret goes to everyone else.
func (n *Node) RemoveFromRoom(roomRef, contactRef string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.update(func(tx *store.Tx) error {
		r, _, err := n.resolveRoom(tx, roomRef, true)
		if err != nil {
			return err
		}
		target, name, err := n.roomMemberRef(tx, r, contactRef) // roomview.go
		if err != nil {
			return err
		}
		if _, ok := r.Head().Member(target); !ok {
			return invalid(ReasonNoRoom, "%s is not in %q", name, r.Head().Name)
		}
		if !n.isAdmin(r) {
			return invalid(ReasonNotAdmin, "only an admin of %q removes members", r.Head().Name)
		}
		return n.commit(tx, r, &room.Change{Kind: room.KindRemove, Target: target}, nil, func(fp string) (*contactRecord, error) {
			return loadContact(tx, fp)
		})
	})
}

// RenameRoom renames a room I administer.
func (n *Node) RenameRoom(roomRef, name string) error {
	norm, err := keys.NormalizeName(name)
	if err != nil {
		return badName(err)
	}
	return n.adminChange(roomRef, func(_ *store.Tx, r *room.Room) (*room.Change, error) {
		if r.Head().Name == norm { // a new epoch, welcomes to everyone, for nothing
			return nil, invalid(ReasonInvalidName, "the group is already called %q", norm)
		}
		return &room.Change{Kind: room.KindRename, Name: norm}, nil
	})
}

// MakeRoomAdmin makes a member (a contact) an admin of a room I administer.
func (n *Node) MakeRoomAdmin(roomRef, contactRef string) error {
	return n.adminChange(roomRef, func(tx *store.Tx, r *room.Room) (*room.Change, error) {
		target, name, err := n.roomMemberRef(tx, r, contactRef)
		if err != nil {
			return nil, err
		}
		switch m, ok := r.Head().Member(target); {
		case !ok:
			return nil, invalid(ReasonNoRoom, "%s is not in %q", name, r.Head().Name)
		case m.Admin:
			return nil, invalid(ReasonAlreadyContact, "%s is already an admin of %q", name, r.Head().Name)
		}
		return &room.Change{Kind: room.KindAdmin, Target: target}, nil
	})
}

func (n *Node) adminChange(roomRef string, build func(*store.Tx, *room.Room) (*room.Change, error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.update(func(tx *store.Tx) error {
		r, _, err := n.adminRoom(tx, roomRef, "changes it")
		if err != nil {
			return err
		}
		c, err := build(tx, r)
		if err != nil {
			return err
		}
		return n.commit(tx, r, c, nil, func(fp string) (*contactRecord, error) { return loadContact(tx, fp) })
	})
}

// LeaveRoom leaves a room: my signed leave goes to an admin who is my
// active contact, who records it in a new epoch; my copy of the room and
// its keys are deleted at once.
func (n *Node) LeaveRoom(roomRef string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.update(func(tx *store.Tx) error {
		r, id, err := n.resolveRoom(tx, roomRef, true)
		if err != nil {
			return err
		}
		stmt, err := r.LeaveStatement()
		if err != nil {
			return err
		}
		var admin *contactRecord
		for _, m := range r.Head().Members() {
			if m.Admin && m.Ed != n.selfEd() {
				if c, err := loadContact(tx, fingerprintOf(m)); err == nil && c != nil && c.State == StateActive {
					admin = c
					break
				}
			}
		}
		if admin == nil {
			return invalid(ReasonNotAdmin, "no other admin of %q is a contact to record the leave", r.Head().Name)
		}
		payload := append(bytes.Clone(r.Group[:]), stmt[:]...)
		if _, _, err := n.sendContent(tx, admin, &Content{Type: TypeRoomLeave, Time: n.unixNow(), Room: payload}, kindRoom); err != nil {
			return err
		}
		n.idx.removeOwner(ownerRoom(id))
		return tx.Delete(colRooms, []byte(id))
	})
}

// commit makes a change on the room's head and welcomes every member of
// the new epoch but me: an active contact (and the newcomer, if any, who
// must be one, with the history) pairwise; any other member — one another
// admin added — by sealed welcomes in a group message of the parent epoch
// (SPEC §15.4). contactOf loads a contact the way the caller's transaction
// does (ingest keeps the ones it loaded and stores them at the end: a
// second copy loaded here would be overwritten by the first, and its
// session counter reused).
//
// A notCommitted error left the room as it was; any other
// error came after the room took the change, so the caller must abort its
// transaction (an ingest batch would otherwise store a change whose
// welcomes were never sent).
func (n *Node) commit(tx *store.Tx, r *room.Room, c *room.Change, newcomer *[32]byte, contactOf func(fp string) (*contactRecord, error)) error {
	if newcomer != nil {
		nc, err := contactOf(keys.Public{Sign: newcomer[:], DH: c.Member.X}.Fingerprint())
		if err != nil {
			return err
		}
		if nc == nil || nc.State != StateActive {
			return notCommitted{errors.New("failed to welcome a newcomer who is not an active contact")}
		}
	}
	parent := r.Head().Hash
	h, err := r.Commit(c, keys.PeriodOf(n.now()), n.rand)
	if err != nil {
		return notCommitted{err}
	}
	self := n.selfEd()
	var sealed [][32]byte
	for _, m := range r.Head().Members() {
		if m.Ed == self {
			continue
		}
		isNew := newcomer != nil && m.Ed == *newcomer
		mc, err := contactOf(fingerprintOf(m))
		if err != nil {
			return err
		}
		if mc == nil || mc.State != StateActive { // not the newcomer: checked above
			sealed = append(sealed, m.X)
			continue
		}
		w, err := r.Welcome(h, isNew)
		if err != nil {
			return err
		}
		for _, part := range w.Split(maxWelcome) { // a long history goes in several envelopes
			if _, _, err := n.sendContent(tx, mc, &Content{Type: TypeRoomWelcome, Time: n.unixNow(), Room: part.Marshal()}, kindRoom); err != nil {
				return err
			}
		}
	}
	if err := n.sendSealedWelcomes(tx, r, parent, h, sealed); err != nil {
		return err
	}
	r.ForgetSecret(h)
	if err := n.saveRoom(tx, r); err != nil {
		return err
	}
	n.idx.setRoom(hex.EncodeToString(r.Group[:]), r)
	return nil
}

// notCommitted is an error of commit that left the room unchanged.
type notCommitted struct{ err error }

func (e notCommitted) Error() string { return e.err.Error() }
func (e notCommitted) Unwrap() error { return e.err }

func fingerprintOf(m room.MemberState) string {
	return keys.Public{Sign: m.Ed[:], DH: m.X}.Fingerprint()
}

func (n *Node) selfEd() (ed [32]byte) {
	copy(ed[:], n.id.Public().Sign)
	return ed
}

func (n *Node) isAdmin(r *room.Room) bool {
	m, ok := r.Head().Member(n.selfEd())
	return ok && m.Admin
}

func (n *Node) unixNow() uint32 { return uint32(n.now().Unix()) }

// SendRoom posts text to a room: one envelope for all members.
func (n *Node) SendRoom(roomRef, text string) (RoomMessage, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := checkText(text); err != nil {
		return RoomMessage{}, err
	}
	now := n.now().UTC().Truncate(time.Second)
	var msg RoomMessage
	err := n.update(func(tx *store.Tx) (err error) {
		msg, err = n.postRoom(tx, roomRef, &Content{Type: TypeText, Time: uint32(now.Unix()), Text: text}, nil, now)
		return err
	})
	return msg, err
}

// postRoom seals content as a post to a room and queues it, with its
// record; file is the file it carries, if any (attach.go).
func (n *Node) postRoom(tx *store.Tx, roomRef string, content *Content, file *fileRecord, now time.Time) (RoomMessage, error) {
	r, id, err := n.resolveRoom(tx, roomRef, true)
	if err != nil {
		return RoomMessage{}, err
	}
	e, err := r.Seal(keys.PeriodOf(now), content.Marshal(), n.envelopeExpiry(), n.startHops(), n.rand)
	if err != nil {
		return RoomMessage{}, err
	}
	if err := n.saveRoom(tx, r); err != nil { // the chain moved: stored before the envelope can leave
		return RoomMessage{}, err
	}
	head := r.Head().Hash
	rec := roomMessageRecord{ID: e.ID().String(), Room: id, Sender: n.id.Public().Fingerprint(), Direction: "out",
		Text: content.Text, Time: now, Epoch: hex.EncodeToString(head[:]), File: file}
	if rec.Seq, err = nextSeq(tx); err != nil {
		return RoomMessage{}, err
	}
	if err := putJSON(tx, colRoomMessages, []byte(rec.ID), rec, now.Add(n.cfg.History)); err != nil {
		return RoomMessage{}, err
	}
	msg := RoomMessage{ID: rec.ID, Room: id, Sender: "me", Direction: "out", Text: content.Text, Time: now}
	if file != nil {
		msg.Attachment = file.view()
	}
	return msg, n.putEnvelope(tx, e.Marshal(), n.ownFlags())
}

// RoomMessages lists a room's posts, oldest first.
func (n *Node) RoomMessages(roomRef string) ([]RoomMessage, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []RoomMessage
	var seqs []uint64
	err := n.st.View(func(tx *store.Tx) error {
		r, id, err := n.resolveRoom(tx, roomRef, false)
		if err != nil {
			return err
		}
		head := r.Head().Hash
		names, err := contactNames(tx)
		if err != nil {
			return err
		}
		return tx.ForEach(colRoomMessages, func(v []byte, _ time.Time) error {
			var rec roomMessageRecord
			if err := json.Unmarshal(v, &rec); err != nil || rec.Room != id {
				return err
			}
			sender := names[rec.Sender]
			switch {
			case rec.Direction == "out":
				sender = "me"
			case sender == "":
				sender = rec.Sender[:8]
			}
			m := RoomMessage{ID: rec.ID, Room: id, Sender: sender, Direction: rec.Direction, Text: rec.Text,
				Time: rec.Time, Earlier: rec.Epoch != hex.EncodeToString(head[:])}
			if rec.File != nil {
				m.Attachment = rec.File.view()
				if rec.Direction == "in" {
					if err := n.fileProgress(tx, rec.ID, m.Attachment); err != nil {
						return err
					}
				}
			}
			out = append(out, m)
			seqs = append(seqs, rec.Seq)
			return nil
		})
	})
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := out[idx[a]], out[idx[b]]
		if !x.Time.Equal(y.Time) {
			return x.Time.Before(y.Time)
		}
		return seqs[idx[a]] < seqs[idx[b]]
	})
	sorted := make([]RoomMessage, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted, err
}

func contactNames(tx *store.Tx) (map[string]string, error) {
	cs, err := allContacts(tx)
	names := map[string]string{}
	for _, c := range cs {
		names[c.Fingerprint] = c.Name
	}
	return names, err
}

// sendSealedWelcomes seals epoch h's secret to the members in to, in group
// messages of the parent epoch of at most room.MaxSealedBoxes boxes each.
func (n *Node) sendSealedWelcomes(tx *store.Tx, r *room.Room, parent, h room.Hash, to [][32]byte) error {
	for len(to) > 0 {
		k := min(len(to), room.MaxSealedBoxes)
		sw, err := r.SealWelcomes(h, to[:k])
		if err != nil {
			return err
		}
		to = to[k:]
		content := &Content{Type: TypeRoomSealed, Time: n.unixNow(), Room: sw.Marshal()}
		e, err := r.SealIn(parent, keys.PeriodOf(n.now()), content.Marshal(), n.envelopeExpiry(), n.startHops(), n.rand)
		if err != nil {
			return fmt.Errorf("failed to send sealed welcomes: %w", err)
		}
		if err := n.putEnvelope(tx, e.Marshal(), n.ownFlags()); err != nil {
			return err
		}
	}
	return nil
}

// Rooms lists the rooms I am in.
func (n *Node) Rooms() ([]RoomInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []RoomInfo
	err := n.st.View(func(tx *store.Tx) error {
		rs, err := n.allRooms(tx, false)
		if err != nil {
			return err
		}
		for _, r := range rs {
			info, err := n.roomInfo(tx, r)
			if err != nil {
				return err
			}
			out = append(out, info)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (n *Node) roomInfo(tx *store.Tx, r *room.Room) (RoomInfo, error) {
	names, err := contactNames(tx)
	if err != nil {
		return RoomInfo{}, err
	}
	s := r.Head()
	info := RoomInfo{ID: hex.EncodeToString(r.Group[:]), Name: s.Name, Epoch: s.Epoch, Admin: n.isAdmin(r)}
	for _, m := range s.Members() {
		fp := fingerprintOf(m)
		name := names[fp]
		switch {
		case m.Ed == n.selfEd():
			name = "me"
		case name == "":
			name = fp[:8]
		}
		info.Members = append(info.Members, RoomMember{Name: name, Fingerprint: fp, Admin: m.Admin})
	}
	return info, nil
}

// roomContent handles a room invite, join or welcome that arrived from an
// active contact over our pairwise session. What does not fit — a join
// nobody invited, a welcome for a room I never joined — is dropped.
func (in *ingest) roomContent(c *contactRecord, content *Content) error {
	if c.State != StateActive {
		return nil // a stranger's room content is not acted on
	}
	var from [32]byte
	copy(from[:], c.Sign)
	switch content.Type {
	case TypeRoomInvite:
		id := hex.EncodeToString(content.Room[:32])
		if r, err := in.n.loadRoom(in.tx, id, false); err != nil || r != nil {
			return err // already in it
		}
		return putJSON(in.tx, colRoomInvites, inviteKey(id, "", false),
			inviteRecord{Group: id, Name: content.Name, Contact: c.Fingerprint}, in.now.Add(in.n.cfg.Retention))
	case TypeRoomJoin:
		return in.roomJoin(c, content)
	case TypeRoomWelcome:
		return in.roomWelcome(c, from, content)
	case TypeRoomLeave:
		return in.roomLeave(c, from, content)
	}
	return nil
}

// roomLeave records a member's leave, sent to me as an admin: a new epoch
// without it.
func (in *ingest) roomLeave(c *contactRecord, from [32]byte, content *Content) error {
	id := hex.EncodeToString(content.Room[:32])
	r, err := in.room(id)
	if err != nil || r == nil || !in.n.isAdmin(r) {
		return err
	}
	if _, member := r.Head().Member(from); !member {
		return nil
	}
	change := &room.Change{Kind: room.KindLeave, Target: from, Leave: [64]byte(content.Room[32:])}
	if err := in.n.commit(in.tx, r, change, nil, in.contactOf); err != nil {
		if !errors.As(err, new(notCommitted)) {
			return err // the room took the change: nothing of it may be stored
		}
		in.n.log.Warn("failed to record a leave", "room", id[:8], "err", err)
		return nil
	}
	in.rooms[id] = r
	in.changed = true
	return nil
}

func (in *ingest) roomJoin(c *contactRecord, content *Content) error {
	id := hex.EncodeToString(content.Room[:32])
	key := inviteKey(id, c.Fingerprint, true)
	var ir inviteRecord
	if ok, err := getJSON(in.tx, colRoomInvites, key, &ir); err != nil || !ok {
		return err // I did not invite them
	}
	r, err := in.room(id)
	if err != nil || r == nil {
		return err
	}
	m := memberFrom(content.Room[32:])
	if !bytes.Equal(m.Ed[:], c.Sign) {
		in.rep.Invalid++ // a join for someone else
		return nil
	}
	if err := in.n.commit(in.tx, r, &room.Change{Kind: room.KindAdd, Member: m}, &m.Ed, in.contactOf); err != nil {
		if !errors.As(err, new(notCommitted)) {
			return err // the room took the change: nothing of it may be stored
		}
		in.n.log.Warn("failed to add a member who joined", "room", id[:8], "err", err)
		return nil
	}
	in.rooms[id] = r
	in.changed = true
	return in.tx.Delete(colRoomInvites, key)
}

func (in *ingest) roomWelcome(c *contactRecord, from [32]byte, content *Content) error {
	w, err := room.ParseWelcome(content.Room)
	if err != nil {
		in.rep.Invalid++
		return nil
	}
	id := hex.EncodeToString(w.Group[:])
	r, err := in.room(id)
	if err != nil {
		return err
	}
	if r == nil { // a newcomer: only for an invitation I answered
		key := inviteKey(id, "", false)
		var ir inviteRecord
		exp, ok, err := getJSONExpiry(in.tx, colRoomInvites, key, &ir)
		if err != nil || !ok || ir.RoomKey == nil {
			return err
		}
		if first, err := room.ParseChange(w.Changes[0]); err != nil || first.Kind != room.KindCreate {
			if len(ir.Early) < maxEarly { // a later epoch's welcome overtook mine
				ir.Early = append(ir.Early, earlyWelcome{From: from, Welcome: content.Room})
			}
			return putJSON(in.tx, colRoomInvites, key, ir, exp)
		}
		if r, err = room.Join(w, in.n.id, ed25519.NewKeyFromSeed(ir.RoomKey), from); err != nil {
			in.n.log.Warn("failed to join a room", "room", id[:8], "err", err)
			return nil
		}
		for _, ew := range ir.Early {
			if w, err := room.ParseWelcome(ew.Welcome); err == nil {
				if err := r.AcceptWelcome(w, ew.From); err != nil {
					in.n.log.Warn("refused a room welcome", "room", id[:8], "err", err)
				}
			}
		}
		if err := in.tx.Delete(colRoomInvites, key); err != nil {
			return err
		}
	} else if _, member := r.Head().Member(from); !member {
		in.n.log.Warn("ignored a room welcome from someone not in the room", "room", id[:8])
		return nil
	} else if err := r.AcceptWelcome(w, from); err != nil {
		in.n.log.Warn("refused a room welcome", "room", id[:8], "err", err)
		return nil
	}
	in.rooms[id] = r
	in.n.idx.setRoom(id, r)
	in.changed = true
	return nil
}

// contactOf is commit's contact loader inside ingest: the batch's own copy,
// marked changed.
func (in *ingest) contactOf(fp string) (*contactRecord, error) {
	mc, err := in.contact(fp)
	if mc != nil {
		in.touch(mc)
	}
	return mc, err
}

// room loads a room once per batch; flush stores it.
func (in *ingest) room(id string) (*room.Room, error) {
	if r, ok := in.rooms[id]; ok {
		return r, nil
	}
	r, err := in.n.loadRoom(in.tx, id, true)
	if r != nil {
		in.rooms[id] = r
	}
	return r, err
}

// openRoom opens a group envelope whose tag the index holds. Whatever
// happens, the envelope is then carried like any other (it has more
// readers than me, and no receipt purges it), so openRoom reports it as
// not handled.
func (in *ingest) openRoom(id envelope.ID, e *envelope.Envelope, ref slotRef) error {
	r, err := in.room(ref.owner)
	if err != nil || r == nil {
		return err
	}
	m, err := r.Open(e, keys.PeriodOf(in.now))
	if errors.Is(err, room.ErrReplay) {
		return nil
	}
	if err != nil {
		in.rep.Invalid++
		return nil
	}
	in.n.idx.setRoom(ref.owner, r)
	in.changed = true
	content, err := ParseContent(m.Content)
	if err == nil && content.Type == TypeRoomSealed {
		return in.roomSealed(r, ref.owner, m, content)
	}
	if err != nil || content.Type != TypeText && content.Type != TypeAttachment {
		in.rep.Invalid++
		return nil
	}
	rec := roomMessageRecord{ID: id.String(), Room: ref.owner, Sender: keys.Public{Sign: m.Sender[:], DH: m.X}.Fingerprint(), Direction: "in", Text: content.Text,
		Time: content.When(), Epoch: hex.EncodeToString(m.Epoch[:])}
	if content.Type == TypeAttachment { // a member's file: fetched like a contact's (transfer.go)
		if rec.File, err = in.startTransfer(id, content); err != nil {
			return err
		}
	}
	if rec.Seq, err = nextSeq(in.tx); err != nil {
		return err
	}
	in.rep.Messages++
	in.rep.Opened = append(in.rep.Opened, id)
	return putJSON(in.tx, colRoomMessages, []byte(rec.ID), rec, in.now.Add(in.n.cfg.History))
}

// roomSealed takes sealed welcomes from a group message: a box for me gives
// me the new epoch's keys (room.OpenSealed checks that the message's sender
// signed the epoch).
func (in *ingest) roomSealed(r *room.Room, id string, m *room.Message, content *Content) error {
	sw, err := room.ParseSealedWelcomes(content.Room)
	if err != nil {
		in.rep.Invalid++
		return nil
	}
	switch err := r.OpenSealed(sw, m.Sender, in.n.id.DH); {
	case errors.Is(err, room.ErrNotForMe):
	case err != nil:
		in.n.log.Warn("refused sealed room welcomes", "room", id[:8], "err", err)
	default:
		in.n.idx.setRoom(id, r)
	}
	return nil
}

// forgetRoomKeys deletes every room's period keys before oldest (SPEC
// §15.6), at maintenance when the retention window has moved.
func (n *Node) forgetRoomKeys(oldest keys.Period) error {
	var count int
	if err := n.st.View(func(tx *store.Tx) (err error) { count, err = tx.Count(colRooms); return err }); err != nil || count == 0 {
		return err
	}
	return n.update(func(tx *store.Tx) error {
		rs, err := n.allRooms(tx, true)
		if err != nil {
			return err
		}
		for _, r := range rs {
			r.ForgetBefore(oldest)
			if err := n.saveRoom(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}
