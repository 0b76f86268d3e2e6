package node

import (
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// Export writes every unexpired envelope this node holds — its outbox, its
// receipts (including those still waiting to leave) and what it carries for
// others — to a bundle file, atomically.
// Each copy leaves with its hop budget decremented; envelopes with no hops
// left stay here.
func (n *Node) Export(path string) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// A bundle is written to be carried away: every waiting receipt goes
	// with it (SPEC §6), so the carrier learns no more than a neighbour who
	// met this node when the receipts left.
	if err := n.releaseReceipts(true); err != nil {
		return 0, err
	}
	return bundle.WriteFile(path, func(put func([]byte) error) error {
		return n.eachEnvelope(func(_ byte, raw []byte, e *envelope.Envelope) error {
			if e.Hops == 0 || e.Expired(n.now()) {
				return nil
			}
			cp := append([]byte(nil), raw...)
			envelope.SetHops(cp, n.nextHops(e.Hops))
			return put(cp)
		})
	})
}

// ImportReport is what an import did: the ingest figures and the damage found.
type ImportReport struct {
	IngestReport
	Damaged      int   `json:"damaged"`       // damaged regions skipped in the file
	SkippedBytes int64 `json:"skipped_bytes"` // bytes in them
	Complete     bool  `json:"complete"`      // the file ended properly
}

// importBatch is how many envelopes go into one durable transaction.
// Import batches: at most this many envelopes or bytes per transaction, so
// a bundle of large envelopes is imported in bounded memory.
const (
	importBatch      = 10000
	importBatchBytes = 8 << 20
)

// Import ingests a bundle file. A damaged or truncated bundle yields every
// intact envelope; a file that is not a bundle is refused; nothing already
// stored is harmed either way. The node is locked batch by batch, not for
// the whole file, so links and commands go on during a long import.
func (n *Node) Import(path string) (ImportReport, error) {
	var rep ImportReport
	var batch [][]byte
	size := 0
	flush := func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		r, err := n.ingest(batch, nil)
		if err == nil {
			err = n.enforceQuota(&r)
		}
		rep.add(r)
		batch, size = batch[:0], 0
		return err
	}
	br, err := bundle.ReadFile(path, func(env []byte) error {
		batch = append(batch, append([]byte(nil), env...))
		if size += len(env); len(batch) == importBatch || size >= importBatchBytes {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	rep.Damaged, rep.SkippedBytes, rep.Complete = br.Damaged, br.SkippedBytes, br.Complete
	if err != nil {
		return rep, fmt.Errorf("failed to import %s: %w", path, err)
	}
	return rep, nil
}

func (r *IngestReport) add(o IngestReport) {
	r.Received += o.Received
	r.New += o.New
	r.Duplicate += o.Duplicate
	r.AlreadyDelivered += o.AlreadyDelivered
	r.Expired += o.Expired
	r.Invalid += o.Invalid
	r.Messages += o.Messages
	r.RequestMessages += o.RequestMessages
	r.Requests += o.Requests
	r.Receipts += o.Receipts
	r.Purged += o.Purged
	r.Delivered += o.Delivered
	r.Forged += o.Forged
	r.Ignored += o.Ignored
	r.Refused += o.Refused
	r.Evicted += o.Evicted
	r.Rekeys += o.Rekeys
	r.Clamped += o.Clamped
	r.Opened = append(r.Opened, o.Opened...)
}
