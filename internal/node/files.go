package node

import (
	"context"
	"fmt"
	"os"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// ExportOptions say how ExportFile treats what is at its path.
type ExportOptions struct {
	// Replace lets ExportFile replace a regular file (never anything else).
	Replace bool
	// Progress, if set, is called after each envelope written, and once at
	// the end with Done set (from the exporting goroutine, with the node
	// locked: it must not call the node). Not sent over the local API.
	Progress func(Progress) `json:"-"`
}

// ImportOptions say how ImportFileWith reads.
type ImportOptions struct {
	// Progress, if set, is called after each envelope read, and once at the
	// end with Done set (from the importing goroutine; it must not call the
	// node).
	Progress func(Progress)
}

// Progress is how far an export or import has come. The totals are known
// before it starts: for an export, every envelope held and their bytes
// (those with no hops left or expired are not written, so it ends short of
// them; the final call has the totals written); for an import, the file's
// size (TotalEnvelopes is 0: a bundle does not say how many it holds
// before its end; Bytes counts the envelopes' bytes, short of the file's by
// the framing, until the final call).
type Progress struct {
	Envelopes      int   `json:"envelopes"`
	Bytes          int64 `json:"bytes"`
	TotalEnvelopes int   `json:"total_envelopes,omitempty"`
	TotalBytes     int64 `json:"total_bytes"`
	Done           bool  `json:"done,omitempty"`
}

// Percent is how far p has come by its bytes, 0 to 100: 100 when there was
// nothing to do.
func (p Progress) Percent() int {
	if p.TotalBytes <= 0 {
		return 100
	}
	return int(min(p.Bytes, p.TotalBytes) * 100 / p.TotalBytes)
}

// report calls fn, if any, with p.
func (p Progress) report(fn func(Progress)) {
	if fn != nil {
		fn(p)
	}
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
	p := Progress{TotalEnvelopes: len(n.inv.m), TotalBytes: n.inv.bytes}
	written, count, err := bundle.Create(path, bundle.CreateOptions{Replace: o.Replace, Now: n.now}, func(put func([]byte) error) error {
		return n.eachEnvelope(func(_ byte, raw []byte, e *envelope.Envelope) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.Hops == 0 || e.Expired(n.now()) {
				return nil
			}
			cp := append([]byte(nil), raw...)
			envelope.SetHops(cp, nextHops(e.Hops))
			if err := put(cp); err != nil {
				return err
			}
			p.Envelopes, p.Bytes = p.Envelopes+1, p.Bytes+int64(len(cp))
			p.report(o.Progress)
			return nil
		})
	})
	if err != nil {
		return ExportResult{}, fmt.Errorf("failed to export: %w", err)
	}
	p.TotalEnvelopes, p.TotalBytes, p.Done = p.Envelopes, p.Bytes, true // all there was to write
	p.report(o.Progress)
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
	return n.ImportFileWith(ctx, path, ImportOptions{})
}

// ImportFileWith is ImportFile, reporting its progress as o asks.
func (n *Node) ImportFileWith(ctx context.Context, path string, o ImportOptions) (ImportReport, error) {
	var p Progress
	if fi, err := os.Stat(path); err == nil {
		p.TotalBytes = fi.Size()
	}
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
		p.Envelopes, p.Bytes = p.Envelopes+1, p.Bytes+int64(len(env))
		p.report(o.Progress)
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
	p.Bytes = max(p.Bytes, p.TotalBytes) // the file was read to its end
	p.TotalBytes, p.Done = p.Bytes, true
	p.report(o.Progress)
	return rep, nil
}
