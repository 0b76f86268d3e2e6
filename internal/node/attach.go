package node

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/photo"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Sending a file (SPEC §16.10): the file is prepared (attach.Prepare, with
// receipts: a pairwise file), every chunk envelope is stored as one of this
// node's own envelopes, so links and bundles carry it like a text, and a
// pairwise message of type TypeAttachment carries the manifest and a
// caption. Each chunk has a record (kindChunk), as an accept or re-key has
// in colMessages, so that its receipt is checked against its commitment and
// counted for the message's status — in a collection of its own, so that
// listing messages does not read a record for every chunk.

// kindChunk marks the record of a chunk envelope I wrote; Parent names the
// message whose file it belongs to.
const kindChunk = "chunk"

// colSentChunks holds the records of the chunks I sent, by envelope ID.
const colSentChunks = "sentchunks"

// Reasons of the errors about files.
const (
	ReasonFileTooLarge      = "file_too_large"
	ReasonInvalidPhoto      = "invalid_photo"      // it looks like a photo but does not decode, or is too large
	ReasonNoAttachment      = "no_attachment"      // the message is unknown, or holds no file
	ReasonNotFinished       = "not_finished"       // the file has not all arrived
	ReasonDestinationExists = "destination_exists" // saving would replace a file
)

// SendFileOptions are the sender's choices for one file.
type SendFileOptions struct {
	// AsFile sends a photo (JPEG, PNG, GIF by its content) as it is. By
	// default a photo is re-encoded (internal/photo), which strips its
	// metadata: EXIF (GPS, camera serial, times), XMP, comments.
	AsFile  bool
	Caption string
	// Name is offered as the file's name (default the path's last element);
	// it is sanitised (attach.SanitiseName).
	Name string
	// MediaType is the caller's word for what the content is (a browser's
	// recording says audio/webm): it only tells audio from video within the
	// container the content has (refineMediaType), never more.
	MediaType string
}

// fileRecord is what a message record keeps of its attachment.
type fileRecord struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	Chunks    int    `json:"chunks"`
	// Delivered counts, for a file I sent, the chunks whose receipt came
	// back; Refused says why a file sent to me is not fetched.
	Delivered int    `json:"delivered,omitempty"`
	Refused   string `json:"refused,omitempty"`
	// Kept says, for a file I sent, that its bytes are kept to be shown
	// (sentfiles.go); Carried counts its chunks handed to a neighbour.
	Kept    bool `json:"kept,omitempty"`
	Carried int  `json:"carried,omitempty"`
	// Manifest is kept for a file that waits for its sender to be accepted
	// (startHeldFiles); once fetching starts, the transfer keeps it.
	Manifest []byte `json:"manifest,omitempty"`
}

// Attachment is what callers see of a message's file.
type Attachment struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	Chunks    int    `json:"chunks"`
	// Have is, for a file sent to me, the chunks held and verified; for a
	// file I sent, the chunks whose receipt came back.
	Have int `json:"have"`
	// Sources is how many carriers gave at least one new chunk since the
	// node started (kept in memory only); Resumed how many chunks were held
	// when it started.
	Sources  int    `json:"sources,omitempty"`
	Resumed  int    `json:"resumed,omitempty"`
	Complete bool   `json:"complete"`
	Refused  string `json:"refused,omitempty"`
	// Kept says, of a photo or voice note I sent, that it is kept as sent
	// (re-encoded, without its metadata): WriteAttachment writes it.
	Kept bool `json:"kept,omitempty"`
	// Carried is, for a file I sent to a contact, the chunks handed to at
	// least one neighbour over a link (a room's file is not followed).
	Carried int `json:"carried,omitempty"`
}

// Progress says "k of n chunks from s carriers" (or "delivered").
func (a *Attachment) Progress() string {
	if a.Refused != "" {
		return "refused: " + a.Refused
	}
	p := attach.Progress{Have: a.Have, Total: a.Chunks, Sources: a.Sources, Resumed: a.Resumed}
	return strings.Replace(p.String(), " source", " carrier", 1) // a source here is whoever carried chunks
}

func (f *fileRecord) view() *Attachment {
	return &Attachment{Name: f.Name, MediaType: f.MediaType, Size: f.Size, Chunks: f.Chunks, Refused: f.Refused, Kept: f.Kept}
}

// FileLimit is the largest file this node sends or fetches: the file_limit
// setting (Settings.FileLimit), DefaultFileLimit unless changed.
func (n *Node) FileLimit() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.set.FileLimit
}

// SetFileLimit saves a new file limit (0: DefaultFileLimit), from
// MinFileLimit to MaxFileLimit: the other settings stay as they are.
func (n *Node) SetFileLimit(bytes int64) error {
	s := n.Settings()
	s.FileLimit = cmp.Or(bytes, DefaultFileLimit)
	_, err := n.SaveSettings(s)
	return err
}

// readAttachment reads the file at path and prepares its bytes (prepareData).
func readAttachment(path string, o SendFileOptions, limit int64) (data []byte, name, mediaType string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("failed to read the file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", "", invalid(ReasonNoAttachment, "%s is not a regular file", path)
	}
	if fi.Size() > inputLimit(o, limit) {
		return nil, "", "", tooLarge(path, fi.Size(), limit)
	}
	if data, err = os.ReadFile(path); err != nil {
		return nil, "", "", fmt.Errorf("failed to read the file: %w", err)
	}
	if o.Name == "" {
		o.Name = filepath.Base(path)
	}
	return prepareData(data, path, o, limit)
}

// inputLimit is the largest input taken for a file: a photo may be larger
// than the file limit before it is re-encoded.
func inputLimit(o SendFileOptions, limit int64) int64 {
	if o.AsFile {
		return limit
	}
	return max(limit, photo.DefaultMaxInput)
}

// prepareData names a file's media type by its content and, for a photo
// not sent as a file, re-encodes it without its metadata. what names the
// file in errors.
func prepareData(data []byte, what string, o SendFileOptions, limit int64) (_ []byte, name, mediaType string, err error) {
	name = o.Name
	mediaType = refineMediaType(sniff(data), o.MediaType, name)
	if isPhoto(mediaType) && !o.AsFile {
		if data, _, err = photo.Reencode(data, photo.Options{}); err != nil {
			// The caller's file is at fault: a damaged or oversized image.
			return nil, "", "", &Error{Kind: ErrInvalid, Reason: ReasonInvalidPhoto, Err: err,
				Msg: fmt.Sprintf("failed to re-encode the photo %s (send it as a file to send it as it is)", what)}
		}
		mediaType = photo.MediaType
		name = strings.TrimSuffix(name, filepath.Ext(name)) + ".jpg"
	}
	if int64(len(data)) > limit {
		return nil, "", "", tooLarge(what, int64(len(data)), limit)
	}
	return data, name, mediaType, nil
}

// tooLarge refuses a file over the limit, naming the setting that raises it.
func tooLarge(path string, size, limit int64) error {
	return invalid(ReasonFileTooLarge, "%s is %d bytes, over the file limit of %d bytes (the file_limit setting: grapevine settings set file-limit=SIZE, at most %d)",
		path, size, limit, int64(MaxFileLimit))
}

// refineMediaType names an audio recording as such: the content alone says
// only its container (WebM, Ogg), which holds video as well. The caller's
// hint (a browser's recording says audio/webm) or the name's extension
// (.ogg, .opus, .oga, .weba) decides, and only within the container sniffed:
// a hint never turns one kind of content into another.
func refineMediaType(sniffed, hint, name string) string {
	hint, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(hint)), ";")
	ext := strings.ToLower(filepath.Ext(name))
	switch sniffed {
	case "video/webm":
		if hint == "audio/webm" || ext == ".weba" {
			return "audio/webm"
		}
	case "application/ogg":
		if hint == "audio/ogg" || ext == ".ogg" || ext == ".opus" || ext == ".oga" {
			return "audio/ogg"
		}
	}
	return sniffed
}

// sniff names a file's media type by its content (what the receiver sees is
// a suggestion: it never decides how the file is opened here).
func sniff(data []byte) string {
	t, _, _ := strings.Cut(http.DetectContentType(data), ";")
	if t == "text/plain" || t == "application/octet-stream" || strings.ContainsAny(t, " ,") {
		return map[bool]string{true: "text/plain", false: "application/octet-stream"}[t == "text/plain"]
	}
	return t
}

func isPhoto(mediaType string) bool {
	return mediaType == "image/jpeg" || mediaType == "image/png" || mediaType == "image/gif"
}

// SendFile sends the file at path to a contact: a message carrying its
// manifest and caption, and its chunks, all queued at once to leave with the
// next bundle or neighbour.
func (n *Node) SendFile(ref, path string, o SendFileOptions) (Message, error) {
	return n.sendFileWith(ref, o, func(limit int64) ([]byte, string, string, error) { return readAttachment(path, o, limit) })
}

// SendFileData sends size bytes read from r as a file named o.Name to a
// contact, as SendFile does with a file on disk: for a caller that holds
// the bytes (the web UI's upload), so that they never go to disk in the
// clear on their way into the sealed store.
func (n *Node) SendFileData(ref string, r io.ReaderAt, size int64, o SendFileOptions) (Message, error) {
	return n.sendFileWith(ref, o, func(limit int64) ([]byte, string, string, error) { return readData(r, size, o, limit) })
}

func (n *Node) sendFileWith(ref string, o SendFileOptions, read func(limit int64) ([]byte, string, string, error)) (Message, error) {
	var msg Message
	err := n.withFile(read, o, true, func(tx *store.Tx, f *attach.File, data []byte, now time.Time) (err error) {
		if msg, err = n.sendFile(tx, ref, f, o.Caption, now); err != nil {
			return err
		}
		return keepSent(tx, msg.ID, data, f.Manifest(), now.Add(n.cfg.History))
	})
	return msg, err
}

// SendRoomFile posts the file at path to a room: one group message for all
// members, and chunks without receipts (one member's receipt would purge
// them before the others have them), carried until they expire (SPEC §16.3).
func (n *Node) SendRoomFile(roomRef, path string, o SendFileOptions) (RoomMessage, error) {
	return n.sendRoomFileWith(roomRef, o, func(limit int64) ([]byte, string, string, error) { return readAttachment(path, o, limit) })
}

// SendRoomFileData posts size bytes read from r as a file named o.Name to a
// room, as SendFileData does to a contact.
func (n *Node) SendRoomFileData(roomRef string, r io.ReaderAt, size int64, o SendFileOptions) (RoomMessage, error) {
	return n.sendRoomFileWith(roomRef, o, func(limit int64) ([]byte, string, string, error) { return readData(r, size, o, limit) })
}

func (n *Node) sendRoomFileWith(roomRef string, o SendFileOptions, read func(limit int64) ([]byte, string, string, error)) (RoomMessage, error) {
	var msg RoomMessage
	err := n.withFile(read, o, false, func(tx *store.Tx, f *attach.File, data []byte, now time.Time) (err error) {
		if msg, err = n.sendRoomFile(tx, roomRef, f, o.Caption, now); err != nil {
			return err
		}
		return keepSent(tx, msg.ID, data, f.Manifest(), now.Add(n.cfg.History))
	})
	return msg, err
}

// readData reads size bytes from r and prepares them (prepareData).
func readData(r io.ReaderAt, size int64, o SendFileOptions, limit int64) ([]byte, string, string, error) {
	if o.Name == "" {
		return nil, "", "", invalid(ReasonNoAttachment, "the file has no name")
	}
	if size < 0 || size > inputLimit(o, limit) {
		return nil, "", "", tooLarge(o.Name, size, limit)
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		return nil, "", "", fmt.Errorf("failed to read the file %s: %w", o.Name, err)
	}
	return prepareData(data, o.Name, o, limit)
}

// withFile reads and prepares the file (read), then calls send in a
// transaction with the node locked, with the file's bytes as sent.
func (n *Node) withFile(read func(limit int64) ([]byte, string, string, error), o SendFileOptions, receipts bool, send func(*store.Tx, *attach.File, []byte, time.Time) error) error {
	limit := n.FileLimit()
	if o.Caption != "" && len(o.Caption) > MaxText {
		return invalid(ReasonInvalidText, "the caption is %d bytes, limit %d", len(o.Caption), MaxText)
	}
	// Read and re-encoded without the lock: a large photo takes a while.
	data, name, mediaType, err := read(limit)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now().UTC().Truncate(time.Second)
	f, err := attach.Prepare(bytes.NewReader(data), int64(len(data)), attach.Options{MediaType: mediaType, Name: name,
		Created: now, Receipts: receipts, Limits: attach.Limits{MaxFileSize: limit}})
	if err != nil {
		return fmt.Errorf("failed to prepare the file: %w", err)
	}
	return n.update(func(tx *store.Tx) error { return send(tx, f, data, now) })
}

func (n *Node) sendRoomFile(tx *store.Tx, roomRef string, f *attach.File, caption string, now time.Time) (RoomMessage, error) {
	m := f.Manifest()
	content := &Content{Type: TypeAttachment, Time: uint32(now.Unix()), Text: caption, Manifest: m.Marshal()}
	msg, err := n.postRoom(tx, roomRef, content, sentFileRecord(m), now) // rooms.go
	if err != nil {
		return msg, err
	}
	return msg, n.putChunks(tx, f, "", "", now)
}

func (n *Node) sendFile(tx *store.Tx, ref string, f *attach.File, caption string, now time.Time) (Message, error) {
	c, err := resolve(tx, ref)
	if err != nil {
		return Message{}, err
	}
	if c.State == StateRequest {
		return Message{}, conflict(ReasonRequestWaiting, c.Name, "%s asked to be your contact: accept the request first", c.Name)
	}
	m := f.Manifest()
	content := &Content{Type: TypeAttachment, Time: uint32(now.Unix()), Text: caption, Manifest: m.Marshal()}
	e, sent, err := n.sendContent(tx, c, content, kindText)
	if err != nil {
		return Message{}, err
	}
	rec := messageRecord{ID: e.ID().String(), Contact: c.Fingerprint, Direction: "out", Text: caption,
		Time: now, Status: StatusQueued, Commit: e.Commit[:], Expiry: e.Expiry,
		Session: c.Sessions[0].S.ID, Epoch: sent.Epoch, Prefixed: sent.Prefixed,
		File: sentFileRecord(m)}
	if err := n.putChunks(tx, f, rec.ID, c.Fingerprint, now); err != nil {
		return Message{}, err
	}
	msg := rec.view(c.Name, n.now())
	return msg, putMessage(tx, &rec, now.Add(n.cfg.History))
}

// putChunks seals every chunk into my outbox, with a record to check its
// receipt when the file has a parent message with receipts (pairwise). Chunks written in the same hour share their expiry (SPEC §16.9),
// within the protocol's lifetime.
func (n *Node) putChunks(tx *store.Tx, f *attach.File, parent, contact string, now time.Time) error {
	expiry := attach.ChunkExpiry(now, n.cfg.Retention)
	if time.Unix(int64(expiry), 0).After(now.Add(MaxLifetime)) {
		expiry = expiryFor(now.Add(n.cfg.Retention))
	}
	for i := range f.Manifest().Chunks {
		raw, err := f.Seal(i, expiry, n.startHops())
		if err != nil {
			return fmt.Errorf("failed to seal chunk %d: %w", i, err)
		}
		id := envelope.ComputeID(raw)
		if err := n.putEnvelopeID(tx, id, raw, n.ownFlags()); err != nil {
			return err
		}
		if parent == "" {
			continue // a room's file: no receipt to match
		}
		e, err := envelope.Parse(raw)
		if err != nil {
			return err
		}
		r := messageRecord{ID: id.String(), Contact: contact, Direction: "out", Kind: kindChunk, Parent: parent,
			Time: now, Status: StatusQueued, Commit: e.Commit[:], Expiry: e.Expiry}
		if err := putJSON(tx, colSentChunks, []byte(r.ID), &r, e.ExpiresAt()); err != nil {
			return err
		}
	}
	return nil
}

// chunkDelivered counts a chunk's receipt on the message whose file it is.
func chunkDelivered(tx *store.Tx, parent string) error {
	var m messageRecord
	exp, ok, err := getJSONExpiry(tx, colMessages, []byte(parent), &m)
	if err != nil || !ok || m.File == nil {
		return err
	}
	m.File.Delivered = min(m.File.Delivered+1, m.File.Chunks)
	return putJSON(tx, colMessages, []byte(parent), &m, exp)
}

// chunksCarried counts, on the messages whose files they are, the chunks
// of mine among ids (envelope IDs) that left over a link for the first
// time: MarkCarried's, for a file's progress.
func chunksCarried(tx *store.Tx, ids [][]byte) error {
	parents := map[string]int{}
	for _, key := range ids {
		var c messageRecord
		exp, ok, err := getJSONExpiry(tx, colSentChunks, key, &c)
		if err != nil {
			return err
		}
		if !ok || c.Status != StatusQueued {
			continue
		}
		c.Status = StatusCarried
		if err := putJSON(tx, colSentChunks, key, &c, exp); err != nil {
			return err
		}
		parents[c.Parent]++
	}
	for parent, k := range parents {
		var m messageRecord
		exp, ok, err := getJSONExpiry(tx, colMessages, []byte(parent), &m)
		if err != nil {
			return err
		}
		if ok && m.File != nil {
			m.File.Carried = min(m.File.Carried+k, m.File.Chunks)
			if err := putJSON(tx, colMessages, []byte(parent), &m, exp); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReceivedAttachment is the file of a message or room post sent to me, with
// how far it has come (for a caller that decides how to show it before it
// asks for the bytes).
func (n *Node) ReceivedAttachment(messageID string) (*Attachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var att *Attachment
	err := n.st.View(func(tx *store.Tx) error {
		f, err := fileSentTo(tx, messageID)
		if err != nil {
			return err
		}
		att = f.view()
		return n.fileProgress(tx, messageID, att)
	})
	return att, err
}

// WriteAttachment writes the finished file of a message sent to me to w,
// read from the sealed store and checked against its manifest's Merkle root
// before the first byte is written, as SaveAttachment checks it: for a
// caller that passes the file on (the web UI serves it to the browser)
// without it ever being on disk in the clear. Of a message I sent, it
// writes the photo or voice note kept as it was sent (sentfiles.go).
func (n *Node) WriteAttachment(messageID string, w io.Writer) (*Attachment, error) {
	att, data, err := n.readSent(messageID) // a photo or voice note I sent
	if att == nil && err == nil {
		att, data, err = n.readFinished(messageID)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range data {
		if _, err := w.Write(p); err != nil {
			return att, fmt.Errorf("failed to write the file %q: %w", att.Name, err)
		}
	}
	return att, nil
}

// fillFileProgress fills in how far the files sent to me on a page of
// messages have come (a message record keeps only what a sent file's
// receipts say).
func (n *Node) fillFileProgress(ms []Message) error {
	var in []int
	for i := range ms {
		if ms[i].Attachment != nil && ms[i].Direction == "in" {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		return nil
	}
	return n.st.View(func(tx *store.Tx) error {
		for _, i := range in {
			if err := n.fileProgress(tx, ms[i].ID, ms[i].Attachment); err != nil {
				return err
			}
		}
		return nil
	})
}
