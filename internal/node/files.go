package node

import (
	"context"
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// ExportOptions say how ExportFile treats what is at its path.
type ExportOptions struct {
	// Replace lets ExportFile replace a regular file (never anything else).
	Replace bool
}

// ExportResult is what ExportFile wrote.
type ExportResult struct {
	Path  string `json:"path"`  // the file written (a new name, if given a directory)
	Count int    `json:"count"` // envelopes in it
}

// ExportFile writes every unexpired envelope this node holds — its outbox,
// its receipts (including those still waiting to leave) and what it carries
// for others — to a new bundle file,
// atomically (bundle.Create: a path that is a directory gets a new file in
// it; an existing file is replaced only with o.Replace). Each copy leaves
// with its hop budget decremented; envelopes with no hops left stay here.
// Cancelling ctx stops the export and leaves no file.
func (n *Node) ExportFile(ctx context.Context, path string, o ExportOptions) (ExportResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// A bundle is written to be carried away: every waiting receipt goes
	// with it (SPEC §6), so the carrier learns no more than a neighbour who
	// met this node when the receipts left.
	if err := n.releaseReceipts(true); err != nil {
		return ExportResult{}, fmt.Errorf("failed to export: %w", err)
	}
	written, count, err := bundle.Create(path, bundle.CreateOptions{Replace: o.Replace, Now: n.now}, func(put func([]byte) error) error {
		return n.eachEnvelope(func(_ byte, raw []byte, e *envelope.Envelope) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.Hops == 0 || e.Expired(n.now()) {
				return nil
			}
			cp := append([]byte(nil), raw...)
			envelope.SetHops(cp, n.nextHops(e.Hops))
			return put(cp)
		})
	})
	if err != nil {
		return ExportResult{}, fmt.Errorf("failed to export: %w", err)
	}
	return ExportResult{Path: written, Count: count}, nil
}

// ImportFile ingests a bundle file. A damaged or truncated bundle yields
// every intact envelope; a file that is not a bundle is refused; nothing
// already stored is harmed either way. Cancelling ctx stops reading: what
// was read so far is kept (importing the file again takes the rest), and the
// report says so much. The node is locked batch by batch (at most
// importBatch envelopes or importBatchBytes), not for the whole file, so
// links and commands go on during a long import, in bounded memory.
func (n *Node) ImportFile(ctx context.Context, path string) (ImportReport, error) {
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
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = append(batch, append([]byte(nil), env...))
		if size += len(env); len(batch) == importBatch || size >= importBatchBytes {
			return flush()
		}
		return nil
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	rep.Damaged, rep.SkippedBytes, rep.Complete = br.Damaged, br.SkippedBytes, br.Complete
	if err != nil {
		return rep, fmt.Errorf("failed to import %s: %w", path, err)
	}
	return rep, nil
}
