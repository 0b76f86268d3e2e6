package node

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Two contacts who link recognise each other privately (SPEC §12.6): each
// side sends a proof per active contact, bound to the link, padded with
// random values; the other finds the one it expects, if any. A stranger
// sees only random values, and roughly how many (a power of two).
const (
	MinLinkProofs = 32
	MaxLinkProofs = 512
	linkProofSize = 16
)

// LinkProofs returns this node's proofs for a link whose handshake hash is
// binding: one per active contact (at most MaxLinkProofs), padded with
// random values to a power of two of at least MinLinkProofs, shuffled.
func (n *Node) LinkProofs(binding []byte, dialled bool) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rc, err := n.recognition()
	if err != nil {
		return nil, err
	}
	var proofs [][]byte
	low := n.id.Public().Fingerprint()
	for i, key := range rc.send {
		proof := keys.LinkProofWith(key, dialled, low < rc.sendTo[i], binding)
		proofs = append(proofs, proof[:])
	}
	total := MinLinkProofs
	for total < len(proofs) {
		total *= 2
	}
	for len(proofs) < total {
		r := make([]byte, linkProofSize)
		if _, err := io.ReadFull(n.rand, r); err != nil {
			return nil, fmt.Errorf("failed to pad link proofs: %w", err)
		}
		proofs = append(proofs, r)
	}
	if err := n.shuffle(proofs); err != nil {
		return nil, err
	}
	return bytes.Join(proofs, nil), nil
}

// shuffle is Fisher–Yates with the node's randomness.
func (n *Node) shuffle(s [][]byte) error {
	var b [4]byte
	for i := len(s) - 1; i > 0; i-- {
		if _, err := io.ReadFull(n.rand, b[:]); err != nil {
			return fmt.Errorf("failed to shuffle: %w", err)
		}
		j := int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) % (i + 1)
		s[i], s[j] = s[j], s[i]
	}
	return nil
}

// RecogniseLink looks for an active contact's proof among a neighbour's
// (periods one either side of now, for clock skew). peerDialled says which
// side the proofs came from.
func (n *Node) RecogniseLink(binding []byte, peerDialled bool, proofs []byte) (Contact, bool, error) {
	if len(proofs)%linkProofSize != 0 || len(proofs) > MaxLinkProofs*linkProofSize {
		return Contact{}, false, fmt.Errorf("link proofs of %d bytes", len(proofs))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rc, err := n.recognition()
	if err != nil {
		return Contact{}, false, err
	}
	expect := make(map[[linkProofSize]byte]int, len(rc.recv))
	self := n.id.Public().Fingerprint()
	for _, r := range rc.recv {
		c := rc.contacts[r.contact]
		expect[keys.LinkProofWith(r.key, peerDialled, c.Fingerprint < self, binding)] = r.contact
	}
	for i := 0; i < len(proofs); i += linkProofSize {
		if c, ok := expect[[linkProofSize]byte(proofs[i:i+linkProofSize])]; ok {
			return rc.contacts[c], true, nil
		}
	}
	return Contact{}, false, nil
}

// recognitionKeys are the recognition keys of the current period, derived
// once: checking a Hello then costs one HMAC per key, not a read of every
// contact and a walk down its chains. Any change to a contact drops them
// (reindex, rebuildIndex, Reject).
type recognitionKeys struct {
	period   keys.Period
	send     [][]byte  // for my proofs: one per active contact, the first MaxLinkProofs added
	sendTo   []string  // the contact each is for (its fingerprint)
	contacts []Contact // active contacts
	recv     []struct {
		key     []byte
		contact int // index into contacts
	}
}

func (n *Node) recognition() (*recognitionKeys, error) {
	p := keys.PeriodOf(n.now())
	if n.recog != nil && n.recog.period == p {
		return n.recog, nil
	}
	cs, err := n.activeContacts()
	if err != nil {
		return nil, err
	}
	rc := &recognitionKeys{period: p}
	for _, c := range cs {
		if len(c.Sessions) == 0 {
			continue
		}
		if key, ok := c.Sessions[0].S.ProofKey(p); ok && len(rc.send) < MaxLinkProofs {
			rc.send = append(rc.send, key)
			rc.sendTo = append(rc.sendTo, c.Fingerprint)
		}
		rc.contacts = append(rc.contacts, c.view())
		for _, ps := range c.Sessions {
			for _, key := range ps.S.CheckKeys(p) {
				rc.recv = append(rc.recv, struct {
					key     []byte
					contact int
				}{key, len(rc.contacts) - 1})
			}
		}
	}
	n.recog = rc
	return rc, nil
}

func (n *Node) activeContacts() ([]*contactRecord, error) {
	var out []*contactRecord
	err := n.st.View(func(tx *store.Tx) error {
		cs, err := allContacts(tx)
		for _, c := range cs {
			if c.State == StateActive {
				out = append(out, c)
			}
		}
		return err
	})
	slices.SortFunc(out, func(a, b *contactRecord) int { return a.Added.Compare(b.Added) }) // the first MaxLinkProofs get proofs
	return out, err
}
