// Package node is a Grapevine node without its network: it owns the user's
// identity, contacts, messages and the envelopes it holds, sealed in the
// store, and implements what happens when envelopes arrive (from a bundle
// today, from neighbours later): recognising one's own mail by its tag,
// opening first contacts, emitting and checking receipts, carrying the rest.
//
// The clock and the randomness are injected (Options), so the same code runs
// in tests, in the simulator and for real.
package node

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Config is the node's policy, chosen at init and kept in the store.
type Config struct {
	// Retention is how long pairwise period keys are kept for slow carriers,
	// and the lifetime of the envelopes this node writes. After it, a stolen
	// device cannot open an envelope sealed before it.
	Retention time.Duration `json:"retention"`
	// Hops is the hop budget of new envelopes: the hop limit of routing.
	Hops uint8 `json:"hops"`
	// Copies chooses how new envelopes are routed. 0 is epidemic: every
	// neighbour that lacks one gets it (the default). L >= 1 is binary
	// spray-and-wait with L copies: a holder of c > 1 copies hands c/2 to a
	// neighbour that lacks the envelope and keeps the rest; a holder of one
	// copy only offers it, and hands it over to the neighbour that claims it
	// as its recipient (SPEC §12.7). The receipts this node writes get the
	// same copies; a last copy of a receipt goes only to a neighbour that
	// holds the envelope it proves delivered.
	Copies uint8 `json:"copies,omitempty"`
	// History is how long message text is kept.
	History time.Duration `json:"history"`
	// InviteLifetime is how long an unused one-time prekey stays valid; one
	// whose request I accept is deleted at once.
	InviteLifetime time.Duration `json:"invite_lifetime"`
	// ReceiptDelay is the longest a receipt waits before it leaves: each
	// waits a random time up to it, and meanwhile this node carries the
	// envelope it opened like any relay, so neither its neighbours' holdings
	// nor the timing of its receipts single it out as the recipient (SPEC
	// §6). 0 sends receipts at once. An export takes every waiting receipt.
	ReceiptDelay time.Duration `json:"receipt_delay,omitempty"`
}

// DefaultConfig is what `grapevine init` uses.
var DefaultConfig = Config{
	Retention:      7 * 24 * time.Hour,
	Hops:           12,
	History:        365 * 24 * time.Hour,
	InviteLifetime: 7 * 24 * time.Hour,
	ReceiptDelay:   10 * time.Minute,
}

// Options are injected dependencies. Zero values mean the real thing.
type Options struct {
	// Now is the wall clock; Elapsed the time passed since the node
	// started, on a clock that never jumps (the monotonic clock). A node
	// keeps to a trusted time built from both (clock.go). With Now injected
	// and Elapsed nil, the injected clock's own progress is trusted (the
	// simulator's virtual time).
	Now     func() time.Time
	Elapsed func() time.Duration
	Rand    io.Reader
	Log     *slog.Logger
	KDF     store.KDFParams // for Init only
	// LockTimeout is how long to wait for another process holding the home.
	LockTimeout time.Duration
	// RecordCache bounds, in bytes, the envelopes written last that the node
	// keeps decoded in memory for live push to read (default
	// DefaultRecordCache; negative: none). The simulator, which runs
	// thousands of nodes, keeps little.
	RecordCache int
}

func (o *Options) fill() {
	if o.Now == nil {
		o.Now = time.Now
		start := time.Now()
		if o.Elapsed == nil {
			o.Elapsed = func() time.Duration { return time.Since(start) }
		}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.RecordCache == 0:
		o.RecordCache = DefaultRecordCache
	case o.RecordCache < 0:
		o.RecordCache = 0
	}
}

// Node is an unlocked home. It is safe for concurrent use: one mutex
// serialises its methods (the store allows one writer anyway).
type Node struct {
	compactedSize int64 // the store file's size after the last compaction
	delivered     provenDelivered
	kept          keptSecrets         // receipt secrets kept here, by what they prove (receipts.go)
	incoming      map[envelope.ID]any // transfers.go: envelopes on their way here, by the link expecting them
	mu            sync.Mutex
	st            *store.Store
	id            *keys.Identity
	cfg           Config
	clk           *clock
	rand          io.Reader
	log           *slog.Logger
	idx           *index

	inv      *inventory
	journal  []change             // envelope writes of the transaction in progress
	written  map[envelope.ID]bool // envelopes those writes touched
	watch    func([]envelope.ID)  // told of newly held envelopes
	source   string               // who handed over the envelopes being ingested
	quota    int64                // bytes carried for others at most: set.RelayQuota, or 0 with relaying off
	set      settingsRecord       // the settings in force (settings.go)
	setFlags []string             // those that up's flags chose for this run
	recog    *recognitionKeys     // nil when a contact changed since
	pub      *publicRooms         // channels, Nearby, announcements (channels.go); loaded on first use
	roomc    *roomCache           // private groups kept decoded (roomcache.go)
	files    map[string]*transfer // files being fetched, by message ID (transfer.go); loaded on first use
	rel      *releases            // the shelf and releases being shelved (releases.go); nil: none

	nextRelease time.Time // when the first waiting receipt leaves (receipts.go); zero: none

	keptFrom  keys.Period    // the oldest period kept at the last maintenance
	idxWindow [2]keys.Period // the periods the tag index was built for

	events hub // told of every committed change (events.go)
	// convGen counts the writes to what the conversation list is made of
	// (contacts, messages, read marks); convs is that list as made at some
	// count, reused while the count stays (events.go).
	convGen uint64
	convs   *convMemo
}

// now is the node's trusted time (clock.go).
func (n *Node) now() time.Time { return n.clk.now() }

// Collections in the store.
const (
	colSelf      = "self"
	colPrekeys   = "prekeys"
	colContacts  = "contacts"
	colMessages  = "messages"
	colEnvelopes = "envelopes"
	colReceipts  = "receipts"
	colBlocked   = "blocked"
	colDelayed   = "delayed" // receipts waiting to leave (receipts.go)
)

// erasable are the collections holding keys that forward secrecy needs
// really gone once replaced: the identity, prekeys and contacts' chain
// keys (store.Options.Erasable).
var erasable = []string{colSelf, colPrekeys, colContacts, colRooms, colRoomInvites}

type identityRecord struct {
	Name     string    `json:"name"`
	SignSeed []byte    `json:"sign_seed"`
	DH       []byte    `json:"dh"`
	Created  time.Time `json:"created"`
}

// MaxCopies is the largest spray-and-wait copy budget (it shares a byte
// with a flag in the stored envelope record).
const MaxCopies = 127

// Validate checks a policy before it is used.
func (c Config) Validate() error {
	switch {
	case c.Retention <= 0:
		return fmt.Errorf("retention %s must be positive", c.Retention)
	case c.Hops == 0:
		return errors.New("the hop limit must be at least 1")
	case c.Copies > MaxCopies:
		return fmt.Errorf("spray-and-wait copies %d: at most %d", c.Copies, MaxCopies)
	case c.Hops > MaxHops:
		return fmt.Errorf("the hop limit %d is over the protocol's %d", c.Hops, MaxHops)
	case c.Retention > MaxLifetime:
		return fmt.Errorf("retention %s is over the protocol's %s", c.Retention, MaxLifetime)
	case c.ReceiptDelay < 0 || c.ReceiptDelay > time.Hour:
		return fmt.Errorf("receipt delay %s: from 0 to 1h", c.ReceiptDelay)
	}
	return nil
}

// FormatRouting names a copy budget: "epidemic" for 0, "spray:L" for L.
func FormatRouting(copies uint8) string {
	if copies == 0 {
		return "epidemic"
	}
	return "spray:" + strconv.Itoa(int(copies))
}

// ParseRouting reads "epidemic" or "spray:L" (binary spray-and-wait with L
// copies, 1 ≤ L ≤ MaxCopies) as a copy budget for Config.Copies.
func ParseRouting(v string) (uint8, error) {
	if v == "epidemic" {
		return 0, nil
	}
	l, ok := strings.CutPrefix(v, "spray:")
	if !ok {
		return 0, fmt.Errorf("routing %q: want epidemic or spray:L", v)
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > MaxCopies {
		return 0, fmt.Errorf("routing %q: L must be a whole number from 1 to %d", v, MaxCopies)
	}
	return uint8(n), nil
}

// ErrNoIdentity means the home has no identity yet.
var ErrNoIdentity = errors.New("no identity in this home: run `grapevine init --name NAME` first")

// Init creates a home with a fresh identity.
func Init(home string, passphrase []byte, name string, cfg Config, opts Options) (*Node, error) {
	opts.fill()
	name, err := keys.NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("invalid name: %w", err)
	}
	if len(passphrase) == 0 {
		return nil, errors.New("the passphrase must not be empty")
	}
	if err := cfg.Validate(); err != nil { // before a file exists
		return nil, fmt.Errorf("invalid policy: %w", err)
	}
	clk := newClock(opts.Now, opts.Elapsed)
	st, err := store.Create(home, passphrase, store.Options{KDF: opts.KDF, Now: clk.now, LockTimeout: opts.LockTimeout, Erasable: erasable})
	if err != nil {
		return nil, err
	}
	return create(st, clk, name, cfg, opts)
}

// InitMemory creates a node whose store lives in memory only: no home, no
// passphrase, gone on Close. The simulator runs thousands of these.
func InitMemory(name string, cfg Config, opts Options) (*Node, error) {
	opts.fill()
	name, err := keys.NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("invalid name: %w", err)
	}
	clk := newClock(opts.Now, opts.Elapsed)
	st, err := store.CreateMemory(store.Options{Now: clk.now})
	if err != nil {
		return nil, err
	}
	return create(st, clk, name, cfg, opts)
}

func create(st *store.Store, clk *clock, name string, cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		st.Close()
		return nil, fmt.Errorf("invalid policy: %w", err)
	}
	id, err := keys.NewIdentity(name, opts.Rand)
	if err != nil {
		st.Close()
		return nil, err
	}
	clk.start(time.Time{})
	rec := identityRecord{Name: name, SignSeed: id.Sign.Seed(), DH: id.DH.Bytes(), Created: clk.now().UTC()}
	err = st.Update(func(tx *store.Tx) error {
		if err := putJSON(tx, colSelf, []byte("identity"), rec, store.Forever); err != nil {
			return err
		}
		if err := putClock(tx, rec.Created); err != nil {
			return err
		}
		return putJSON(tx, colSelf, []byte("config"), cfg, store.Forever)
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("failed to save identity: %w", err)
	}
	n := &Node{st: st, id: id, cfg: cfg, clk: clk, rand: opts.Rand, log: opts.Log, roomc: newRoomCache(),
		idx: newIndex(), inv: newInventory(opts.RecordCache)}
	n.applySettings(defaultSettings())
	return n, nil
}

// Open unlocks an existing home, removes what expired, forgets keys older
// than the retention window, and builds the tag index.
func Open(home string, passphrase []byte, opts Options) (*Node, error) {
	opts.fill()
	clk := newClock(opts.Now, opts.Elapsed)
	st, err := store.Open(home, passphrase, store.Options{Now: clk.now, LockTimeout: opts.LockTimeout, Erasable: erasable})
	if err != nil {
		return nil, err
	}
	n := &Node{st: st, clk: clk, rand: opts.Rand, log: opts.Log, inv: newInventory(opts.RecordCache), roomc: newRoomCache()}
	if err := n.load(); err != nil {
		st.Close()
		return nil, err
	}
	if err := n.loadInventory(); err != nil {
		st.Close()
		return nil, err
	}
	if err := n.loadKeptSecrets(); err != nil {
		st.Close()
		return nil, err
	}
	if err := n.loadNextRelease(); err != nil {
		st.Close()
		return nil, err
	}
	if err := n.maintain(); err != nil {
		st.Close()
		return nil, err
	}
	// Loading read every envelope: let the kernel unmap those pages and the
	// runtime return the garbage, so an idle node stays small.
	st.ReleaseMemory()
	debug.FreeOSMemory()
	return n, nil
}

func (n *Node) load() error {
	return n.st.View(func(tx *store.Tx) error {
		var rec identityRecord
		ok, err := getJSON(tx, colSelf, []byte("identity"), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoIdentity
		}
		if n.id, err = keys.IdentityFromSeeds(rec.Name, rec.SignSeed, rec.DH); err != nil {
			return fmt.Errorf("failed to load identity: %w", err)
		}
		n.cfg = DefaultConfig
		if _, err = getJSON(tx, colSelf, []byte("config"), &n.cfg); err != nil {
			return err
		}
		set, err := loadSettings(tx)
		if err != nil {
			return err
		}
		n.applySettings(set)
		last, err := loadClock(tx)
		n.clk.start(last)
		return err
	})
}

// Maintain deletes expired items, forgets period keys that left the
// retention window and rebuilds the tag index. Open calls it; a long-running
// node calls it periodically.
func (n *Node) Maintain() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.maintain()
}

// compactMin is the least file size worth a compaction. Beyond it, the
// store is compacted when more than half the file is free pages, or when
// the file is more than three times what the envelopes held cost (churn
// leaves pages half full) — but not again before the file has grown by
// half since the last compaction, so a home whose size is its contacts and
// history is not rewritten at every maintenance (SPEC §12.4).
const compactMin = 16 << 20

// compactIfWasteful rewrites the store file when churn left much of it
// unused (store.Compact). A failure is logged: the node goes on with the
// file it has.
func (n *Node) compactIfWasteful() {
	waste, size, err := n.st.Waste()
	if err != nil || size < compactMin || size < n.compactedSize*3/2 {
		return
	}
	if waste < size/2 && size < 3*n.inv.cost {
		return
	}
	before, after, err := n.st.Compact()
	if err != nil {
		n.log.Warn("compacting the store failed", "err", err)
		return
	}
	n.compactedSize = after
	n.log.Info("store compacted", "before_bytes", before, "after_bytes", after)
}

// invitesIndexed says whether the index expects the tags of exactly the
// invites whose prekeys the store still holds, so that none has expired
// since it was built. Every prekey stored is indexed at once (invite,
// rebuildIndex) and every one spent leaves both; one the store let expire
// leaves only the store, and the counts differ. Counting is cheap; the
// rebuild it spares reads and decodes every contact.
func (n *Node) invitesIndexed() bool {
	live := -1
	err := n.st.View(func(tx *store.Tx) (err error) {
		live, err = tx.Count(colPrekeys)
		return err
	})
	return err == nil && live == len(n.idx.prekeys)
}

func (n *Node) maintain() error {
	if last, due := n.clk.due(time.Hour); due { // an idle node still keeps its time
		if err := n.update(func(tx *store.Tx) error { return putClock(tx, last) }); err != nil {
			return fmt.Errorf("failed to save the clock: %w", err)
		}
	}
	if removed, err := n.st.Sweep(); err != nil {
		return fmt.Errorf("failed to remove expired items: %w", err)
	} else if removed > 0 {
		n.convGen++ // an expired message may be gone (events.go)
	}
	if err := n.releaseReceipts(false); err != nil {
		return err
	}
	n.pruneInventory()
	n.compactIfWasteful()
	oldest := n.oldestPeriod()
	if from, to := n.window(); oldest == n.keptFrom && n.idxWindow == [2]keys.Period{from, to} && n.invitesIndexed() {
		// Nothing left the window since the last time and no invite has
		// expired: the index is still right (a node calls this every few
		// minutes; the period is a day).
		return nil
	}
	now := n.now()
	var changed, stale []*contactRecord
	err := n.st.View(func(tx *store.Tx) error { // look first: write only when a key must go
		cs, err := allContacts(tx)
		for _, c := range cs {
			if c.State == StateRequest && now.Sub(c.Added) > n.cfg.Retention {
				stale = append(stale, c) // never answered: forgotten with its window
				continue
			}
			before, _ := json.Marshal(c)
			n.forget(c, oldest, now)
			if after, _ := json.Marshal(c); !bytes.Equal(before, after) {
				changed = append(changed, c)
			}
		}
		return err
	})
	if err == nil {
		err = n.forgetRoomKeys(oldest)
	}
	if err == nil && len(changed)+len(stale) > 0 {
		err = n.update(func(tx *store.Tx) error {
			for _, c := range changed {
				if err := saveContact(tx, c); err != nil {
					return err
				}
			}
			for _, c := range stale {
				if err := deleteMessagesOf(tx, c.Fingerprint, false); err != nil {
					return err
				}
				if err := tx.Delete(colContacts, []byte(c.Fingerprint)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("failed to forget old keys: %w", err)
	}
	n.keptFrom = oldest
	return n.rebuildIndex()
}

// forget deletes a contact's keys that the retention window no longer
// needs, and the sessions that only received and have nothing left to
// bring.
func (n *Node) forget(c *contactRecord, oldest keys.Period, now time.Time) {
	kept := c.Sessions[:0]
	for i, ps := range c.Sessions {
		if i > 0 && !ps.Since.IsZero() && now.Sub(ps.Since) > n.cfg.Retention+keys.PeriodLength {
			continue
		}
		ps.S.Forget(oldest)
		kept = append(kept, ps)
	}
	c.Sessions = kept
	if c.Proposal != nil {
		c.Proposal.S.Forget(oldest)
	}
}

// retentionPeriods is the retention window in periods, rounded up.
func (n *Node) retentionPeriods() keys.Period {
	return keys.Period((n.cfg.Retention + keys.PeriodLength - 1) / keys.PeriodLength)
}

// oldestPeriod is the first period whose keys are still kept: one period of
// slack below the retention window absorbs clock skew and period rounding.
func (n *Node) oldestPeriod() keys.Period {
	p := keys.PeriodOf(n.now().Add(-n.cfg.Retention))
	if p > 0 {
		p--
	}
	return p
}

// Close locks the home again.
func (n *Node) Close() error {
	n.stopReleases() // releases.go
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Close()
}

// TrustClock accepts the wall clock as it reads now, after the node refused
// it (Stats.Clock says why): the user confirms that it is right.
func (n *Node) TrustClock() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clk.trust()
	return n.update(func(*store.Tx) error { return nil }) // writes the clock
}

// Config returns the node's policy. Its retention may change while the
// node runs (SaveSettings).
func (n *Node) Config() Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg
}

// Self describes the local identity.
type Self struct {
	Name          string    `json:"name"`
	Fingerprint   string    `json:"fingerprint"`
	Link          string    `json:"link"`
	InviteExpires time.Time `json:"invite_expires"` // the link's one-time prekey stops working then
}

func putJSON(tx *store.Tx, col string, key []byte, v any, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(col, key, b, expires)
}

func getJSON(tx *store.Tx, col string, key []byte, v any) (bool, error) {
	_, ok, err := getJSONExpiry(tx, col, key, v)
	return ok, err
}

// getJSONExpiry is getJSON that also returns the item's expiry, for callers
// that rewrite the item and must keep it.
func getJSONExpiry(tx *store.Tx, col string, key []byte, v any) (time.Time, bool, error) {
	b, exp, ok, err := tx.Get(col, key)
	if err != nil || !ok {
		return exp, ok, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return exp, false, fmt.Errorf("failed to decode %s record: %w", col, err)
	}
	return exp, true, nil
}

// expiryFor rounds an envelope expiry up to the minute, so expiries say less
// about when exactly an envelope was written.
func expiryFor(t time.Time) uint32 {
	s := t.Unix()
	return uint32((s + 59) / 60 * 60)
}
