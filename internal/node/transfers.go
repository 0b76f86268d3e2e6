package node

import (
	"bytes"
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Envelopes on their way here. A neighbour that just came to hold an
// envelope announces it (a Have frame, SPEC §12.2) rather than pushing it
// whole, and this node asks for it (Want) on one link only: the link that
// expects it is recorded here until the envelope arrives or the link ends,
// and the other links that hear of it meanwhile wait (session.ClaimTimeout)
// before they ask in turn. Several neighbours who got an envelope at once
// then send it here once, not once each; a link that dies with the
// envelope in the air costs a wait, never the envelope.

// maxIncoming bounds the envelopes expected at once; past it, links ask
// without recording (a duplicate at worst).
const maxIncoming = 1 << 16

// Expect returns, of the envelopes a neighbour announced on link owner (an
// opaque key, one per link), those worth asking it for: not held here, not
// proven delivered, and not expected over another link — and records them
// as expected over owner. It returns in later those already expected over
// another link: the caller asks for them after a while if they have not
// arrived. With steal, an envelope expected elsewhere is taken over rather
// than left for later. If hops is not nil, it returns in raise those held
// here with a smaller hop budget than hops[i], the neighbour's: the caller
// raises the budget of the copy held (Raise) rather than asking for the
// neighbour's.
func (n *Node) Expect(owner any, ids []envelope.ID, hops []uint8, steal bool) (want, later, raise []envelope.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.incoming == nil {
		n.incoming = map[envelope.ID]any{}
	}
	for i, id := range ids {
		if hm, ok := n.inv.m[id]; ok {
			if hops != nil && hm.hops < hops[i] {
				raise = append(raise, id)
			}
			continue
		}
		if n.delivered.has(id) {
			continue
		}
		if o, ok := n.incoming[id]; ok && o != owner && !steal {
			later = append(later, id)
			continue
		}
		if len(n.incoming) < maxIncoming {
			n.incoming[id] = owner
		}
		want = append(want, id)
	}
	return want, later, raise
}

// Raise gives the envelopes held here with a smaller hop budget than
// hops[i] that budget, as if a neighbour's copy with it had arrived, and
// returns how many it raised. A hop budget is only ever what the last
// neighbour says: relays rewrite it (§12.7), so a copy's bytes vouch for it
// no more than an announcement does, and a node that hears of a copy that
// goes further needs only the number, not the copy (SPEC §12.2). The
// budget is stored through ingest, so the same caps apply (MaxHops, a
// Nearby post's) and the copy is announced again as a better one.
func (n *Node) Raise(ids []envelope.ID, hops []uint8) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var raws [][]byte
	var before []uint8
	err := n.st.View(func(tx *store.Tx) error {
		for i, id := range ids {
			if hm, ok := n.inv.m[id]; !ok || hm.hops >= hops[i] {
				continue
			}
			v, ok, err := n.record(tx, id)
			if err != nil {
				return err
			}
			if !ok || len(v) < 2 {
				continue
			}
			raw := bytes.Clone(v[1:]) // record's slice is read-only
			envelope.SetHops(raw, hops[i])
			raws = append(raws, raw)
			before = append(before, n.inv.m[id].hops)
		}
		return nil
	})
	if err != nil || len(raws) == 0 {
		return 0, err
	}
	if _, err := n.ingest(raws, nil); err != nil {
		return 0, fmt.Errorf("failed to raise hop budgets: %w", err)
	}
	raised := 0
	for i, raw := range raws {
		if hm, ok := n.inv.m[envelope.ComputeID(raw)]; ok && hm.hops > before[i] {
			raised++ // not if a cap held it where it was
		}
	}
	return raised, nil
}

// Arriving records that envelopes are arriving over link owner, unasked
// (a neighbour pushed them whole): until they are stored (Unexpect), other
// links wait before asking for them. Those expected over another link stay
// so.
func (n *Node) Arriving(owner any, ids []envelope.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.incoming == nil {
		n.incoming = map[envelope.ID]any{}
	}
	for _, id := range ids {
		if _, ok := n.incoming[id]; !ok && len(n.incoming) < maxIncoming {
			n.incoming[id] = owner
		}
	}
}

// Unexpect forgets that these envelopes are on their way over link owner:
// they arrived (and were stored or dropped), or the link ended.
func (n *Node) Unexpect(owner any, ids []envelope.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		if o, ok := n.incoming[id]; ok && o == owner {
			delete(n.incoming, id)
		}
	}
	if len(n.incoming) == 0 {
		n.incoming = nil // a Go map keeps its size: an idle node lets it go
	}
}
