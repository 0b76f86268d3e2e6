package node

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// marker is a distinctive 64-byte run put in every test file, to look for
// in the receiver's home.
var marker = bytes.Repeat([]byte("GRAPEVINE-PLAINTEXT-MARKER!!"), 3)[:64]

// testFile writes size deterministic bytes (a SHA-256 stream from seed)
// with the marker in the middle, and returns its path and bytes.
func testFile(t *testing.T, size int, seed string) (string, []byte) {
	t.Helper()
	data := make([]byte, 0, size+sha256.Size)
	for i := uint32(0); len(data) < size; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte(seed), i))
		data = append(data, h[:]...)
	}
	data = data[:size]
	if size >= 2*len(marker) {
		copy(data[size/2:], marker)
	}
	path := filepath.Join(t.TempDir(), seed+".bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func mustSendFile(t *testing.T, n *testNode, to, path string) Message {
	t.Helper()
	m, err := n.SendFile(to, path, SendFileOptions{Caption: "here"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Attachment == nil || m.Status != StatusQueued {
		t.Fatalf("sent file shows as %+v", m)
	}
	return m
}

// outbox splits what a sender holds of its own into the message envelope
// with id and the chunk envelopes, in the order held.
func outbox(t *testing.T, n *testNode, id string) (msg []byte, chunks [][]byte) {
	t.Helper()
	err := n.eachEnvelope(func(flags byte, raw []byte, e *envelope.Envelope) error {
		switch {
		case flags&flagOwn == 0:
		case envelope.ComputeID(raw).String() == id:
			msg = bytes.Clone(raw)
		case e.Kind == envelope.KindChunk:
			chunks = append(chunks, bytes.Clone(raw))
		}
		return nil
	})
	if err != nil || msg == nil {
		t.Fatalf("%s's outbox: message %v, %d chunks, %v", n.id.Name, msg != nil, len(chunks), err)
	}
	return msg, chunks
}

// sentFile is a file Alice sent Bob, befriended, and what she holds of it.
type sentFile struct {
	alice, bob *testNode
	sent       Message
	data       []byte
	msg        []byte   // the message envelope
	chunks     [][]byte // the chunk envelopes
}

func sendTestFile(t *testing.T, size int, seed string) *sentFile {
	t.Helper()
	_, alice, bob, _ := friendsAndCarrier(t)
	path, data := testFile(t, size, seed)
	f := &sentFile{alice: alice, bob: bob, sent: mustSendFile(t, alice, "Bob", path), data: data}
	f.msg, f.chunks = outbox(t, alice, f.sent.ID)
	return f
}

func ingestFrom(t *testing.T, n *testNode, source string, raws ...[]byte) IngestReport {
	t.Helper()
	rep, err := n.IngestFrom(source, raws, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// attachmentOf returns how far the file of message id has come at n.
func attachmentOf(t *testing.T, n *testNode, id string) *Attachment {
	t.Helper()
	for _, m := range messages(t, n) {
		if m.ID == id {
			if m.Attachment == nil {
				t.Fatalf("message %s shows no attachment", id)
			}
			return m.Attachment
		}
	}
	t.Fatalf("%s has no message %s", n.id.Name, id)
	return nil
}

func saveAndCompare(t *testing.T, n *testNode, id string, want []byte) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "saved")
	if _, err := n.SaveAttachment(id, dest); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("saved file of %d bytes differs from the %d sent", len(got), len(want))
	}
}

func countItems(t *testing.T, n *testNode, col string) int {
	t.Helper()
	var c int
	if err := n.st.View(func(tx *store.Tx) (err error) { c, err = tx.Count(col); return err }); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFileArrivesByteIdentical: a 1 MB file crosses in a bundle, is saved
// byte-identical, and the receipts that come back mark it delivered and
// purge the chunks at the sender and at a carrier.
func TestFileArrivesByteIdentical(t *testing.T) {
	_, alice, bob, carol := friendsAndCarrier(t)
	path, data := testFile(t, 1<<20, "one-mb")
	sent := mustSendFile(t, alice, "Bob", path)
	if sent.Attachment.Chunks != 33 || sent.Attachment.Size != 1<<20 || sent.Text != "here" {
		t.Fatalf("sent attachment %+v", sent.Attachment)
	}
	carry(t, alice, carol)
	rep := carry(t, carol, bob)
	if rep.Messages != 1 || rep.Chunks != 33 {
		t.Fatalf("Bob's import: %+v", rep.IngestReport)
	}
	a := attachmentOf(t, bob, sent.ID)
	if !a.Complete || a.Have != 33 || a.Name != "one-mb.bin" || a.MediaType != "application/octet-stream" {
		t.Fatalf("Bob sees %+v", a)
	}
	saveAndCompare(t, bob, sent.ID, data)

	if err := bob.ReleaseReceipts(true); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, carol)
	if n := chunksHeld(t, carol); n != 0 {
		t.Fatalf("Carol still carries %d chunks after the receipts", n)
	}
	carry(t, carol, alice)
	if n := chunksHeld(t, alice); n != 0 {
		t.Fatalf("Alice still holds %d of her chunks after the receipts", n)
	}
	for _, m := range messages(t, alice) {
		if m.ID == sent.ID && (m.Status != StatusDelivered || !m.Attachment.Complete || m.Attachment.Have != 33) {
			t.Fatalf("Alice sees her file as %s, %+v", m.Status, m.Attachment)
		}
	}
}

func chunksHeld(t *testing.T, n *testNode) int {
	t.Helper()
	c := 0
	for _, e := range mustEnvelopes(t, n) {
		if e.Kind == envelope.KindChunk.String() {
			c++
		}
	}
	return c
}

// TestChunksBeforeTheManifest: chunks carried before their manifest arrived
// are found and used when it comes.
func TestChunksBeforeTheManifest(t *testing.T) {
	f := sendTestFile(t, 100_000, "early")
	bob, sent, msg, chunks := f.bob, f.sent, f.msg, f.chunks
	data := f.data
	if rep := ingestFrom(t, bob, "carrier", chunks...); rep.New != len(chunks) || rep.Chunks != 0 {
		t.Fatalf("chunks before the manifest: %+v", rep)
	}
	rep := ingestFrom(t, bob, "carrier", msg)
	if rep.Messages != 1 || rep.Chunks != len(chunks) || rep.New != 0 {
		t.Fatalf("the manifest after its chunks: %+v", rep)
	}
	saveAndCompare(t, bob, sent.ID, data)
}

// TestTwoCarriers: half the chunks from one carrier and half from another
// complete the file, and both are counted.
func TestTwoCarriers(t *testing.T) {
	f := sendTestFile(t, 300_000, "two")
	bob, sent, msg, chunks := f.bob, f.sent, f.msg, f.chunks
	data := f.data
	half := len(chunks) / 2
	ingestFrom(t, bob, "carrier-1", append([][]byte{msg}, chunks[:half]...)...)
	if a := attachmentOf(t, bob, sent.ID); a.Have != half || a.Complete || a.Progress() != "5 of 10 chunks from 1 carrier" {
		t.Fatalf("after the first carrier: %+v, %q", a, a.Progress())
	}
	ingestFrom(t, bob, "carrier-2", chunks[half:]...)
	if a := attachmentOf(t, bob, sent.ID); !a.Complete || a.Sources != 2 {
		t.Fatalf("after both carriers: %+v", a)
	}
	saveAndCompare(t, bob, sent.ID, data)
}

// TestRestartResumes: a restart mid-transfer keeps the chunks held; they are
// not taken again, and the rest completes the file.
func TestRestartResumes(t *testing.T) {
	f := sendTestFile(t, 300_000, "resume")
	bob, sent, msg, chunks := f.bob, f.sent, f.msg, f.chunks
	data := f.data
	ingestFrom(t, bob, "c", append([][]byte{msg}, chunks[:4]...)...)
	bob.reopen()
	if a := attachmentOf(t, bob, sent.ID); a.Have != 4 || a.Complete {
		t.Fatalf("after the restart: %+v", a)
	}
	rep := ingestFrom(t, bob, "c", chunks...)
	if rep.Chunks != len(chunks)-4 || rep.AlreadyDelivered+rep.Duplicate != 4 {
		t.Fatalf("all chunks again after the restart: %+v", rep)
	}
	if a := attachmentOf(t, bob, sent.ID); !a.Complete {
		t.Fatalf("not complete: %+v", a)
	}
	if n := countItems(t, bob, colFileData); n != len(chunks) {
		t.Fatalf("%d chunks of data stored for a file of %d", n, len(chunks))
	}
	saveAndCompare(t, bob, sent.ID, data)
}

// redate gives a chunk another expiry: another envelope (another ID) that
// opens as the same chunk (SPEC §16.1).
func redate(raw []byte, by uint32) []byte {
	out := bytes.Clone(raw)
	binary.BigEndian.PutUint32(out[2:6], binary.BigEndian.Uint32(out[2:6])-by)
	return out
}

// TestDuplicateChunkNotStoredTwice: a chunk held, arriving again as another
// envelope, is not stored again.
func TestDuplicateChunkNotStoredTwice(t *testing.T) {
	f := sendTestFile(t, 100_000, "dup")
	bob, sent, msg, chunks := f.bob, f.sent, f.msg, f.chunks
	ingestFrom(t, bob, "c", msg, chunks[0])
	before := countItems(t, bob, colFileData)
	rep := ingestFrom(t, bob, "c", redate(chunks[0], 3600))
	if rep.Chunks != 0 || rep.Duplicate != 1 || countItems(t, bob, colFileData) != before {
		t.Fatalf("a re-dated copy of a held chunk: %+v, %d items (was %d)", rep, countItems(t, bob, colFileData), before)
	}
	if a := attachmentOf(t, bob, sent.ID); a.Have != 1 {
		t.Fatalf("progress after a duplicate: %+v", a)
	}
}

// TestOpenedIsNotAskedForAgain: once the file's message and chunks opened
// here and their receipts left (which drops this node's copies), no link
// asks a neighbour for them again. A relay that has not got the receipts
// yet (a link died with them in the air) would send them for nothing: on a
// flapping link, every chunk that came just before each flap
// (TestFileSurvivesAFlappingLink in test/netns).
func TestOpenedIsNotAskedForAgain(t *testing.T) {
	f := sendTestFile(t, 100_000, "again")
	ingestFrom(t, f.bob, "c", append([][]byte{f.msg}, f.chunks...)...)
	if err := f.bob.ReleaseReceipts(true); err != nil {
		t.Fatal(err)
	}
	ids := []envelope.ID{envelope.ComputeID(f.msg)}
	for _, c := range f.chunks {
		ids = append(ids, envelope.ComputeID(c))
	}
	if want, later, _ := f.bob.Expect("a link", ids, nil, false); len(want)+len(later) > 0 {
		t.Fatalf("after their receipts left, %d of the %d envelopes of the file are asked for again (%d later)", len(want), len(ids), len(later))
	}
	if a := attachmentOf(t, f.bob, f.sent.ID); !a.Complete {
		t.Fatalf("the file is not complete: %+v", a)
	}
}

// TestForgedChunkRefused: a chunk with the right tag but other bytes is
// refused and leaves the transfer as it was; the genuine one still counts.
func TestForgedChunkRefused(t *testing.T) {
	f := sendTestFile(t, 100_000, "forged")
	bob, sent, msg, chunks := f.bob, f.sent, f.msg, f.chunks
	data := f.data
	ingestFrom(t, bob, "c", msg)
	forged := bytes.Clone(chunks[1])
	forged[envelope.HeaderSize+100] ^= 0x40
	rep := ingestFrom(t, bob, "liar", forged)
	if rep.Invalid != 1 || rep.Chunks != 0 || rep.New != 0 {
		t.Fatalf("a forged chunk: %+v", rep)
	}
	if a := attachmentOf(t, bob, sent.ID); a.Have != 0 || countItems(t, bob, colFileData) != 0 {
		t.Fatalf("a forged chunk changed the transfer: %+v", a)
	}
	if rep := ingestFrom(t, bob, "c", chunks...); rep.Chunks != len(chunks) {
		t.Fatalf("the genuine chunks after a forged one: %+v", rep)
	}
	saveAndCompare(t, bob, sent.ID, data)
}

// TestNoPlaintextInTheHome: neither the sender's nor the receiver's home
// holds the file's bytes in the clear, during the transfer or after it.
func TestNoPlaintextInTheHome(t *testing.T) {
	_, alice, bob, _ := friendsAndCarrier(t)
	path, data := testFile(t, 200_000, "secret")
	if !bytes.Contains(data, marker) {
		t.Fatal("the test file lacks the marker")
	}
	sent := mustSendFile(t, alice, "Bob", path)
	msg, chunks := outbox(t, alice, sent.ID)
	ingestFrom(t, bob, "c", append([][]byte{msg}, chunks[:3]...)...)
	noMarker(t, bob)
	ingestFrom(t, bob, "c", chunks[3:]...)
	if a := attachmentOf(t, bob, sent.ID); !a.Complete {
		t.Fatalf("not complete: %+v", a)
	}
	noMarker(t, bob)
	noMarker(t, alice)
	saveAndCompare(t, bob, sent.ID, data)
}

// noMarker copies n's home (as someone seizing it would) and looks for the
// marker in every file.
func noMarker(t *testing.T, n *testNode) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(n.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, marker) || bytes.Contains(b, marker[:32]) || bytes.Contains(b, marker[32:]) {
			return errors.New(p + " holds the file's bytes in the clear")
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("%s's home (%d files): %v", n.id.Name, files, err)
	}
}

// TestSaveErrors: saving says what is wrong.
func TestSaveErrors(t *testing.T) {
	f := sendTestFile(t, 100_000, "errs")
	bob, sent, msg, chunks := f.bob, f.sent, f.msg, f.chunks
	ingestFrom(t, bob, "c", msg, chunks[0])
	dest := filepath.Join(t.TempDir(), "out")
	if _, err := bob.SaveAttachment(sent.ID, dest); !errors.Is(err, ErrConflict) || !bytes.Contains([]byte(err.Error()), []byte("1 of 4 chunks")) {
		t.Fatalf("saving an unfinished file: %v", err)
	}
	if _, err := bob.SaveAttachment("nope", dest); !errors.Is(err, ErrInvalid) {
		t.Fatalf("saving an unknown message: %v", err)
	}
	ingestFrom(t, bob, "c", chunks...)
	if err := os.WriteFile(dest, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SaveAttachment(sent.ID, dest); !errors.Is(err, ErrConflict) {
		t.Fatalf("saving over a file: %v", err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "mine" {
		t.Fatalf("the file saved over holds %q", b)
	}
}

// TestEmptyFile: a file of no bytes is one chunk of padding, and saves as an
// empty file.
func TestEmptyFile(t *testing.T) {
	f := sendTestFile(t, 0, "empty")
	rep := ingestFrom(t, f.bob, "c", append([][]byte{f.msg}, f.chunks...)...)
	if rep.Chunks != 1 || len(f.chunks) != 1 {
		t.Fatalf("an empty file: %d chunks sent, %+v", len(f.chunks), rep)
	}
	saveAndCompare(t, f.bob, f.sent.ID, nil)
}

// BenchmarkFile16MiB sends a 16 MiB file (the mesh's limit, 519 chunks),
// carries it in a bundle and saves it: the node's own cost, store included.
func BenchmarkFile16MiB(b *testing.B) {
	clk := newTestClock()
	alice, bob := newTestNode(b, "Alice", clk), newTestNode(b, "Bob", clk)
	befriend(b, alice, bob)
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, (16<<20)/7)
	path := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		m, err := alice.SendFile("Bob", path, SendFileOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if rep := carry(b, alice, bob); rep.Chunks != 519 {
			b.Fatalf("carried %+v", rep.IngestReport)
		}
		if _, err := bob.SaveAttachment(m.ID, filepath.Join(b.TempDir(), "saved")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFileWithTheRequest: a file sent with a contact request is not fetched
// (no receipt goes to a stranger) until the request is accepted; then the
// chunks carried meanwhile complete it.
func TestFileWithTheRequest(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	mustAdd(t, alice, bob.link())
	path, data := testFile(t, 100_000, "early-bird")
	sent := mustSendFile(t, alice, "Bob", path)
	rep := carry(t, alice, bob)
	if rep.Requests != 1 || rep.Chunks != 0 || rep.New != 4 {
		t.Fatalf("a file with a request: %+v", rep.IngestReport)
	}
	if n := countItems(t, bob, colDelayed); n != 0 {
		t.Fatalf("%d receipts wait for a stranger", n)
	}
	if _, err := bob.Accept("Alice"); err != nil {
		t.Fatal(err)
	}
	if a := attachmentOf(t, bob, sent.ID); !a.Complete || a.Refused != "" {
		t.Fatalf("after accepting: %+v", a)
	}
	saveAndCompare(t, bob, sent.ID, data)
}

// TestRemovingTheContactDeletesTheFile: what was held of a file goes with
// its sender's messages.
func TestRemovingTheContactDeletesTheFile(t *testing.T) {
	f := sendTestFile(t, 100_000, "gone")
	ingestFrom(t, f.bob, "c", f.msg, f.chunks[0])
	if countItems(t, f.bob, colFileData) != 1 || countItems(t, f.bob, colTransfers) != 1 {
		t.Fatal("the transfer did not start")
	}
	if _, err := f.bob.Remove("Alice"); err != nil {
		t.Fatal(err)
	}
	if n, m := countItems(t, f.bob, colFileData), countItems(t, f.bob, colTransfers); n+m != 0 {
		t.Fatalf("after removing the contact: %d chunks of data, %d transfers", n, m)
	}
	if rep := ingestFrom(t, f.bob, "c", f.chunks[1]); rep.Chunks != 0 || rep.New != 1 {
		t.Fatalf("a chunk after removing the contact: %+v", rep)
	}
}

// strangerChunks makes n chunk envelopes of a file for nobody here.
func strangerChunks(t *testing.T, clk *testClock, n int) [][]byte {
	t.Helper()
	size := int64(n) * 32_000
	f, err := attach.Prepare(bytes.NewReader(make([]byte, size)), size, attach.Options{Receipts: true})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, f.Manifest().Chunks)
	for i := range out {
		if out[i], err = f.Seal(i, expiryFor(clk.Now().Add(time.Hour)), 5); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestChunksHaveTheirOwnPool: a flood of chunks evicts chunks and never the
// texts a relay carries (SPEC §16.4), within a chunk quota of its own.
func TestChunksHaveTheirOwnPool(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	relay.SetRelayQuota(200 << 10)
	texts := strangerEnvelopes(t, clk, 300, time.Hour) // ~190 KB of the quota with ItemOverhead
	if _, err := relay.IngestFrom("friend", texts, nil); err != nil {
		t.Fatal(err)
	}
	for _, quota := range []int64{ChunkQuotaOfRelay, 100 << 10} {
		setChunkQuota(t, relay, quota)
		rep, err := relay.IngestFrom("flooder", strangerChunks(t, clk, 40), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range texts {
			if !relay.Holds(envelope.ComputeID(raw)) {
				t.Fatalf("a flood of chunks evicted a text (chunk quota %d)", quota)
			}
		}
		held, limit := chunksHeld(t, relay), cmp.Or(max(quota, 0), 200<<10)
		if rep.Evicted == 0 || held == 0 || int64(held)*(envelope.ChunkSize+ItemOverhead) > limit {
			t.Fatalf("after 40 chunks over a %d-byte chunk quota: %d held, %d evicted", limit, held, rep.Evicted)
		}
	}
}

// TestChunkQuotaZero: with a chunk quota of 0 a relay carries no chunks for
// others, and texts as before.
func TestChunkQuotaZero(t *testing.T) {
	clk := newTestClock()
	relay := newTestNode(t, "Relay", clk)
	setChunkQuota(t, relay, 0)
	rep := ingestFrom(t, relay, "flooder", strangerChunks(t, clk, 5)...)
	if rep.Refused != 5 || rep.New != 0 || chunksHeld(t, relay) != 0 {
		t.Fatalf("chunks with a chunk quota of 0: %+v, %d held", rep, chunksHeld(t, relay))
	}
	texts := strangerEnvelopes(t, clk, 5, time.Hour)
	if rep := ingestFrom(t, relay, "friend", texts...); rep.New != 5 || rep.Refused != 0 {
		t.Fatalf("texts with a chunk quota of 0: %+v", rep)
	}
}

func setChunkQuota(t *testing.T, n *testNode, q int64) {
	t.Helper()
	s := n.Settings()
	s.ChunkQuota = q
	if got, err := n.SaveSettings(s); err != nil || got.ChunkQuota != q {
		t.Fatalf("a chunk quota of %d: %+v, %v", q, got, err)
	}
}

// TestRoomFile: a file posted to a room reaches every member from one set of
// chunks without receipts; a member carries the chunks on for the others
// (nobody can purge them), and each saves the file byte-identical.
func TestRoomFile(t *testing.T) {
	clk := newTestClock()
	alice, bob, carol := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk), newTestNode(t, "Carol", clk)
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	if _, err := alice.CreateRoom("Team"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{bob, carol} {
		if err := alice.InviteToRoom("Team", n.id.Name); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, n)
		if err := n.JoinRoom("Team"); err != nil {
			t.Fatal(err)
		}
		everyone(t, alice, bob, carol)
	}
	path, data := testFile(t, 100_000, "room")
	post, err := alice.SendRoomFile("Team", path, SendFileOptions{Caption: "for all"})
	if err != nil || post.Attachment == nil || post.Attachment.Chunks != 4 {
		t.Fatalf("SendRoomFile = %+v, %v", post, err)
	}
	carry(t, alice, bob)
	if rep := carry(t, bob, carol); rep.Chunks != 4 { // Bob carried them on
		t.Fatalf("Carol's import from Bob: %+v", rep.IngestReport)
	}
	for _, n := range []*testNode{bob, carol} {
		ms, err := n.RoomMessages("Team")
		if err != nil || len(ms) == 0 || ms[len(ms)-1].Attachment == nil || !ms[len(ms)-1].Attachment.Complete {
			t.Fatalf("%s's posts: %+v, %v", n.id.Name, ms, err)
		}
		if chunksHeld(t, n) != 4 {
			t.Fatalf("%s carries %d chunks of the room's file, want 4", n.id.Name, chunksHeld(t, n))
		}
		saveAndCompare(t, n, post.ID, data)
	}
}

// TestBrokenPhotoIsRefused: a file that looks like a JPEG but does not
// decode is refused as the caller's fault; sent as a file, it goes.
func TestBrokenPhotoIsRefused(t *testing.T) {
	_, alice, _, _ := friendsAndCarrier(t)
	path := filepath.Join(t.TempDir(), "broken.jpg")
	if err := os.WriteFile(path, []byte("\xff\xd8\xff\xe0 not really a photo"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ne *Error
	if _, err := alice.SendFile("Bob", path, SendFileOptions{}); !errors.As(err, &ne) || ne.Reason != ReasonInvalidPhoto {
		t.Fatalf("a broken photo: %v", err)
	}
	if m, err := alice.SendFile("Bob", path, SendFileOptions{AsFile: true}); err != nil || m.Attachment.MediaType != "image/jpeg" {
		t.Fatalf("a broken photo as a file: %+v, %v", m.Attachment, err)
	}
}

// TestFileLimit: the file limit is a setting from 1 MiB to 100 MiB; a file
// over the sender's is not sent, saying which setting raises it; one whose
// manifest says more than the receiver's is not fetched, and its message
// says why.
func TestFileLimit(t *testing.T) {
	f := sendTestFile(t, 1_200_000, "big")
	var ne *Error
	for _, bad := range []int64{50_000, MaxFileLimit + 1} {
		if err := f.bob.SetFileLimit(bad); !errors.As(err, &ne) || ne.Reason != ReasonInvalidSetting {
			t.Fatalf("a file limit of %d: %v", bad, err)
		}
	}
	if err := f.bob.SetFileLimit(MinFileLimit); err != nil {
		t.Fatal(err)
	}
	f.bob.reopen() // the limit is saved
	var log bytes.Buffer
	f.bob.log = slog.New(slog.NewTextHandler(&log, nil))
	rep := ingestFrom(t, f.bob, "c", append([][]byte{f.msg}, f.chunks...)...)
	a := attachmentOf(t, f.bob, f.sent.ID)
	if rep.Chunks != 0 || !strings.Contains(a.Refused, "file limit of 1048576 (the file_limit setting)") || a.Complete {
		t.Fatalf("a file over the limit: %+v, %+v", rep, a)
	}
	if !strings.Contains(log.String(), "not fetching a file over the file limit") || !strings.Contains(log.String(), "file_limit=1048576") {
		t.Errorf("the refusal is not logged: %q", log.String())
	}
	if err := f.alice.SetFileLimit(MinFileLimit); err != nil {
		t.Fatal(err)
	}
	path, _ := testFile(t, 1_100_000, "too-big")
	_, err := f.alice.SendFile("Bob", path, SendFileOptions{})
	if !errors.As(err, &ne) || ne.Reason != ReasonFileTooLarge || !strings.Contains(err.Error(), "file limit of 1048576 bytes (the file_limit setting") {
		t.Fatalf("sending over the limit: %v", err)
	}
	if got := f.alice.Settings().FileLimit; got != MinFileLimit {
		t.Fatalf("the file limit in the settings: %d", got)
	}
}
