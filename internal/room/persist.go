package room

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// record is what a room stores: the changes as they arrived (the rules are
// re-checked on load, so a damaged record cannot smuggle in a member), and
// the keys of each epoch held, as they are now — chains at their next
// counters, skipped keys — never the secrets they came from, except the
// one an epoch's signer keeps until ForgetSecret.
type record struct {
	Self    [32]byte      `json:"self"`
	RoomKey []byte        `json:"room_key"` // Ed25519 seed
	Changes [][]byte      `json:"changes"`  // the genesis first
	Epochs  []epochRecord `json:"epochs"`
	Dropped []Hash        `json:"dropped,omitempty"`
	Held    []heldRecord  `json:"held,omitempty"`
}

type epochRecord struct {
	Hash        Hash             `json:"hash"`
	Secret      *[32]byte        `json:"secret,omitempty"`
	Mask        [32]byte         `json:"mask"`
	Periods     keys.PeriodChain `json:"periods"`
	SendPeriods keys.PeriodChain `json:"send_periods"`
	Me          *chain           `json:"me,omitempty"`
	Senders     []senderRecord   `json:"senders"`
	Order       uint64           `json:"order"`
	Opened      [][16]byte       `json:"opened,omitempty"`
}

type senderRecord struct {
	Key     key32           `json:"key"`
	Chain   chainRecord     `json:"chain"`
	Skipped []skippedRecord `json:"skipped,omitempty"`
}

// chainRecord is a chain as stored; its field names are those the chain
// itself had in records written before keys were stored as base64.
type chainRecord struct {
	N   uint32
	Msg key32
	Tag key32
}

type skippedRecord struct {
	N     uint32   `json:"n"`
	CK    key32    `json:"ck"`
	Tag   [16]byte `json:"tag"`
	Order uint64   `json:"order"`
}

// key32 is a 32-byte key stored as a base64 string: a record holds one
// sender chain per member and epoch, and as a JSON array of numbers each
// took about three times the room, and the time, a string does. Records
// written before are still read.
type key32 [32]byte

func (k key32) MarshalText() ([]byte, error) {
	return base64.StdEncoding.AppendEncode(nil, k[:]), nil
}

func (k *key32) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[32]byte)(k))
	}
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != len(k) {
		return fmt.Errorf("%w: a key of %d bytes", ErrMalformed, len(raw))
	}
	copy(k[:], raw)
	return nil
}

type heldRecord struct {
	Hash   Hash     `json:"hash"`
	Secret [32]byte `json:"secret"`
	From   [32]byte `json:"from"`
}

// Marshal encodes the room for the store.
func (r *Room) Marshal() ([]byte, error) {
	rec := record{Self: r.self, Dropped: slices.Collect(keysOf(r.dropped))}
	if r.roomKey != nil {
		rec.RoomKey = r.roomKey.Seed()
	}
	rec.Changes = append(rec.Changes, r.changes[r.Genesis].Marshal())
	for _, h := range r.chain[1:] {
		rec.Changes = append(rec.Changes, r.changes[h].Marshal())
	}
	for h, c := range r.changes {
		if !slices.Contains(r.chain, h) {
			rec.Changes = append(rec.Changes, c.Marshal())
		}
	}
	for h, hs := range r.held {
		rec.Held = append(rec.Held, heldRecord{Hash: h, Secret: hs.secret, From: hs.from})
	}
	for _, e := range r.epochs {
		er := epochRecord{Hash: e.Hash, Mask: e.mask, Periods: e.periods, SendPeriods: e.sendPeriods,
			Me: e.me, Order: e.order, Opened: e.opened}
		if e.hasSec {
			s := e.secret
			er.Secret = &s
		}
		for _, sd := range e.senders {
			sr := senderRecord{Key: sd.key, Chain: chainRecord{N: sd.ch.N, Msg: sd.ch.Msg, Tag: sd.ch.Tag}}
			for n, k := range sd.skipped {
				sr.Skipped = append(sr.Skipped, skippedRecord{N: n, CK: k.ck, Tag: k.tag, Order: k.order})
			}
			er.Senders = append(er.Senders, sr)
		}
		rec.Epochs = append(rec.Epochs, er)
	}
	return json.Marshal(rec)
}

func keysOf[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Unmarshal rebuilds a room that Marshal encoded: it applies the changes
// again (refusing the record if the genesis or a kept epoch does not
// check) and restores each epoch's chains and watch window.
func Unmarshal(b []byte) (*Room, error) {
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("failed to read room: %w", err)
	}
	if len(rec.Changes) == 0 {
		return nil, fmt.Errorf("failed to read room: %w: no changes", ErrMalformed)
	}
	create, err := ParseChange(rec.Changes[0])
	if err != nil {
		return nil, fmt.Errorf("failed to read room: %w", err)
	}
	var rk ed25519.PrivateKey
	if rec.RoomKey != nil {
		if len(rec.RoomKey) != ed25519.SeedSize {
			return nil, fmt.Errorf("failed to read room: %w: room key of %d bytes", ErrMalformed, len(rec.RoomKey))
		}
		rk = ed25519.NewKeyFromSeed(rec.RoomKey)
	}
	r, err := open(create, rec.Self, rk)
	if err != nil {
		return nil, fmt.Errorf("failed to read room: %w", err)
	}
	for _, c := range rec.Changes[1:] {
		if _, err := r.Add(c); err != nil && !errors.Is(err, ErrDuplicate) {
			return nil, fmt.Errorf("failed to read room: %w", err)
		}
	}
	for _, h := range rec.Dropped {
		r.dropped[h] = true
	}
	for _, hr := range rec.Held {
		r.held[hr.Hash] = heldSecret{secret: hr.Secret, from: hr.From}
	}
	for _, er := range rec.Epochs {
		s, ok := r.stateAt(er.Hash)
		if !ok {
			return nil, fmt.Errorf("failed to read room: %w: an epoch without its change", ErrMalformed)
		}
		e := &Epoch{Hash: er.Hash, Number: s.Epoch, group: r.Group, mask: er.Mask, periods: er.Periods,
			sendPeriods: er.SendPeriods, me: er.Me, order: er.Order, opened: er.Opened,
			senders: map[[32]byte]*sender{}, watch: map[[16]byte]slot{}}
		if er.Secret != nil {
			e.secret, e.hasSec = *er.Secret, true
		}
		for _, sr := range er.Senders {
			m, ok := s.ByKey(sr.Key)
			if !ok {
				return nil, fmt.Errorf("failed to read room: %w: a sender who is not a member", ErrMalformed)
			}
			sd := &sender{ed: m.Ed, x: m.X, key: sr.Key, ch: chain{N: sr.Chain.N, Msg: sr.Chain.Msg, Tag: sr.Chain.Tag},
				skipped: map[uint32]skippedKey{}}
			for _, k := range sr.Skipped {
				sd.skipped[k.N] = skippedKey{ck: k.CK, tag: k.Tag, order: k.Order}
				e.watch[k.Tag] = slot{s: sd, n: k.N}
				e.skipped++
			}
			e.senders[sr.Key] = sd
			e.rewatch(sd)
		}
		r.epochs[er.Hash] = e
	}
	return r, nil
}
