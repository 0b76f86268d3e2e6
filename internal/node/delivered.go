package node

import (
	"encoding/binary"
	"maps"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// provenDelivered remembers, in memory, the envelopes this node purged
// because a receipt checked against them (its secret opened their
// commitment) proved them delivered. A link then never asks a neighbour for
// one of them: the neighbour would send a message that is delivered already
// (SPEC §12.2). Only checked receipts count — an unchecked one proves
// nothing and could be forged to stop a message from spreading — and the
// set is bounded; forgetting only costs a wasted transfer.
//
// It is keyed by the first 8 bytes of each ID (16 bytes an entry, not 40:
// a walking node keeps a thousand): IDs are SHA-256 outputs, and making an
// envelope whose ID shares its first 8 bytes with a delivered one, so that
// nodes would not ask for it, costs 2^64 hashes.
type provenDelivered struct {
	m         map[uint64]uint32 // the envelope's expiry: past it, no copy is left to ask for
	nextPrune int               // size at which expired entries are dropped
}

func provenKey(id envelope.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// has says whether id was proven delivered.
func (p *provenDelivered) has(id envelope.ID) bool {
	_, ok := p.m[provenKey(id)]
	return ok
}

// provenEntry is an envelope proven delivered and its expiry.
type provenEntry struct {
	id     envelope.ID
	expiry uint32
}

// maxProven bounds the set: past it, it starts afresh.
const maxProven = 1 << 16

// add remembers entries; expired ones are dropped whenever the set has
// doubled since the last time, so that it holds about what is still alive
// (a busy mesh proves thousands of messages delivered a day).
func (p *provenDelivered) add(entries []provenEntry, now uint32) {
	if len(entries) == 0 {
		return
	}
	if p.m == nil || len(p.m)+len(entries) > maxProven {
		p.m = make(map[uint64]uint32, len(entries))
	}
	for _, e := range entries {
		p.m[provenKey(e.id)] = e.expiry
	}
	if len(p.m) >= p.nextPrune {
		maps.DeleteFunc(p.m, func(_ uint64, expiry uint32) bool { return expiry <= now })
		p.nextPrune = max(2*len(p.m), 1024)
	}
}

// NotDelivered returns the IDs not known here to be delivered: those worth
// asking a neighbour for.
func (n *Node) NotDelivered(ids []envelope.ID) []envelope.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := ids[:0:0]
	for _, id := range ids {
		if !n.delivered.has(id) {
			out = append(out, id)
		}
	}
	return out
}
