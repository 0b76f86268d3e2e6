package node

import "github.com/grapevine-mesh/grapevine/internal/envelope"

// provenDelivered remembers, in memory, the envelopes this node purged
// because a receipt checked against them (its secret opened their
// commitment) proved them delivered. A link then never asks a neighbour for
// one of them: the neighbour would send a message that is delivered already
// (SPEC §12.2). Only checked receipts count — an unchecked one proves
// nothing and could be forged to stop a message from spreading — and the
// set is bounded; forgetting only costs a wasted transfer.
type provenDelivered struct {
	m map[envelope.ID]struct{}
}

// maxProven bounds the set: past it, it starts afresh.
const maxProven = 1 << 16

func (p *provenDelivered) add(ids []envelope.ID) {
	if len(ids) == 0 {
		return
	}
	if p.m == nil || len(p.m)+len(ids) > maxProven {
		p.m = make(map[envelope.ID]struct{}, len(ids))
	}
	for _, id := range ids {
		p.m[id] = struct{}{}
	}
}

// NotDelivered returns the IDs not known here to be delivered: those worth
// asking a neighbour for.
func (n *Node) NotDelivered(ids []envelope.ID) []envelope.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := n.delivered.m[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}
