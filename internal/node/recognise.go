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
// side sends a Hello of LinkProofSlots proofs, one per active contact (a
// random LinkProofSlots of them when there are more), bound to the link,
// the rest random values; the other finds the one it expects, if any. The
// Hello has one size whatever the number of contacts, so a stranger learns
// nothing from it, not even roughly how many.
const (
	LinkProofSlots = 16
	LinkProofSize  = 8 // the first 8 bytes of a proof: a stranger's guess matches with p = 2⁻⁶⁴
	LinkHelloSize  = LinkProofSlots * LinkProofSize
)

// LinkProofs returns this node's Hello for a link whose handshake hash is
// binding: LinkHelloSize bytes of proofs and random values, shuffled.
func (n *Node) LinkProofs(binding []byte, dialled bool) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rc, err := n.recognition()
	if err != nil {
		return nil, err
	}
	picked := make([]int, len(rc.send))
	for i := range picked {
		picked[i] = i
	}
	// More contacts than slots: a fresh random choice per link, so each
	// contact is recognised on some links rather than some contacts never.
	if err := n.shuffleInts(picked); err != nil {
		return nil, err
	}
	picked = picked[:min(len(picked), LinkProofSlots)]
	proofs := make([][]byte, 0, LinkProofSlots)
	low := n.id.Public().Fingerprint()
	for _, i := range picked {
		proof := rc.send[i].Proof(dialled, low < rc.sendTo[i], binding)
		proofs = append(proofs, proof[:LinkProofSize])
	}
	for len(proofs) < LinkProofSlots {
		r := make([]byte, LinkProofSize)
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

func (n *Node) shuffleInts(s []int) error {
	return shuffleWith(n.rand, len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// shuffle is Fisher–Yates with the node's randomness.
func (n *Node) shuffle(s [][]byte) error {
	return shuffleWith(n.rand, len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func shuffleWith(rnd io.Reader, n int, swap func(i, j int)) error {
	var b [4]byte
	for i := n - 1; i > 0; i-- {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return fmt.Errorf("failed to shuffle: %w", err)
		}
		j := int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) % (i + 1)
		swap(i, j)
	}
	return nil
}

// RecogniseLink looks for an active contact's proof among a neighbour's
// (periods one either side of now, for clock skew). peerDialled says which
// side the proofs came from.
func (n *Node) RecogniseLink(binding []byte, peerDialled bool, proofs []byte) (Contact, bool, error) {
	if len(proofs) != LinkHelloSize {
		return Contact{}, false, fmt.Errorf("link proofs of %d bytes, want %d", len(proofs), LinkHelloSize)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rc, err := n.recognition()
	if err != nil {
		return Contact{}, false, err
	}
	expect := make(map[[LinkProofSize]byte]int, len(rc.recv))
	self := n.id.Public().Fingerprint()
	for _, r := range rc.recv {
		c := rc.contacts[r.contact]
		proof := r.key.Proof(peerDialled, c.Fingerprint < self, binding)
		expect[[LinkProofSize]byte(proof[:LinkProofSize])] = r.contact
	}
	for i := 0; i < len(proofs); i += LinkProofSize {
		if c, ok := expect[[LinkProofSize]byte(proofs[i:i+LinkProofSize])]; ok {
			return rc.contacts[c], true, nil
		}
	}
	return Contact{}, false, nil
}

// recognitionKeys are the recognition keys of the current period, derived
// once, each with its HMAC key schedule: checking a Hello then costs one
// HMAC per key, not a read of every contact and a walk down its chains.
// Any change to a contact drops them (reindex, rebuildIndex, Reject).
type recognitionKeys struct {
	period   keys.Period
	send     []*keys.LinkProver // for my proofs: one per active contact
	sendTo   []string           // the contact each is for (its fingerprint)
	contacts []Contact          // active contacts
	recv     []checkKey
}

// checkKey checks the proofs of contacts[contact].
type checkKey struct {
	key     *keys.LinkProver
	contact int // index into contacts
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
	// My proof key for a contact is also one of the keys I check theirs
	// with (the other role): one prover for both. Each holds an HMAC's
	// key schedule (its two chaining values, 64 bytes), on every node of
	// a simulated city.
	provers := map[string]*keys.LinkProver{}
	prover := func(key []byte) *keys.LinkProver {
		if lp, ok := provers[string(key)]; ok {
			return lp
		}
		lp := keys.NewLinkProver(key)
		provers[string(key)] = lp
		return lp
	}
	for _, c := range cs {
		if len(c.Sessions) == 0 {
			continue
		}
		rc.contacts = append(rc.contacts, c.view())
		send := rc.addKeys(c, len(rc.contacts)-1, prover)
		if send != nil {
			rc.send = append(rc.send, send)
			rc.sendTo = append(rc.sendTo, c.Fingerprint)
		}
	}
	n.recog = rc
	return rc, nil
}

// addKeys appends the keys that check contact k's proofs (c's) to rc.recv
// and returns the prover of my proofs for c, if I have one this period.
func (rc *recognitionKeys) addKeys(c *contactRecord, k int, prover func([]byte) *keys.LinkProver) *keys.LinkProver {
	var send *keys.LinkProver
	if key, ok := c.Sessions[0].S.ProofKey(rc.period); ok {
		send = prover(key)
	}
	for _, ps := range c.Sessions {
		for _, key := range ps.S.CheckKeys(rc.period) {
			rc.recv = append(rc.recv, checkKey{prover(key), k})
		}
	}
	return send
}

// refresh replaces the keys of c, which changed, where they stand, and
// says whether it could: not if c was not recognised before or is not now,
// or gained or lost its proof key, which changes the lists' shape. Every
// message sent or opened changes its contact's sessions, and a full
// rebuild reads and decodes every contact; a refresh derives only c's
// keys, and leaves the keys in the order a rebuild would give them.
func (rc *recognitionKeys) refresh(c *contactRecord) bool {
	k := slices.IndexFunc(rc.contacts, func(v Contact) bool { return v.Fingerprint == c.Fingerprint })
	if k < 0 || c.State != StateActive || len(c.Sessions) == 0 {
		return false
	}
	i := slices.Index(rc.sendTo, c.Fingerprint)
	_, proves := c.Sessions[0].S.ProofKey(rc.period)
	if proves != (i >= 0) {
		return false
	}
	// A contact's check keys sit together in recv (addKeys), so they can
	// be cut out and the new ones put in their place.
	from := slices.IndexFunc(rc.recv, func(r checkKey) bool { return r.contact == k })
	if from < 0 {
		return false // had none: where they go is a rebuild's to say
	}
	to := from
	for to < len(rc.recv) && rc.recv[to].contact == k {
		to++
	}
	rest := slices.Clone(rc.recv[to:])
	rc.recv = rc.recv[:from]
	send := rc.addKeys(c, k, keys.NewLinkProver)
	rc.recv = append(rc.recv, rest...)
	rc.contacts[k] = c.view()
	if i >= 0 {
		rc.send[i] = send
	}
	return true
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
	slices.SortFunc(out, func(a, b *contactRecord) int { return a.Added.Compare(b.Added) })
	return out, err
}
