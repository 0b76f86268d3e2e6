package node

import (
	"bytes"
	"fmt"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// IngestReport says what became of a batch of arriving envelopes.
type IngestReport struct {
	Received         int `json:"received"`          // envelopes offered
	New              int `json:"new"`               // now carried for others (envelopes and receipts)
	Duplicate        int `json:"duplicate"`         // already held
	AlreadyDelivered int `json:"already_delivered"` // a receipt here proves delivery: dropped
	Expired          int `json:"expired"`
	Invalid          int `json:"invalid"`          // malformed, or bore my tag but did not authenticate
	Messages         int `json:"messages"`         // messages for me, opened
	RequestMessages  int `json:"request_messages"` // opened, but waiting in a contact request
	Requests         int `json:"requests"`         // new contact requests
	Rekeys           int `json:"rekeys"`           // contacts that proposed new keys
	Receipts         int `json:"receipts"`         // genuine or unverifiable receipts kept to carry on
	Purged           int `json:"purged"`           // envelopes dropped because their receipt arrived
	Delivered        int `json:"delivered"`        // my messages now known delivered
	Forged           int `json:"forged"`           // receipts that proved nothing: dropped
	Ignored          int `json:"ignored"`          // from identities whose requests I rejected
	Refused          int `json:"refused"`          // for others, but this node does not relay
	Evicted          int `json:"evicted"`          // carried envelopes dropped to stay within the relay quota
	Clamped          int `json:"clamped"`          // hop budgets above MaxHops (Nearby: room.NearbyMaxHops), taken down to it
	Chunks           int `json:"chunks"`           // chunks of files for me, new, verified and kept (transfer.go)
	// Stamped kinds (channels.go) whose stamp is missing or too easy, and
	// those over a link's or a poster's rate: dropped. Not in the JSON
	// report yet: cmd/grapevine's import --json help lists its fields.
	Unstamped int `json:"-"`
	Limited   int `json:"-"`

	Opened []envelope.ID `json:"-"` // the messages for me among them (Messages and RequestMessages), by envelope ID
}

// Protocol maxima, enforced at ingest (SPEC §12.4): no envelope lives
// longer than MaxLifetime from now, and none travels more than MaxHops hops.
// Junk dated years ahead, or with a hop budget of 255, would otherwise
// outlive and outrun every honest envelope.
const (
	MaxLifetime = 31 * 24 * time.Hour
	MaxHops     = 32
)

// Ingest takes envelopes that arrived from anywhere, durably, in one
// transaction: envelopes for me become messages and emit receipts, receipts
// purge what they prove delivered, and the rest is kept to carry on. Ingest
// copies what it keeps; raws may be reused by the caller afterwards.
func (n *Node) Ingest(raws [][]byte) (IngestReport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rep, err := n.ingest(raws, nil)
	if err != nil {
		return rep, err
	}
	return rep, n.enforceQuota(&rep)
}

func (n *Node) ingest(raws [][]byte, copies []uint8) (IngestReport, error) {
	return n.ingestAll(raws, copies, false)
}

// lookAgain looks again at what is carried here, as an arrival that taught
// new keys does (§6 step 5), when keys came otherwise: a file's chunk tags,
// at an accept.
func (n *Node) lookAgain() error {
	_, err := n.ingestAll(nil, nil, true)
	return err
}

func (n *Node) ingestAll(raws [][]byte, copies []uint8, lookAgain bool) (IngestReport, error) {
	if copies != nil && len(copies) != len(raws) {
		return IngestReport{}, fmt.Errorf("failed to ingest envelopes: %d copy budgets for %d envelopes", len(copies), len(raws))
	}
	var rep IngestReport
	var proven []provenEntry
	var kept []keptKey
	var released bool
	err := n.update(func(tx *store.Tx) error {
		in := &ingest{n: n, tx: tx, rep: &rep, now: n.now(), contacts: map[string]*contactRecord{}, rooms: map[string]*room.Room{}, carried: map[envelope.ID][16]byte{},
			mine: map[envelope.ID]bool{}, refused: map[envelope.ID]bool{}, requests: -1, files: map[string]*transfer{}, changed: lookAgain}
		defer func() { proven, kept, released = in.proven, in.kept, in.released }()
		for i, raw := range raws {
			if in.copies = 0; copies != nil {
				in.copies = min(copies[i], MaxCopies)
			}
			if err := in.one(raw); err != nil {
				return err
			}
		}
		for in.changed { // new keys may open envelopes already carried here
			in.changed = false
			if err := in.rescan(); err != nil {
				return err
			}
		}
		return in.flush()
	})
	if err != nil {
		n.files = nil // assemblers may hold what did not commit: read again from the store
		n.rebuildIndexQuietly()
		n.kept.remove(kept) // neither their receipts nor they were stored
		return IngestReport{}, fmt.Errorf("failed to ingest envelopes: %w", err)
	}
	n.delivered.add(proven, uint32(n.now().Unix()))
	if released {
		n.kickReleases() // releases.go
	}
	return rep, nil
}

type ingest struct {
	n        *Node
	tx       *store.Tx
	rep      *IngestReport
	now      time.Time
	contacts map[string]*contactRecord // loaded in this transaction; saved by flush
	rooms    map[string]*room.Room     // likewise, by group ID in hex
	changed  bool                      // the tag index changed: rescan
	carried  map[envelope.ID][16]byte  // stored to carry in this batch, with their tags
	mine     map[envelope.ID]bool      // opened here in this batch, its receipt waiting
	refused  map[envelope.ID]bool      // requests refused in this batch (MaxRequests)
	requests int                       // contact requests waiting; -1 until counted
	copies   uint8                     // spray-and-wait copies handed over with the current envelope
	proven   []provenEntry             // held envelopes purged by a receipt checked against them
	kept     []keptKey                 // secrets this batch added to n.kept: removed if it fails
	files    map[string]*transfer      // files that got chunks in this batch: synced by flush
	released bool                      // a release's last chunk came (releases.go)
}

func (in *ingest) one(raw []byte) error {
	in.rep.Received++
	e, err := envelope.Parse(raw)
	if err != nil {
		in.rep.Invalid++
		return nil
	}
	if e.Expired(in.now) {
		in.rep.Expired++
		return nil
	}
	if e.ExpiresAt().After(in.now.Add(MaxLifetime)) {
		in.rep.Invalid++ // dated beyond any retention a writer may choose
		return nil
	}
	if e.Hops > MaxHops {
		raw = bytes.Clone(raw)
		envelope.SetHops(raw, MaxHops)
		e.Hops = MaxHops
		in.rep.Clamped++
	}
	id := envelope.ComputeID(raw)
	if e.Kind == envelope.KindReceipt {
		return in.receipt(id, e, raw)
	}
	if e.Kind.Stamped() {
		return in.stamped(id, e, raw) // channels.go
	}
	return in.sealed(id, e, raw)
}

func (in *ingest) sealed(id envelope.ID, e *envelope.Envelope, raw []byte) error {
	if held, err := in.keepMoreHops(id, e); held || err != nil {
		return err
	}
	if in.provenDelivered(e) {
		in.rep.AlreadyDelivered++
		return nil
	}
	ref, ok := in.n.idx.lookup(e.Tag)
	if ok && ref.kind == slotChunk && e.Kind == envelope.KindChunk {
		handled, carry, err := in.chunk(id, e, raw, ref) // transfer.go
		if err != nil || handled && !carry && !in.keepOpened(id) {
			return err
		}
		if handled && !carry {
			return in.n.putParsed(in.tx, id, e, raw, withCopies(0, in.copies))
		}
	} else if ok && ref.kind == slotRoom {
		if err := in.openRoom(id, e, ref); err != nil { // then carried like any envelope
			return err
		}
	} else if ok && e.Kind == envelope.KindSealed {
		handled, err := in.open(id, e, ref)
		if err != nil || handled && !in.keepOpened(id) {
			return err
		}
		if handled { // mine: carried like a relay's copy, but not counted as one
			return in.n.putParsed(in.tx, id, e, raw, withCopies(0, in.copies))
		}
	}
	if in.n.quota <= 0 || e.Kind == envelope.KindChunk && in.n.chunkQuota() <= 0 { // not relaying (chunks): only my own is kept
		in.rep.Refused++
		return nil
	}
	in.rep.New++
	in.carried[id] = e.Tag
	return in.n.putParsed(in.tx, id, e, raw, withCopies(0, in.copies))
}

// keepOpened says whether an envelope I just opened stays here, carried like
// a relay's copy until its receipt leaves (receipts.go): when receipts wait,
// and the envelope is still to be carried (it opened and is not proven
// delivered), so the recipient holds what a relay would hold.
func (in *ingest) keepOpened(id envelope.ID) bool {
	return in.n.cfg.ReceiptDelay > 0 && in.n.quota > 0 && in.mine[id]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keepMoreHops reports whether the envelope is already held; if the new copy
// has a larger hop budget, the stored one takes it.
func (in *ingest) keepMoreHops(id envelope.ID, e *envelope.Envelope) (bool, error) {
	v, ok, err := in.n.record(in.tx, id)
	if err != nil || !ok {
		return false, err
	}
	in.rep.Duplicate++
	// Spray copies handed over with a copy already held join the ones held:
	// the sender has given them up, and dropping them would lose them from
	// the mesh (SPEC §12.7). Unlimited (0) stays unlimited.
	flags := v[0]
	if held := copiesOf(flags); in.copies > 0 && held > 0 {
		flags = withCopies(flags, min(held+in.copies, MaxCopies))
	}
	if len(v) > 1 && (e.Hops > v[2] || flags != v[0]) {
		raw := bytes.Clone(v[1:]) // record's slice is read-only
		if e.Hops > v[2] {
			envelope.SetHops(raw, e.Hops)
		}
		return true, in.n.putEnvelope(in.tx, raw, flags)
	}
	return true, nil
}

// provenDelivered reports whether a receipt held here, or a secret kept
// from one, reveals the secret behind the envelope's commitment, with the
// envelope's own expiry (receipts.go). Past that expiry the secret is
// gone, as the store's items are.
func (in *ingest) provenDelivered(e *envelope.Envelope) bool {
	return in.n.kept.proves(e) && !e.Expired(in.now)
}

// rememberSecret files a secret whose receipt is not carried here.
func (in *ingest) rememberSecret(target envelope.ID, secret [envelope.SecretSize]byte, expires time.Time) error {
	key, err := keepSecret(in.tx, target, secret, expires)
	if err != nil {
		return err
	}
	in.keep(key)
	return nil
}

// keep indexes a secret kept in this batch, noting it to be undone if the
// batch fails.
func (in *ingest) keep(key keptKey) {
	if in.n.kept.add(key, uint32(in.now.Unix())) {
		in.kept = append(in.kept, key)
	}
}

func (in *ingest) receipt(id envelope.ID, r *envelope.Envelope, raw []byte) error {
	if held, err := in.keepMoreHops(id, r); held || err != nil {
		return err
	}
	tm, held := in.n.inv.m[r.Target]
	mine := held && tm.own && !tm.receipt // read before the purge below drops it
	if forged, err := in.purge(r); forged || err != nil {
		return err
	}
	if mine {
		if forged, err := in.markDelivered(r); forged || err != nil {
			return err
		}
	}
	// Otherwise it cannot be checked here: keep it, so the target is dropped
	// if it arrives later (after checking), and carry it on. Carried, the
	// receipt is its own record of the secret (n.kept); not carried, the
	// secret alone is kept.
	if in.n.quota <= 0 {
		in.rep.Refused++
		return in.rememberSecret(r.Target, r.Secret, r.ExpiresAt())
	}
	in.rep.Receipts++
	if err := in.n.putParsed(in.tx, id, r, raw, withCopies(0, in.copies)); err != nil {
		return err
	}
	in.keep(secretKeyOf(r.Secret, r.Expiry))
	return nil
}

// purge drops the envelope a receipt proves delivered, if held here. A
// receipt for a held envelope that does not prove itself is forged.
func (in *ingest) purge(r *envelope.Envelope) (forged bool, err error) {
	v, ok, err := in.n.record(in.tx, r.Target)
	if err != nil || !ok {
		return false, err
	}
	target, err := envelope.Parse(v[1:])
	if err != nil {
		return false, fmt.Errorf("corrupt stored envelope: %w", err)
	}
	if !r.Confirms(r.Target, target) || r.Expiry != target.Expiry { // a re-dated copy is not its receipt
		in.rep.Forged++
		return true, nil
	}
	in.rep.Purged++
	in.proven = append(in.proven, provenEntry{r.Target, r.Expiry})
	return false, in.n.deleteEnvelope(in.tx, r.Target)
}

// markDelivered marks my envelope delivered by its receipt, which must match
// the commitment I kept, or it is forged. A receipt of an envelope that
// carried my epoch's ratchet key tells the session the peer holds it.
func (in *ingest) markDelivered(r *envelope.Envelope) (forged bool, err error) {
	var m messageRecord
	key := []byte(r.Target.String())
	col := colMessages
	exp, ok, err := getJSONExpiry(in.tx, col, key, &m)
	if err == nil && !ok { // a chunk of a file I sent (attach.go)
		col = colSentChunks
		exp, ok, err = getJSONExpiry(in.tx, col, key, &m)
	}
	if err != nil || !ok || m.Direction != "out" {
		return false, err
	}
	var commit [envelope.CommitSize]byte
	copy(commit[:], m.Commit)
	if !r.ConfirmsCommit(r.Target, commit) || (m.Expiry != 0 && r.Expiry != m.Expiry) {
		in.rep.Forged++
		return true, nil
	}
	if m.Status == StatusDelivered {
		return false, nil
	}
	if m.Kind == kindChunk {
		if err := chunkDelivered(in.tx, m.Parent); err != nil {
			return false, err
		}
	}
	if m.Prefixed {
		c, err := in.contact(m.Contact)
		if err != nil {
			return false, err
		}
		if ps := c.session(m.Session); ps != nil {
			ps.S.Acked(m.Epoch)
			in.touch(c)
		}
	}
	m.Status = StatusDelivered
	if m.Kind == kindText {
		in.rep.Delivered++
	}
	return false, putJSON(in.tx, col, key, m, exp)
}

// open tries an envelope whose tag is in the index. It reports whether the
// envelope was dealt with (opened, or bore my tag but failed to authenticate).
func (in *ingest) open(id envelope.ID, e *envelope.Envelope, ref slotRef) (bool, error) {
	switch ref.kind {
	case slotIntro:
		return in.openRequest(id, e, ref)
	case slotRekey:
		return in.openRekey(id, e, ref)
	case slotRoom:
		return false, in.openRoom(id, e, ref) // carried on: not handled
	}
	c, err := in.contact(ref.owner)
	if err != nil || c == nil {
		return false, err
	}
	ps := c.session(ref.session)
	if ps == nil {
		return false, nil
	}
	s, op, err := ps.S.Open(e, ref.slot(e.Tag), keys.PeriodOf(in.now))
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	content, err := ParseContent(op.Content)
	if err != nil || content.Type == TypeRequest || content.Type == TypeRekey {
		in.rep.Invalid++
		return true, nil
	}
	ps.S = s
	held := ps == c.Proposal
	if op.Stepped && !held {
		in.answered(c, ps)
	}
	if c.State == StatePending {
		c.State, c.Invite = StateActive, "" // they answered
	}
	if content.Type == TypeText || content.Type == TypeAttachment {
		if err := in.storeMessage(id, c, content, held); err != nil {
			return true, err
		}
	}
	if !held && (content.Type == TypeRoomInvite || content.Type == TypeRoomJoin || content.Type == TypeRoomWelcome || content.Type == TypeRoomLeave) {
		if err := in.roomContent(c, content); err != nil {
			return true, err
		}
	}
	return true, in.opened(id, e, c, op.Secret, held)
}

// answered is told that the peer opened a new epoch on ps. If ps is not
// the session I send on, it becomes it when the peer answered a session I
// started later than my current one (it accepted my re-key, or a request I
// sent again), or when my current one is a request sent again that the
// peer has not answered (it answered the earlier request instead).
func (in *ingest) answered(c *contactRecord, ps *peerSession) {
	primary := c.Sessions[0]
	if ps == primary || !ps.Initiator {
		return
	}
	if ps.Started.After(primary.Started) || (primary.Initiator && !primary.Rekey && !primary.S.Established()) {
		c.promote(ps, in.now)
	}
}

// openRequest opens a first-contact envelope sent to one of my invites.
func (in *ingest) openRequest(id envelope.ID, e *envelope.Envelope, ref slotRef) (bool, error) {
	ik, ok := in.n.idx.prekeys[ref.owner]
	if !ok {
		return false, nil
	}
	// Checked before any key agreement: a flood of requests costs a count.
	if full, err := in.requestsFull(); err != nil || full {
		in.rep.Refused += b2i(full && !in.refused[id])
		in.refused[id] = true
		return false, err // carried, unopened, like a relay's copy
	}
	var pr prekeyRecord
	ok, err := getJSON(in.tx, colPrekeys, ik.prekey[:], &pr)
	if err != nil || !ok {
		return false, err
	}
	pk, err := pr.prekey()
	if err != nil {
		return false, err
	}
	masked, err := envelope.IntroMaskedKey(e)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	ek := keys.MaskEK(masked, ik.secret, e.Tag) // the mask is its own inverse
	idk, err := keys.RespondIdentityKey(in.n.id, pk.Priv, ek)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	sender, err := envelope.OpenIntroSender(idk, e)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	initiator, err := keys.ParseBinding(sender) // its signing key vouches for its key agreement key
	if err != nil || initiator.Equal(in.n.id.Public()) {
		in.rep.Invalid++
		return true, nil
	}
	sk, err := keys.Respond(in.n.id, pk.Priv, initiator, ek)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	plain, err := envelope.Open(keys.IntroSealKey(sk), e, envelope.IntroPrefixSize)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	content, err := ParseContent(plain)
	if err != nil || content.Type != TypeRequest {
		in.rep.Invalid++
		return true, nil
	}
	session, err := keys.NewResponderSession(sk, content.Period, content.Ratchet, content.KEM)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	// A session must start near now: a request dated long ago or ahead
	// would make this node derive keys over years of periods.
	if now := keys.PeriodOf(in.now); content.Period > now+1 || content.Period+in.n.retentionPeriods()+1 < now {
		in.rep.Invalid++
		return true, nil
	}
	fp := initiator.Fingerprint()
	if blocked, err := in.tx.Has(colBlocked, []byte(fp)); err != nil || blocked {
		// Carried on like any envelope: a rejected sender must not see its
		// requests treated differently by this node than by a relay.
		in.rep.Ignored += b2i(blocked)
		return false, err
	}
	c, err := in.contact(fp)
	if err != nil {
		return true, err
	}
	ps := &peerSession{S: session, Started: content.When()}
	held, spent := false, false
	switch {
	case c == nil:
		if c, err = in.newRequest(fp, initiator, content.Name); err != nil {
			return true, err
		}
		c.Sessions = []*peerSession{ps}
	case c.State == StateRequest: // they sent their request again: answer the newest
		c.Sessions = append(c.Sessions, ps)
		c.promote(newest(c.Sessions, false), in.now)
	case c.State == StatePending: // we added each other: as good as accepted
		ps.Since = in.now
		c.Sessions = append(c.Sessions, ps)
		in.simultaneous(c)
		spent = true
	default: // an active contact: a proposal of new keys, mine to accept
		c.Proposal, held = ps, true
	}
	if c.State == StateRequest || held {
		c.Prekey = ik.prekey[:]
	}
	if content.Text != "" {
		if err := in.storeIncoming(id, c, content, held, nil); err != nil {
			return true, err
		}
	}
	if spent { // the prekey is used once: gone now
		if err := in.tx.Delete(colPrekeys, ik.prekey[:]); err != nil {
			return true, err
		}
		in.n.idx.removeOwner(ref.owner)
	} else {
		pr.Used = true
		if err := putJSON(in.tx, colPrekeys, ik.prekey[:], pr, time.Unix(int64(pr.Expiry), 0)); err != nil {
			return true, err
		}
	}
	return true, in.opened(id, e, c, keys.IntroReceiptSecret(sk), held)
}

// MaxRequests bounds the contact requests waiting for an answer: beyond it,
// new ones are carried unopened (their senders see them expire), so a flood
// of requests through a published invite costs the node a bounded amount.
// Unanswered requests are forgotten after the retention window.
const MaxRequests = 100

func (in *ingest) requestsFull() (bool, error) {
	if in.requests < 0 { // counted once per batch; newRequest adds to it
		cs, err := allContacts(in.tx)
		if err != nil {
			return false, err
		}
		in.requests = 0
		for _, c := range cs {
			if c.State == StateRequest {
				in.requests++
			}
		}
	}
	return in.requests >= MaxRequests, nil
}

// newRequest creates the contact of someone whose request just arrived,
// under the name they chose unless a contact has it already.
func (in *ingest) newRequest(fp string, p keys.Public, name string) (*contactRecord, error) {
	name, err := requestName(in.tx, name, fp, in.contacts)
	if err != nil {
		return nil, err
	}
	base, err := keys.RekeyBase(in.n.id, p)
	if err != nil {
		return nil, err
	}
	c := &contactRecord{Fingerprint: fp, Name: name, Sign: p.Sign, DH: p.DH[:], State: StateRequest,
		Added: in.now.UTC(), RekeyBase: base}
	in.contacts[fp] = c
	in.rep.Requests++
	in.requests++
	return c, nil
}

// simultaneous settles two people adding each other at once: each started
// a session; both send on the newest one started by the side with the
// smaller fingerprint and only receive on the others, so exactly one
// session goes on to ratchet.
func (in *ingest) simultaneous(c *contactRecord) {
	mine := in.n.id.Public().Fingerprint() < c.Fingerprint
	if w := newest(c.Sessions, mine); w != nil {
		c.promote(w, in.now)
	}
	c.State, c.Invite = StateActive, ""
}

// newest is the latest-started session that I (or the contact) started.
func newest(ss []*peerSession, mine bool) *peerSession {
	var w *peerSession
	for _, ps := range ss {
		if ps.Initiator == mine && !ps.Rekey && (w == nil || ps.Started.After(w.Started)) {
			w = ps
		}
	}
	return w
}

// openRekey opens a re-key request from a contact: a proposal of a new
// session that the user must accept (SPEC §3.3).
func (in *ingest) openRekey(id envelope.ID, e *envelope.Envelope, ref slotRef) (bool, error) {
	c, err := in.contact(ref.owner)
	if err != nil || c == nil || c.State != StateActive {
		return false, err
	}
	if len(e.Body) < 32+envelope.Overhead {
		in.rep.Invalid++
		return true, nil
	}
	ek := xor32([32]byte(e.Body[:32]), keys.RekeyMask(c.RekeyBase, e.Tag))
	sk, err := keys.RespondRekey(in.n.id, c.public(), ek)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	plain, err := envelope.Open(keys.IntroSealKey(sk), e, 32)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	content, err := ParseContent(plain)
	if err != nil || content.Type != TypeRekey {
		in.rep.Invalid++
		return true, nil
	}
	session, err := keys.NewResponderSession(sk, content.Period, content.Ratchet, content.KEM)
	if err != nil {
		in.rep.Invalid++
		return true, nil
	}
	c.Proposal = &peerSession{S: session, Rekey: true, Started: content.When()}
	in.rep.Rekeys++
	return true, in.opened(id, e, c, keys.IntroReceiptSecret(sk), true)
}

// storeMessage stores a text, or a file's message and starts fetching the
// file — not yet from someone I have not accepted (nor on a proposal): its
// chunks' receipts would tell a stranger the device holds them.
func (in *ingest) storeMessage(id envelope.ID, c *contactRecord, content *Content, held bool) error {
	if content.Type != TypeAttachment {
		return in.storeIncoming(id, c, content, held, nil)
	}
	var f *fileRecord
	if c.State == StateRequest || held {
		m, err := attach.ParseManifest(content.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
		if err != nil {
			return fmt.Errorf("failed to read a manifest: %w", err)
		}
		f = &fileRecord{Name: m.Name, MediaType: m.MediaType, Size: m.Size, Chunks: m.Chunks,
			Refused: heldFileNote, Manifest: content.Manifest} // started by Accept (startHeldFiles)
	} else {
		var err error
		if f, err = in.startTransfer(id, content); err != nil {
			return err
		}
	}
	return in.storeIncoming(id, c, content, held, f)
}

func (in *ingest) storeIncoming(id envelope.ID, c *contactRecord, content *Content, held bool, f *fileRecord) error {
	rec := messageRecord{ID: id.String(), Contact: c.Fingerprint, Direction: "in", Text: content.Text,
		Time: content.When(), Status: StatusReceived, Held: held, File: f}
	if c.State == StateRequest || held {
		in.rep.RequestMessages++
	} else {
		in.rep.Messages++
	}
	in.rep.Opened = append(in.rep.Opened, id)
	return putMessage(in.tx, &rec, in.now.Add(in.n.cfg.History))
}

// opened finishes an envelope addressed to me: the receipt that proves
// delivery is stored to travel back (held back while the sender is only a
// request, or on a proposal), further copies are dropped here, and the
// contact's expected tags move on.
func (in *ingest) opened(id envelope.ID, e *envelope.Envelope, c *contactRecord, secret [envelope.SecretSize]byte, held bool) error {
	if c.State == StateRequest || held { // no receipt to a stranger before accepting
		c.Pending = append(c.Pending, pendingReceipt{Target: id, Expiry: e.Expiry, Secret: secret})
	} else {
		r := envelope.NewReceipt(id, e.Expiry, secret, in.n.startHops())
		if err := in.n.queueReceipt(in.tx, r); err != nil {
			return err
		}
	}
	in.mine[id] = true
	// The secret alone is a local tombstone: further copies are dropped here.
	if err := in.rememberSecret(id, secret, e.ExpiresAt()); err != nil {
		return err
	}
	in.touch(c)
	in.changed = true
	return nil
}

// touch marks a contact changed in this batch: stored by flush, reindexed.
func (in *ingest) touch(c *contactRecord) {
	in.contacts[c.Fingerprint] = c
	in.n.reindex(c)
}

func (in *ingest) contact(fp string) (*contactRecord, error) {
	if c, ok := in.contacts[fp]; ok {
		return c, nil
	}
	c, err := loadContact(in.tx, fp)
	if c != nil {
		in.contacts[fp] = c
	}
	return c, err
}

// rescan looks again at carried envelopes whose tags became expected. The
// inventory's in-memory map from tags to carried envelopes answers which
// they are, so opening a request never reads the whole store.
func (in *ingest) rescan() error {
	cands := in.n.inv.expected(in.n.idx)
	for id, tag := range in.carried { // not in the inventory before this batch commits
		if _, ok := in.n.idx.lookup(tag); ok {
			cands = append(cands, id)
		}
	}
	for _, id := range cands {
		if in.mine[id] {
			continue
		}
		v, ok, err := in.n.record(in.tx, id)
		if err != nil {
			return err
		}
		if !ok || len(v) < 2 || v[0]&flagOwn != 0 {
			continue
		}
		e, err := envelope.Parse(v[1:])
		if err != nil || !taggedKind(e.Kind) {
			continue
		}
		if in.provenDelivered(e) { // opened here before
			continue
		}
		ref, ok := in.n.idx.lookup(e.Tag)
		if !ok {
			continue
		}
		var handled, carry bool
		switch {
		case ref.kind == slotChunk && e.Kind == envelope.KindChunk:
			dups := in.rep.Duplicate
			handled, carry, err = in.chunk(id, e, v[1:], ref)
			in.rep.Duplicate = dups // a chunk held here looked at again did not arrive again
		case ref.kind != slotChunk && e.Kind == envelope.KindSealed:
			handled, err = in.open(id, e, ref)
		}
		if err != nil {
			return err
		}
		if carry { // a room's chunk: still carried for the other members
			continue
		}
		if _, fresh := in.carried[id]; handled && fresh {
			in.rep.New-- // it arrived in this batch: it is not carried for others after all
			delete(in.carried, id)
		}
		if handled && !in.keepOpened(id) {
			if err := in.n.deleteEnvelope(in.tx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (in *ingest) flush() error {
	if err := in.syncFiles(); err != nil {
		return err
	}
	for _, c := range in.contacts {
		if err := saveContact(in.tx, c); err != nil {
			return err
		}
	}
	for _, r := range in.rooms {
		if err := in.n.saveRoom(in.tx, r); err != nil {
			return err
		}
	}
	return nil
}
