package node

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
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
// straight from its writer, and a receipt from its recipient. So the writer
// spends a random 0 to HopBlur hops of its limit before the first hop,
// drawn once for each envelope it writes: a neighbour that hands on a copy
// at 11 may have written it with 12 or relayed it from a writer one hop
// further that drew one less. Every copy then leaves with one hop less than
// the copy it came from, so the hop limit bounds the path: a node that
// raises its copy to the best budget a neighbour announces (Raise) takes the
// shortest path's, never more. Blurring each hop instead (as Freenet does
// with hops-to-live) did not bound it: a node keeps the best of its
// neighbours' budgets, and in a crowd one of them has nearly always not
// counted its hop, so 12 hops reached 41.
const HopBlur = 3

// startHops is the hop budget of an envelope this node writes: its hop
// limit less a random 0 to HopBlur, at least 1.
func (n *Node) startHops() uint8 {
	h := n.cfg.Hops
	spread := min(HopBlur, int(h)-1)
	if spread <= 0 {
		return h
	}
	values := spread + 1
	var b [1]byte
	for {
		if _, err := io.ReadFull(n.rand, b[:]); err != nil {
			return h - uint8(spread) // no randomness: the least reach, never more
		}
		if int(b[0]) < 256-256%values { // uniform: reject the leftover
			return h - uint8(int(b[0])%values)
		}
	}
}

// LeavingHops replaces each hop budget in hops, of envelopes held here,
// with the one a copy leaves with (nextHops): what a Have announces
// (SPEC §12.2), so that a neighbour raising its copy's budget to it spends
// hops as a copy would.
func (n *Node) LeavingHops(hops []uint8) {
	for i, h := range hops {
		hops[i] = nextHops(h)
	}
}

// nextHops is the hop budget a copy of an envelope held with h leaves with.
func nextHops(h uint8) uint8 {
	if h == 0 {
		return 0
	}
	return h - 1
}

// A node keeps the secret of every receipt that is not forged (SPEC §6): a
// receipt it carries is its own record, held sealed in the store until it
// expires; a secret whose receipt is not carried here (relaying off, the
// receipt evicted over the quota, the receipt of what I opened) is filed in
// colReceipts under the target, the commitment it opens and the receipt's
// expiry (keepSecret). keptSecrets indexes both in memory by what an
// arriving envelope is checked against, so that the check is one map
// lookup, and a receipt carried costs one write, not two. It is made again
// when the node opens, from the receipts held and the secrets filed.
//
// Forged receipts for an envelope open other commitments, and a re-dated
// copy of the genuine receipt bears another expiry: each has an entry of
// its own beside the genuine one and never replaces it. The target's ID is
// not part of the entry: the commitment, 16 bytes of SHA-256 that only the
// secret opens, is what proves delivery, and an envelope whose commitment a
// kept secret opens, with the expiry its receipt bore, was delivered
// whatever ID a receipt names (secrets are drawn afresh for each envelope).
type keptSecrets struct {
	m         map[keptKey]struct{}
	nextPrune int // size at which expired entries are dropped
}

type keptKey struct {
	commit [envelope.CommitSize]byte
	expiry uint32
}

func secretKeyOf(secret [envelope.SecretSize]byte, expiry uint32) keptKey {
	return keptKey{commit: envelope.Commitment(secret), expiry: expiry}
}

// proves says whether a secret kept here opens the commitment of an
// envelope with this expiry.
func (k *keptSecrets) proves(e *envelope.Envelope) bool {
	_, ok := k.m[keptKey{commit: e.Commit, expiry: e.Expiry}]
	return ok
}

// add indexes a secret, and reports whether it was new. Entries past their
// expiry (the store swept their items) are dropped whenever the index has
// doubled since the last time.
func (k *keptSecrets) add(key keptKey, now uint32) bool {
	if k.m == nil {
		k.m = map[keptKey]struct{}{}
	}
	had := len(k.m)
	if k.m[key] = struct{}{}; len(k.m) == had { // one probe of a map too large for the cache, not two
		return false
	}
	if len(k.m) >= k.nextPrune {
		maps.DeleteFunc(k.m, func(key keptKey, _ struct{}) bool { return key.expiry <= now })
		k.nextPrune = max(2*len(k.m), 1024)
	}
	return true
}

func (k *keptSecrets) remove(keys []keptKey) {
	for _, key := range keys {
		delete(k.m, key)
	}
}

// secretKey is where keepSecret files a secret: by target, commitment and
// expiry, so that neither forged receipts for an envelope nor a re-dated
// copy of its receipt replace the genuine one's.
func secretKey(target envelope.ID, key keptKey) []byte {
	b := make([]byte, 0, envelope.IDSize+envelope.CommitSize+4)
	return binary.BigEndian.AppendUint32(append(append(b, target[:]...), key.commit[:]...), key.expiry)
}

// keepSecret files the secret of a receipt not carried here until expires.
// The caller indexes it in n.kept (once the transaction is sure to commit,
// or undoing it if it fails).
func keepSecret(tx *store.Tx, target envelope.ID, secret [envelope.SecretSize]byte, expires time.Time) (keptKey, error) {
	key := secretKeyOf(secret, uint32(expires.Unix()))
	return key, tx.Put(colReceipts, secretKey(target, key), secret[:], expires)
}

// loadKeptSecrets makes the index at open, from the secrets filed; the
// receipts held are added by loadInventory. Secrets filed before the
// expiry was part of the key read the same.
func (n *Node) loadKeptSecrets() error {
	now := uint32(n.now().Unix())
	return n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colReceipts, func(v []byte, exp time.Time) error {
			if len(v) == envelope.SecretSize {
				n.kept.add(secretKeyOf([envelope.SecretSize]byte(v), uint32(exp.Unix())), now)
			}
			return nil
		})
	})
}

// evictReceipt drops a receipt carried for others that the quota evicts,
// filing its secret first: it outlives the receipt, so a copy of its target
// that arrives later is still dropped here. Its entry in n.kept stays.
func (n *Node) evictReceipt(tx *store.Tx, id envelope.ID) error {
	v, ok, err := n.record(tx, id)
	if err != nil {
		return err
	}
	if ok && len(v) > 1 {
		r, err := envelope.Parse(v[1:])
		if err != nil {
			return fmt.Errorf("corrupt stored envelope: %w", err)
		}
		if _, err := keepSecret(tx, r.Target, r.Secret, r.ExpiresAt()); err != nil {
			return err
		}
	}
	return n.deleteEnvelope(tx, id)
}
