package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Message statuses: what is known, no more.
const (
	StatusQueued    = "queued"    // written here; no neighbour has taken it yet
	StatusCarried   = "carried"   // handed to at least one neighbour; no receipt yet
	StatusDelivered = "delivered" // the recipient's receipt came back
	StatusExpired   = "expired"   // no receipt, and no copy can arrive any more
	StatusReceived  = "received"  // incoming
)

// Kinds of record: what the user wrote or read (texts), and the envelopes
// the node wrote for the pair's keys, kept to match their receipts.
const (
	kindText    = ""
	kindRequest = "request"
	kindAccept  = "accept"
	kindRekey   = "rekey"
	kindRoom    = "room" // a room invite, join or welcome (rooms.go)
)

type messageRecord struct {
	ID        string    `json:"id"`
	Contact   string    `json:"contact"` // fingerprint
	Direction string    `json:"direction"`
	Kind      string    `json:"kind,omitempty"`
	Text      string    `json:"text"`
	Time      time.Time `json:"time"`
	Status    string    `json:"status"`
	Commit    []byte    `json:"commit,omitempty"` // outgoing: to check the receipt
	Seq       uint64    `json:"seq"`              // local order of arrival, to break ties
	// Outgoing: the envelope's expiry, and what its receipt acknowledges.
	Expiry   uint32  `json:"expiry,omitempty"`
	Session  [8]byte `json:"session,omitzero"`
	Epoch    uint64  `json:"epoch,omitempty"`
	Prefixed bool    `json:"prefixed,omitempty"`
	// Held: incoming on a proposed session, hidden until it is accepted.
	Held bool `json:"held,omitempty"`
	// File: the message's attachment (attach.go); Parent: for a chunk I
	// sent (kindChunk), the message whose file it is.
	File   *fileRecord `json:"file,omitempty"`
	Parent string      `json:"parent,omitempty"`
}

// nextSeq returns the next local sequence number.
func nextSeq(tx *store.Tx) (uint64, error) {
	var seq uint64
	if _, err := getJSON(tx, colSelf, []byte("seq"), &seq); err != nil {
		return 0, err
	}
	seq++
	return seq, putJSON(tx, colSelf, []byte("seq"), seq, store.Forever)
}

// putMessage stores a message record with the next sequence number.
func putMessage(tx *store.Tx, r *messageRecord, expires time.Time) error {
	var err error
	if r.Seq, err = nextSeq(tx); err != nil {
		return err
	}
	return putJSON(tx, colMessages, []byte(r.ID), r, expires)
}

// Message is what callers see of a message.
type Message struct {
	ID        string    `json:"id"`
	Contact   string    `json:"contact"`
	Direction string    `json:"direction"`
	Text      string    `json:"text"`
	Time      time.Time `json:"time"`
	Status    string    `json:"status"`
	// Attachment is the message's file, if it carries one; Text is then its
	// caption.
	Attachment *Attachment `json:"attachment,omitempty"`
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// The first byte of a stored envelope record: bit 0 says this node wrote it
// (its outbox, or its receipts); bits 1-7 hold the spray-and-wait copies it
// may still hand out (0: unlimited, epidemic; see Config.Copies).
const flagOwn = 1

func copiesOf(flags byte) uint8           { return flags >> 1 }
func withCopies(flags byte, c uint8) byte { return flags&flagOwn | c<<1 }

// ownFlags are the flags of a new envelope of mine: my routing policy's
// copies, less a random quarter at most when there are eight or more, so
// that the copies a neighbour hands on do not say it wrote the envelope
// (SPEC §12.7).
func (n *Node) ownFlags() byte {
	c := n.cfg.Copies
	if c >= 8 {
		var b [1]byte
		if _, err := io.ReadFull(n.rand, b[:]); err == nil {
			c -= b[0] % (c/4 + 1)
		}
	}
	return withCopies(flagOwn, c)
}

func (n *Node) envelopeExpiry() uint32 { return expiryFor(n.now().Add(n.cfg.Retention)) }

// sendContent seals content on the contact's primary session, stores the
// envelope in the outbox, its record and the advanced session, in the
// caller's transaction: the session is stored before the envelope can
// leave, so a counter is never used twice by this store.
func (n *Node) sendContent(tx *store.Tx, c *contactRecord, content *Content, kind string) (*envelope.Envelope, keys.Sent, error) {
	if len(c.Sessions) == 0 {
		return nil, keys.Sent{}, fmt.Errorf("no session with %s", c.Name)
	}
	e, sent, err := c.Sessions[0].S.Seal(keys.PeriodOf(n.now()), content.Marshal(), n.envelopeExpiry(), n.startHops(), n.rand)
	if err != nil {
		return nil, sent, err
	}
	if kind != kindText {
		if err := n.recordSent(tx, c, e, kind, sent); err != nil {
			return nil, sent, err
		}
	}
	if err := saveContact(tx, c); err != nil {
		return nil, sent, err
	}
	// Sealing may have opened my next epoch, which names the tags of the
	// peer's next one: the index must expect them now, or the answer is
	// carried past me as someone else's mail.
	n.reindex(c)
	return e, sent, n.putEnvelope(tx, e.Marshal(), n.ownFlags())
}

// recordSent keeps what is needed to match the receipt of an envelope the
// node wrote for the pair's keys (not shown as a message).
func (n *Node) recordSent(tx *store.Tx, c *contactRecord, e *envelope.Envelope, kind string, sent keys.Sent) error {
	rec := messageRecord{ID: e.ID().String(), Contact: c.Fingerprint, Direction: "out", Kind: kind,
		Time: n.now().UTC(), Status: StatusQueued, Commit: e.Commit[:], Expiry: e.Expiry,
		Session: c.Sessions[0].S.ID, Epoch: sent.Epoch, Prefixed: sent.Prefixed}
	return putMessage(tx, &rec, e.ExpiresAt())
}

// Send writes text to a contact: it is sealed and queued at once, and leaves
// with the next bundle or neighbour.
func (n *Node) Send(ref, text string) (Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := checkText(text); err != nil {
		return Message{}, err
	}
	now := n.now().UTC().Truncate(time.Second)
	var msg Message
	err := n.update(func(tx *store.Tx) error {
		c, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		if c.State == StateRequest {
			return conflict(ReasonRequestWaiting, c.Name, "%s asked to be your contact: accept the request first", c.Name)
		}
		e, sent, err := n.sendContent(tx, c, &Content{Type: TypeText, Time: uint32(now.Unix()), Text: text}, kindText)
		if err != nil {
			return err
		}
		rec := messageRecord{ID: e.ID().String(), Contact: c.Fingerprint, Direction: "out", Text: text,
			Time: now, Status: StatusQueued, Commit: e.Commit[:], Expiry: e.Expiry,
			Session: c.Sessions[0].S.ID, Epoch: sent.Epoch, Prefixed: sent.Prefixed}
		msg = rec.view(c.Name, n.now())
		return putMessage(tx, &rec, now.Add(n.cfg.History))
	})
	return msg, err
}

func (r *messageRecord) view(name string, now time.Time) Message {
	status := r.Status
	if r.File != nil && r.Direction == "out" && status == StatusDelivered && r.File.Delivered < r.File.Chunks {
		status = StatusCarried // the message arrived, not yet all of its file (SPEC §16.10)
	}
	if (status == StatusQueued || status == StatusCarried) && r.Expiry != 0 && now.Unix() >= int64(r.Expiry) {
		status = StatusExpired // every copy has expired: it can no longer arrive
	}
	m := Message{ID: r.ID, Contact: name, Direction: r.Direction, Text: r.Text, Time: r.Time, Status: status}
	if r.File != nil {
		m.Attachment = r.File.view()
		if r.Direction == "out" {
			m.Attachment.Have, m.Attachment.Complete = r.File.Delivered, r.File.Delivered >= r.File.Chunks
			m.Attachment.Carried = r.File.Carried
		}
	}
	return m
}

// Messages lists messages, oldest first, with one contact or all. Messages
// that came with a contact request stay out until the request is accepted.
func (n *Node) Messages(ref string) ([]Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	type seqMsg struct {
		Message
		seq uint64
	}
	var all []seqMsg
	now := n.now()
	err := n.st.View(func(tx *store.Tx) error {
		var only *contactRecord
		if ref != "" {
			var err error
			if only, err = resolve(tx, ref); err != nil {
				return err
			}
		}
		cs, err := allContacts(tx)
		if err != nil {
			return err
		}
		byFP := map[string]*contactRecord{}
		for _, c := range cs {
			byFP[c.Fingerprint] = c
		}
		return tx.ForEach(colMessages, func(v []byte, _ time.Time) error {
			var r messageRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("failed to decode message: %w", err)
			}
			c := byFP[r.Contact]
			if c == nil || c.State == StateRequest || r.Held || r.Kind != kindText || (only != nil && only.Fingerprint != r.Contact) {
				return nil
			}
			m := r.view(c.Name, now)
			if m.Attachment != nil && r.Direction == "in" {
				if err := n.fileProgress(tx, r.ID, m.Attachment); err != nil {
					return err
				}
			}
			all = append(all, seqMsg{m, r.Seq})
			return nil
		})
	})
	sort.Slice(all, func(i, j int) bool {
		if !all[i].Time.Equal(all[j].Time) {
			return all[i].Time.Before(all[j].Time)
		}
		return all[i].seq < all[j].seq
	})
	out := make([]Message, len(all))
	for i := range all {
		out[i] = all[i].Message
	}
	return out, err
}

// deleteMessagesOf deletes a contact's messages, or only those held on a
// proposed session.
func deleteMessagesOf(tx *store.Tx, fp string, heldOnly bool) error {
	var ids []string
	kept := map[string]int{} // the chunks of the files I sent that are kept
	err := tx.ForEach(colMessages, func(v []byte, _ time.Time) error {
		var r messageRecord
		if err := json.Unmarshal(v, &r); err == nil && r.Contact == fp && (r.Held || !heldOnly) {
			ids = append(ids, r.ID)
			if r.File != nil && r.File.Kept {
				kept[r.ID] = r.File.Chunks
			}
		}
		return nil
	})
	for _, id := range ids {
		if err := tx.Delete(colMessages, []byte(id)); err != nil {
			return err
		}
		if err := deleteFile(tx, id); err != nil { // transfer.go
			return err
		}
		if err := dropSent(tx, id, kept[id]); err != nil { // sentfiles.go
			return err
		}
	}
	return err
}

// EnvelopeInfo describes one envelope this node holds.
type EnvelopeInfo struct {
	ID      string    `json:"id"`
	Size    int       `json:"size"`
	Expires time.Time `json:"expires"`
	Hops    uint8     `json:"hops"`
	Kind    string    `json:"kind"`
	Own     bool      `json:"own"`
}

// Envelopes lists every unexpired envelope held: outbox, receipts and what
// is carried for others.
func (n *Node) Envelopes() ([]EnvelopeInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []EnvelopeInfo
	err := n.eachEnvelope(func(flags byte, raw []byte, e *envelope.Envelope) error {
		out = append(out, EnvelopeInfo{ID: envelope.ComputeID(raw).String(), Size: len(raw), Expires: e.ExpiresAt(),
			Hops: e.Hops, Kind: e.Kind.String(), Own: flags&flagOwn != 0})
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Expires.Equal(out[j].Expires) {
			return out[i].Expires.Before(out[j].Expires)
		}
		return strings.Compare(out[i].ID, out[j].ID) < 0
	})
	return out, err
}

func (n *Node) eachEnvelope(fn func(flags byte, raw []byte, e *envelope.Envelope) error) error {
	return n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colEnvelopes, func(v []byte, _ time.Time) error {
			if len(v) < 2 {
				return errors.New("corrupt stored envelope")
			}
			e, err := envelope.Parse(v[1:])
			if err != nil {
				return fmt.Errorf("corrupt stored envelope: %w", err)
			}
			return fn(v[0], v[1:], e)
		})
	})
}

// unholdMessages shows what arrived on a contact's proposed session, once
// the session is accepted.
func unholdMessages(tx *store.Tx, fp string) error {
	var held []messageRecord
	var exps []time.Time
	err := tx.ForEach(colMessages, func(v []byte, exp time.Time) error {
		var r messageRecord
		if err := json.Unmarshal(v, &r); err == nil && r.Contact == fp && r.Held {
			r.Held = false
			held, exps = append(held, r), append(exps, exp)
		}
		return nil
	})
	for i := range held {
		if err == nil {
			err = putJSON(tx, colMessages, []byte(held[i].ID), held[i], exps[i])
		}
	}
	return err
}
