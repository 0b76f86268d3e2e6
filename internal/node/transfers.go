package node

import "github.com/grapevine-mesh/grapevine/internal/envelope"

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
// opaque key, one per link), those worth asking it for: not held here
// (with at least the hop budget hops[i], if hops is not nil), not proven
// delivered, and not expected over another link — and records them as
// expected over owner. It returns in later those already expected over
// another link: the caller asks for them after a while if they have not
// arrived. With steal, an envelope expected elsewhere is taken over rather
// than left for later.
func (n *Node) Expect(owner any, ids []envelope.ID, hops []uint8, steal bool) (want, later []envelope.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.incoming == nil {
		n.incoming = map[envelope.ID]any{}
	}
	for i, id := range ids {
		if hm, ok := n.inv.m[id]; ok && (hops == nil || hm.hops >= hops[i]) {
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
	return want, later
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
