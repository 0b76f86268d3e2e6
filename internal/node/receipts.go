package node

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// A recipient must not stand out among relays (SPEC §6, §13): until its
// receipt leaves, it carries what it opened like any relay carries what it
// holds, and its receipts leave after a random delay of up to
// Config.ReceiptDelay, several at a time, rather than the moment the
// envelope arrived. When a receipt leaves, the recipient drops its copy of
// the envelope, as every relay does when the receipt reaches it.
//
// A waiting receipt is stored in colDelayed under its target's ID:
// the receipt (54 bytes) || be64(when it leaves, Unix seconds).

// queueReceipt makes the receipt for an envelope I opened, to leave at a
// random time within the delay (at once with no delay).
func (n *Node) queueReceipt(tx *store.Tx, r *envelope.Envelope) error {
	if n.cfg.ReceiptDelay <= 0 {
		return n.releaseReceipt(tx, r)
	}
	var b [8]byte
	if _, err := io.ReadFull(n.rand, b[:]); err != nil {
		return fmt.Errorf("failed to draw a receipt delay: %w", err)
	}
	wait := time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(n.cfg.ReceiptDelay))
	at := n.now().Add(wait)
	v := binary.BigEndian.AppendUint64(r.Marshal(), uint64(at.Unix()))
	if err := tx.Put(colDelayed, r.Target[:], v, r.ExpiresAt()); err != nil {
		return err
	}
	if n.nextRelease.IsZero() || at.Before(n.nextRelease) {
		n.nextRelease = at
	}
	return nil
}

// releaseReceipt puts a receipt in the outbox and drops my copy of what it
// proves delivered.
func (n *Node) releaseReceipt(tx *store.Tx, r *envelope.Envelope) error {
	if err := n.putEnvelope(tx, r.Marshal(), n.ownFlags()); err != nil {
		return err
	}
	// Delivered, here: once this commits, no link asks a neighbour for it
	// again (Expect). A neighbour that has not got the receipt yet — a link
	// died with it in the air — still offers it, and without this a
	// flapping link would fetch again every chunk of a file received just
	// before it went down. Until the receipt leaves, my copy is held and
	// wanted no more than a relay's (receipts wait as relays carry).
	n.journal = append(n.journal, change{id: r.Target, proven: r.Expiry})
	if hm, held := n.inv.m[r.Target]; held && !hm.own || n.written[r.Target] {
		return n.deleteEnvelope(tx, r.Target)
	}
	return nil
}

// ReleaseReceipts sends the receipts whose time has come (all of them if
// all is set, as before an export). A running node calls it every few
// seconds; it costs nothing while none is due.
func (n *Node) ReleaseReceipts(all bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.releaseReceipts(all)
}

func (n *Node) releaseReceipts(all bool) error {
	now := n.now()
	if !all && (n.nextRelease.IsZero() || now.Before(n.nextRelease)) {
		return nil
	}
	var next time.Time
	err := n.update(func(tx *store.Tx) error {
		type due struct {
			r *envelope.Envelope
		}
		var dues []due
		err := tx.ForEach(colDelayed, func(v []byte, _ time.Time) error {
			if len(v) != envelope.ReceiptSize+8 {
				return nil // not ours to read: dropped below by expiry
			}
			at := time.Unix(int64(binary.BigEndian.Uint64(v[envelope.ReceiptSize:])), 0)
			r, err := envelope.Parse(v[:envelope.ReceiptSize])
			if err != nil {
				return nil
			}
			if all || !at.After(now) {
				dues = append(dues, due{r})
			} else if next.IsZero() || at.Before(next) {
				next = at
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range dues {
			if err := n.releaseReceipt(tx, d.r); err != nil {
				return err
			}
			if err := tx.Delete(colDelayed, d.r.Target[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to release receipts: %w", err)
	}
	n.nextRelease = next
	return nil
}

// loadNextRelease finds when the first waiting receipt leaves, at open.
func (n *Node) loadNextRelease() error {
	return n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colDelayed, func(v []byte, _ time.Time) error {
			if len(v) == envelope.ReceiptSize+8 {
				at := time.Unix(int64(binary.BigEndian.Uint64(v[envelope.ReceiptSize:])), 0)
				if n.nextRelease.IsZero() || at.Before(n.nextRelease) {
					n.nextRelease = at
				}
			}
			return nil
		})
	})
}

// Hop budgets must not name the writer (SPEC §12.7): a copy that arrives
// with one hop less than the writers' usual budget would otherwise come
// straight from its writer, and a receipt from its recipient. So a copy
// leaves with its budget one lower, except that a budget of HopBlur or more
// stays as it is with probability 1/2 (as Freenet does with its
// hops-to-live): a neighbour that hands on a copy at 12 or 11 may have
// written it or relayed it. The hop limit stays finite: below HopBlur every
// hop counts, and above it half of them do on average.
const HopBlur = 8

// startHops is the hop budget of an envelope this node writes.
func (n *Node) startHops() uint8 { return n.cfg.Hops }

// LeavingHops replaces each hop budget in hops, of envelopes held here,
// with the one a copy leaves with (nextHops): what a Have announces
// (SPEC §12.2), so that a neighbour raising its copy's budget to it spends
// hops as a copy would.
func (n *Node) LeavingHops(hops []uint8) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, h := range hops {
		if h > 0 {
			hops[i] = n.nextHops(h)
		}
	}
}

// nextHops is the hop budget a copy of an envelope held with h leaves with.
func (n *Node) nextHops(h uint8) uint8 {
	if h >= HopBlur {
		var b [1]byte
		if _, err := io.ReadFull(n.rand, b[:]); err == nil && b[0]&1 == 0 {
			return h
		}
	}
	return h - 1
}
