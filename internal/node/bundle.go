package node

import "context"

// Export writes every unexpired envelope this node holds to a bundle file,
// replacing a regular file at path: ExportFile with Replace.
func (n *Node) Export(path string) (int, error) {
	r, err := n.ExportFile(context.Background(), path, ExportOptions{Replace: true})
	return r.Count, err
}

// ImportReport is what an import did: the ingest figures and the damage found.
type ImportReport struct {
	IngestReport
	Damaged      int   `json:"damaged"`       // damaged regions skipped in the file
	SkippedBytes int64 `json:"skipped_bytes"` // bytes in them
	Complete     bool  `json:"complete"`      // the file ended properly
}

// Import batches: at most this many envelopes or bytes per transaction, so
// a bundle of large envelopes is imported in bounded memory.
const (
	importBatch      = 10000
	importBatchBytes = 2 << 20
)

// Import ingests a bundle file: ImportFile without a deadline.
func (n *Node) Import(path string) (ImportReport, error) {
	return n.ImportFile(context.Background(), path)
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
	r.Chunks += o.Chunks
	r.Opened = append(r.Opened, o.Opened...)
}
