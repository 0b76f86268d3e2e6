package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Receiving a file (SPEC §16.10). When a message with a manifest opens, its
// transfer starts: the file's chunk tags join the tag index, so a chunk is
// recognised like a message (carried chunks that came before the manifest
// are found by the rescan that follows new keys), and each chunk goes into
// an attach.Assembler whose Storage is the sealed store itself: the file's
// bytes are never on disk in the clear until the user saves the file.
const (
	colTransfers = "transfers" // by message ID: a transferRecord
	colFileData  = "filedata"  // by message ID || be32(chunk index): that chunk's file bytes
)

// transferRecord is a file sent to me: its manifest, and the Assembler's
// progress (attach.State), synced with every ingest batch.
type transferRecord struct {
	ID       string    `json:"id"` // the message's (store keys cannot be listed)
	Manifest []byte    `json:"manifest"`
	State    []byte    `json:"state,omitempty"`
	Done     bool      `json:"done,omitempty"` // every chunk held and the whole file verified
	Expires  time.Time `json:"expires"`        // the message's: the file goes with it
}

// transfer is a file being fetched, kept while the node runs so that its
// Assembler counts the carriers (in memory only, as SPEC §16.6 says).
type transfer struct {
	a  *attach.Assembler
	st *storeStorage
}

// storeStorage is an attach.Storage inside the node's store. Chunk data
// written by the Assembler waits in memory until Sync, which writes it and
// the progress in the transaction bound to tx: the batch that brought the
// chunks, so progress, receipts and envelopes commit together.
type storeStorage struct {
	id      string
	m       *attach.Manifest
	rec     transferRecord
	tx      *store.Tx
	pending map[int][]byte
}

func fileDataKey(id string, i int) []byte {
	return binary.BigEndian.AppendUint32([]byte(id), uint32(i))
}

var errNoTx = errors.New("file storage used outside a transaction")

func (s *storeStorage) Load(m *attach.Manifest) (*attach.State, error) {
	if st, err := attach.ParseState(s.rec.State, m); err == nil {
		return st, nil
	}
	return attach.NewState(m), nil
}

func (s *storeStorage) chunkOf(off int64) (int, int, error) {
	i, o := off/int64(s.m.ChunkSize), off%int64(s.m.ChunkSize)
	if off < 0 || i >= int64(s.m.Chunks) {
		return 0, 0, fmt.Errorf("failed to find chunk at offset %d of a file of %d chunks", off, s.m.Chunks)
	}
	return int(i), int(o), nil
}

func (s *storeStorage) WriteAt(p []byte, off int64) (int, error) {
	i, o, err := s.chunkOf(off)
	if err != nil || o != 0 || len(p) != s.m.ChunkLen(i) {
		return 0, errors.Join(err, fmt.Errorf("failed to store chunk data: %d bytes at offset %d is not one chunk", len(p), off))
	}
	if s.pending == nil {
		s.pending = map[int][]byte{}
	}
	s.pending[i] = bytes.Clone(p)
	return len(p), nil
}

func (s *storeStorage) ReadAt(p []byte, off int64) (int, error) {
	i, o, err := s.chunkOf(off)
	if err != nil {
		return 0, err
	}
	data, ok := s.pending[i]
	if !ok {
		if s.tx == nil {
			return 0, errNoTx
		}
		if data, _, ok, err = s.tx.Get(colFileData, fileDataKey(s.id, i)); err != nil {
			return 0, fmt.Errorf("failed to read chunk %d: %w", i, err)
		}
	}
	if !ok || o >= len(data) {
		return 0, io.EOF
	}
	n := copy(p, data[o:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *storeStorage) Sync(st *attach.State) error {
	if s.tx == nil {
		return errNoTx
	}
	for i, d := range s.pending {
		if err := s.tx.Put(colFileData, fileDataKey(s.id, i), d, s.rec.Expires); err != nil {
			return fmt.Errorf("failed to store chunk %d: %w", i, err)
		}
	}
	s.pending = nil
	s.rec.State = st.Marshal()
	return s.put()
}

func (s *storeStorage) put() error {
	if s.tx == nil {
		return errNoTx
	}
	return putJSON(s.tx, colTransfers, []byte(s.id), &s.rec, s.rec.Expires)
}

// Commit marks the file finished: its bytes stay sealed in the store until
// the message expires; SaveAttachment writes them out.
func (s *storeStorage) Commit() error {
	s.rec.Done = true
	return s.put()
}

func (s *storeStorage) Discard() error {
	if s.tx == nil {
		return errNoTx
	}
	for i := range s.m.Chunks {
		if err := s.tx.Delete(colFileData, fileDataKey(s.id, i)); err != nil {
			return err
		}
	}
	s.pending = nil
	return s.tx.Delete(colTransfers, []byte(s.id))
}

// transfer returns the unfinished transfer of a message, bound to tx, or
// nil if there is none.
func (n *Node) transfer(tx *store.Tx, id string) (*transfer, error) {
	if t, ok := n.files[id]; ok {
		t.st.tx = tx
		return t, nil
	}
	var rec transferRecord
	ok, err := getJSON(tx, colTransfers, []byte(id), &rec)
	if err != nil || !ok || rec.Done {
		return nil, err
	}
	m, err := attach.ParseManifest(rec.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
	if err != nil {
		return nil, fmt.Errorf("failed to read the manifest of the file of %s: %w", id, err)
	}
	st := &storeStorage{id: id, m: m, rec: rec, tx: tx}
	a, err := attach.NewAssembler(m, st)
	if err != nil {
		return nil, fmt.Errorf("failed to resume the file of %s: %w", id, err)
	}
	if n.files == nil {
		n.files = map[string]*transfer{}
	}
	t := &transfer{a: a, st: st}
	n.files[id] = t
	return t, nil
}

// startTransfer begins fetching the file of a message that just opened, or
// says why it is refused (over this node's limit).
func (in *ingest) startTransfer(id envelope.ID, content *Content) (*fileRecord, error) {
	f, started, err := in.n.startTransfer(in.tx, id.String(), content.Manifest, in.now)
	in.changed = in.changed || started // chunks carried here already are looked at again
	return f, err
}

// startTransfer records the transfer of a message's file and expects its
// chunks. started is false when it was refused or had started before.
func (n *Node) startTransfer(tx *store.Tx, id string, manifest []byte, now time.Time) (f *fileRecord, started bool, err error) {
	limit := n.set.FileLimit
	m, err := attach.ParseManifest(manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
	if err != nil { // ParseContent checked it
		return nil, false, fmt.Errorf("failed to read a manifest: %w", err)
	}
	f = &fileRecord{Name: m.Name, MediaType: m.MediaType, Size: m.Size, Chunks: m.Chunks}
	if m.Size > limit {
		f.Refused = fmt.Sprintf("%d bytes, over this node's file limit of %d (the file_limit setting)", m.Size, limit)
		n.log.Info("files: not fetching a file over the file limit", "message", id, "size", m.Size, "file_limit", limit)
		return f, false, nil
	}
	if ok, err := tx.Has(colTransfers, []byte(id)); err != nil || ok {
		return f, false, err
	}
	rec := transferRecord{ID: id, Manifest: manifest, Expires: now.Add(n.cfg.History)}
	if err := putJSON(tx, colTransfers, []byte(id), &rec, rec.Expires); err != nil {
		return nil, false, err
	}
	n.idx.setFile(id, attach.NewKeys(m), m.Chunks)
	return f, true, nil
}

// heldFileNote says why a file that came before its sender was accepted
// waits.
const heldFileNote = "waiting until you accept the contact"

// startHeldFiles starts fetching the files that came from a contact before I
// accepted it (or on its proposal of new keys), now that receipts may go to
// it. It reports whether any started: the caller then looks again at what is
// carried here (lookAgain), where their chunks may be already.
func (n *Node) startHeldFiles(tx *store.Tx, fp string) (bool, error) {
	var recs []messageRecord
	var exps []time.Time
	err := tx.ForEach(colMessages, func(v []byte, exp time.Time) error {
		var r messageRecord
		if err := jsonUnmarshal(v, &r); err == nil && r.Contact == fp && r.File != nil && r.File.Manifest != nil {
			recs, exps = append(recs, r), append(exps, exp)
		}
		return nil
	})
	any := false
	for i := range recs {
		if err != nil {
			break
		}
		r := &recs[i]
		var started bool
		if r.File, started, err = n.startTransfer(tx, r.ID, r.File.Manifest, n.now()); err == nil {
			any = any || started
			err = putJSON(tx, colMessages, []byte(r.ID), r, exps[i])
		}
	}
	return any, err
}

// chunk takes a chunk envelope whose tag is one of a file's I am fetching.
// A chunk that does not open and verify is dropped (counted invalid) and
// changes nothing; a chunk already held is not stored again. Either way a
// good chunk of a pairwise file gets its receipt, which purges the copies
// relays hold. A room's file has no receipts: its good chunks are carried
// on for the other members (carry), as a relay would.
func (in *ingest) chunk(id envelope.ID, e *envelope.Envelope, raw []byte, ref slotRef) (handled, carry bool, err error) {
	t, err := in.n.transfer(in.tx, ref.owner)
	if err != nil || t == nil {
		return false, false, err
	}
	i, err := t.a.Add(raw, in.n.source)
	dup := errors.Is(err, attach.ErrDuplicate)
	if err != nil && !dup {
		in.rep.Invalid++
		return true, false, nil
	}
	if dup {
		in.rep.Duplicate++
	} else {
		in.rep.Chunks++
		in.files[ref.owner] = t
	}
	secret, ok := t.a.Keys().ReceiptSecret(i)
	if !ok {
		return true, true, nil
	}
	in.mine[id] = true
	if err := in.n.queueReceipt(in.tx, envelope.NewReceipt(id, e.Expiry, secret, in.n.startHops())); err != nil {
		return true, false, err
	}
	return true, false, in.rememberSecret(id, secret, e.ExpiresAt())
}

// syncFiles makes the batch's chunks durable with the batch, and finishes
// the files now complete: verified whole, and their tags leave the index.
func (in *ingest) syncFiles() error {
	for id, t := range in.files {
		t.st.tx = in.tx
		if err := t.a.Sync(); err != nil {
			return fmt.Errorf("failed to save the progress of the file of %s: %w", id, err)
		}
		if !t.a.Complete() {
			continue
		}
		if err := t.a.Finish(); err != nil && !errors.Is(err, attach.ErrDamaged) {
			return fmt.Errorf("failed to finish the file of %s: %w", id, err)
		} else if err != nil {
			continue // damaged chunks are wanted again: the transfer goes on
		}
		// Kept in memory for its progress (how many carriers); no chunk is
		// expected any more.
		in.n.idx.removeOwner(ownerFile(id))
		in.released = in.released || isReleaseTransfer(id) // releases.go verifies it, after the commit
	}
	return nil
}

// fileProgress fills in how far the file of a message sent to me has come.
func (n *Node) fileProgress(tx *store.Tx, id string, a *Attachment) error {
	if t, ok := n.files[id]; ok {
		p := t.a.Progress()
		a.Have, a.Sources, a.Resumed, a.Complete = p.Have, p.Sources, p.Resumed, t.st.rec.Done
		return nil
	}
	var rec transferRecord
	ok, err := getJSON(tx, colTransfers, []byte(id), &rec)
	if err != nil || !ok {
		return err
	}
	if rec.Done {
		a.Have, a.Complete = a.Chunks, true
		return nil
	}
	m, err := attach.ParseManifest(rec.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
	if err != nil {
		return fmt.Errorf("failed to read the manifest of the file of %s: %w", id, err)
	}
	if st, err := attach.ParseState(rec.State, m); err == nil {
		for _, h := range st.Have {
			a.Have += b2i(h)
		}
	}
	return nil
}

// eachTransfer calls fn for every file being fetched or fetched, to index
// the tags of the first.
func eachTransfer(tx *store.Tx, fn func(id string, m *attach.Manifest, done bool)) error {
	return tx.ForEach(colTransfers, func(v []byte, _ time.Time) error {
		var rec transferRecord
		if err := jsonUnmarshal(v, &rec); err != nil {
			return nil // a damaged record is skipped: its file stays unfinished
		}
		m, err := attach.ParseManifest(rec.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
		if err == nil {
			fn(rec.ID, m, rec.Done)
		}
		return nil
	})
}

// indexFiles expects the chunks of every file being fetched, and forgets
// the transfers kept in memory whose record is gone (their message was
// deleted).
func (n *Node) indexFiles(tx *store.Tx, ix *index) error {
	live := map[string]bool{}
	err := eachTransfer(tx, func(id string, m *attach.Manifest, done bool) {
		live[id] = true
		if !done {
			ix.setFile(id, attach.NewKeys(m), m.Chunks)
		}
	})
	for id := range n.files {
		if !live[id] && err == nil {
			delete(n.files, id)
		}
	}
	return err
}

// readFinished reads a finished, verified file of a message sent to me
// (finishedFile) with the node locked only while it reads: the node goes on
// while the caller writes the file out.
func (n *Node) readFinished(messageID string) (att *Attachment, data [][]byte, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	err = n.st.View(func(tx *store.Tx) error {
		att, data, err = n.finishedFile(tx, messageID)
		return err
	})
	return att, data, err
}

// SaveAttachment writes the file of a message sent to me to dest, which must
// not exist: whole and verified, or not at all (a temporary file in dest's
// directory, synced, then linked to dest). The bytes are read back from the
// store and their Merkle root checked against the manifest once more.
func (n *Node) SaveAttachment(messageID, dest string) (*Attachment, error) {
	att, data, err := n.readFinished(messageID)
	if err != nil {
		return nil, err
	}
	if err := writeNew(dest, data); err != nil {
		return nil, err
	}
	return att, nil
}

// finishedFile reads a finished file's chunks, checked against its root.
func (n *Node) finishedFile(tx *store.Tx, id string) (*Attachment, [][]byte, error) {
	f, err := fileSentTo(tx, id)
	if err != nil {
		return nil, nil, err
	}
	att := f.view()
	if err := n.fileProgress(tx, id, att); err != nil {
		return nil, nil, err
	}
	if !att.Complete {
		if att.Refused != "" {
			return nil, nil, conflict(ReasonNotFinished, "", "the file %q was not fetched: %s", att.Name, att.Refused)
		}
		return nil, nil, conflict(ReasonNotFinished, "", "the file %q has not all arrived yet: %s", att.Name, att.Progress())
	}
	var rec transferRecord
	if _, err := getJSON(tx, colTransfers, []byte(id), &rec); err != nil {
		return nil, nil, err
	}
	man, err := attach.ParseManifest(rec.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read the manifest of the file of %s: %w", id, err)
	}
	data, err := chunksOf(tx, id, man, att.Name)
	if err != nil {
		return nil, nil, err
	}
	return att, data, nil
}

// chunksOf reads the chunks of a finished file from the store, checked
// against the manifest's root.
func chunksOf(tx *store.Tx, id string, man *attach.Manifest, name string) ([][]byte, error) {
	data := make([][]byte, man.Chunks)
	leaves := make([][attach.HashSize]byte, man.Chunks)
	for i := range man.Chunks {
		if man.ChunkLen(i) > 0 {
			d, _, ok, err := tx.Get(colFileData, fileDataKey(id, i))
			if err != nil || !ok || len(d) != man.ChunkLen(i) {
				return nil, errors.Join(err, fmt.Errorf("failed to read chunk %d of the file %q from the store", i, name))
			}
			data[i] = d // Get's value is a fresh copy
		}
		leaves[i] = attach.LeafHash(data[i])
	}
	if attach.Root(leaves) != man.Root {
		return nil, fmt.Errorf("failed to verify the file %q: its bytes in the store are not the manifest's", name)
	}
	return data, nil
}

// fileSentTo finds the file of a message or post sent to me.
func fileSentTo(tx *store.Tx, id string) (*fileRecord, error) {
	var m messageRecord
	ok, err := getJSON(tx, colMessages, []byte(id), &m)
	if err != nil {
		return nil, err
	}
	if ok && m.File != nil && m.Direction == "in" && !m.Held {
		return m.File, nil
	}
	var r roomMessageRecord
	if ok, err = getJSON(tx, colRoomMessages, []byte(id), &r); err != nil {
		return nil, err
	}
	if ok && r.File != nil && r.Direction == "in" {
		return r.File, nil
	}
	return nil, invalid(ReasonNoAttachment, "no file was sent to you in message %s", id)
}

// writeNew writes parts to a new file at dest, atomically, never replacing
// one: a temporary file beside it, synced, then hard-linked to dest.
func writeNew(dest string, parts [][]byte) error {
	if _, err := os.Lstat(dest); err == nil {
		return conflict(ReasonDestinationExists, "", "%s exists: save the file under another name", dest)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".grapevine-save-*")
	if err != nil {
		return fmt.Errorf("failed to create the file: %w", err)
	}
	defer os.Remove(tmp.Name())
	for _, p := range parts {
		if _, err := tmp.Write(p); err != nil {
			tmp.Close()
			return fmt.Errorf("failed to write the file: %w", err)
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write the file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write the file: %w", err)
	}
	if err := os.Link(tmp.Name(), dest); errors.Is(err, fs.ErrExist) {
		return conflict(ReasonDestinationExists, "", "%s exists: save the file under another name", dest)
	} else if err != nil {
		return fmt.Errorf("failed to put the file in place: %w", err)
	}
	return nil
}

// deleteFile deletes what is held of the file of a message sent to me, with
// the message (the caller rebuilds the tag index).
func deleteFile(tx *store.Tx, id string) error {
	var rec transferRecord
	ok, err := getJSON(tx, colTransfers, []byte(id), &rec)
	if err != nil || !ok {
		return err
	}
	m, err := attach.ParseManifest(rec.Manifest, attach.Limits{MaxFileSize: attach.MaxFileSize})
	if err != nil {
		return tx.Delete(colTransfers, []byte(id))
	}
	st := &storeStorage{id: id, m: m, tx: tx}
	return st.Discard()
}
