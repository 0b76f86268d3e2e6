package node

// The photos and voice notes I sent, kept to be shown (SPEC §16.10). A file
// I send leaves as chunks of my outbox, which receipts purge as they come
// back: once delivered, nothing of it would be left to show me. So a photo
// or voice note — what a user interface shows in the conversation — is
// kept as it was sent (a photo re-encoded, without its metadata: never the
// original file, unless the user sent it as a file), sealed in the store
// with its message, and goes when the message does. Other files are not
// kept: the sender has them already, and they may be large.

import (
	"fmt"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// colSentFiles holds the kept files, by message ID || be32(chunk index):
// the bytes of that chunk, as colFileData holds a file sent to me.
const colSentFiles = "sentfiles"

// keptTypes are the media types of the files I send that are kept.
var keptTypes = map[string]bool{
	"image/jpeg": true, "image/png": true, "image/gif": true,
	"audio/webm": true, "audio/ogg": true,
}

// sentFileRecord is what the record of a message I send keeps of its file.
func sentFileRecord(m *attach.Manifest) *fileRecord {
	return &fileRecord{Name: m.Name, MediaType: m.MediaType, Size: m.Size, Chunks: m.Chunks, Kept: keptTypes[m.MediaType]}
}

// keepSent keeps the bytes of a file I sent in message id, if they are of a
// kept type, until expires (the message's).
func keepSent(tx *store.Tx, id string, data []byte, m *attach.Manifest, expires time.Time) error {
	if !keptTypes[m.MediaType] {
		return nil
	}
	for i := range m.Chunks {
		part := data[min(i*m.ChunkSize, len(data)):min((i+1)*m.ChunkSize, len(data))]
		if err := tx.Put(colSentFiles, fileDataKey(id, i), part, expires); err != nil {
			return fmt.Errorf("failed to keep the file sent: %w", err)
		}
	}
	return nil
}

// dropSent deletes the kept file of message id, of that many chunks, with
// the message.
func dropSent(tx *store.Tx, id string, chunks int) error {
	for i := range chunks {
		if err := tx.Delete(colSentFiles, fileDataKey(id, i)); err != nil {
			return fmt.Errorf("failed to delete the file sent: %w", err)
		}
	}
	return nil
}

// readSent reads the kept file of a message or post I sent; nil, with no
// error, when there is none.
func (n *Node) readSent(id string) (*Attachment, [][]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var att *Attachment
	var data [][]byte
	err := n.st.View(func(tx *store.Tx) error {
		f, err := keptFile(tx, id)
		if err != nil || f == nil {
			return err
		}
		var size int64
		for i := range f.Chunks {
			part, _, ok, err := tx.Get(colSentFiles, fileDataKey(id, i))
			if err != nil {
				return fmt.Errorf("failed to read the file sent: %w", err)
			}
			if !ok {
				return nil // gone (the message expires): as if never kept
			}
			data, size = append(data, part), size+int64(len(part))
		}
		if size != f.Size {
			return fmt.Errorf("failed to read the file sent: %d bytes kept of %d", size, f.Size)
		}
		att = f.view()
		return nil
	})
	if att == nil {
		data = nil
	}
	return att, data, err
}

// keptFile is the file record of a message or post I sent whose file is
// kept, or nil.
func keptFile(tx *store.Tx, id string) (*fileRecord, error) {
	var m messageRecord
	ok, err := getJSON(tx, colMessages, []byte(id), &m)
	if err != nil {
		return nil, err
	}
	if ok && m.Direction == "out" && m.File != nil && m.File.Kept {
		return m.File, nil
	}
	var r roomMessageRecord
	if ok, err = getJSON(tx, colRoomMessages, []byte(id), &r); err != nil {
		return nil, err
	}
	if ok && r.Direction == "out" && r.File != nil && r.File.Kept {
		return r.File, nil
	}
	return nil, nil
}
