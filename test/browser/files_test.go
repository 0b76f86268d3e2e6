package browser

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/grapevine-mesh/grapevine/internal/attach"
)

// TestFilesPhotoVoiceNote: Alice and Bob, contacts, exchange files through
// their web UIs alone. Alice sends a photo with a GPS position in its EXIF
// from the compose area: Bob's page shows it inline, and the bytes it is
// served have no APP1 segment; Alice's page shows it too, as it was sent
// (the same bytes, not her original), and says it is delivered once every
// chunk's receipt came back. Alice records a voice note with push-to-talk
// (a fake microphone): Bob's page plays it (audio/webm, a duration). A text
// file shows a Download button served as an attachment, and a hostile file
// (an HTML page named like markup) is neither rendered nor run.
func TestFilesPhotoVoiceNote(t *testing.T) {
	alice, bob := friends(t)

	dir := t.TempDir()
	photoPath := filepath.Join(dir, "damage at the bridge.jpg")
	withGPS := jpegWithGPS(t)
	if !hasAPP1(t, withGPS) {
		t.Fatal("the test photo has no APP1 segment to strip")
	}
	writeFile(t, photoPath, withGPS)
	txtPath := filepath.Join(dir, "notes.txt")
	writeFile(t, txtPath, []byte("water at the school, blankets at the mill\n"))
	hostileName := `<img src=x onerror=alert(1)>.html`
	hostilePath := filepath.Join(dir, hostileName)
	writeFile(t, hostilePath, []byte(`<!doctype html><html><body><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"></body></html>`))

	b := browser(t, "")
	at, bt := tab(t, b), tab(t, b)
	signIn(t, at, alice)
	signIn(t, bt, bob)
	bobFP := eval[string](t, at, `document.querySelector('#conversations li').dataset.fp`)
	aliceFP := eval[string](t, bt, `document.querySelector('#conversations li').dataset.fp`)
	show(t, at, "#/chat/"+bobFP)
	show(t, bt, "#/chat/"+aliceFP)

	// The photo, from the compose area's file button (its input).
	sendPhoto(t, at, bt, photoPath, "damage at the bridge.jpg")
	photoID := eval[string](t, bt, `document.querySelector('#messages .msg.in img.photo').closest('.msg').dataset.id`)
	ck := session(t, bob)
	resp, served := get(t, bob, ck, "/ui/files/"+photoID)
	if resp.Header.Get("Content-Type") != "image/jpeg" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("the photo served with %v", resp.Header)
	}
	if hasAPP1(t, served) || bytes.Contains(served, []byte("Exif")) {
		t.Fatal("the photo Bob is served still has EXIF (an APP1 segment)")
	}
	// Alice sees what she sent: the photo as Bob got it, not her original.
	waitJS(t, at, "the photo shown to its sender", `(() => { const i = document.querySelector('#messages .msg.out img.photo'); return i && i.complete && i.naturalWidth === 640 })()`)
	if id := eval[string](t, at, `document.querySelector('#messages .msg.out img.photo').closest('.msg').dataset.id`); id != photoID {
		t.Fatalf("Alice's page shows message %s's photo, Bob's %s", id, photoID)
	}
	_, kept := get(t, alice, session(t, alice), "/ui/files/"+photoID)
	if !bytes.Equal(kept, served) || bytes.Equal(kept, withGPS) {
		t.Fatalf("Alice is shown %d bytes (her original: %v), Bob %d", len(kept), bytes.Equal(kept, withGPS), len(served))
	}
	waitJS(t, at, "the photo delivered", `(() => { const a = document.querySelector('#messages .msg.out img.photo').closest('.attachment');
		return a.dataset.fileState === 'delivered' && /^delivered · (\d+) of \1 chunks? delivered$/.test(a.querySelector('.file-status').textContent) })()`)

	// A voice note, held for 1.5 s on the push-to-talk button.
	x, y := center(t, at, "#ptt")
	do(t, at, "press to talk", chromedp.MouseEvent(chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	waitJS(t, at, "the recording indicator", `/recording \d:\d\d/.test(document.getElementById('recording')?.textContent || '')`)
	do(t, at, "talk", chromedp.Sleep(1500*time.Millisecond))
	do(t, at, "release", chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	waitJS(t, at, "the voice note sent", `[...document.querySelectorAll('#messages .msg.out .attachment')].some(e => e.dataset.mediaType === 'audio/webm')`)
	waitJS(t, at, "a player of the voice note at Alice's", `document.querySelector('#messages .msg.out audio')?.dataset.loaded === '1'`)
	waitJS(t, bt, "a player at Bob's", `!!document.querySelector('#messages .msg.in audio')`)
	waitJS(t, bt, "the voice note's metadata", `document.querySelector('#messages .msg.in audio').dataset.loaded === '1'`)
	waitJS(t, bt, "the voice note's duration", `document.querySelector('#messages .msg.in audio').duration > 0.5`)
	t.Logf("voice note: %v s", eval[float64](t, bt, `(() => { const d = document.querySelector('#messages .msg.in audio').duration; return isFinite(d) ? d : -1 })()`))
	noteID := eval[string](t, bt, `document.querySelector('#messages .msg.in audio').closest('.msg').dataset.id`)
	resp, note := get(t, bob, ck, "/ui/files/"+noteID)
	if resp.Header.Get("Content-Type") != "audio/webm" || len(note) == 0 {
		t.Fatalf("the voice note served as %q, %d bytes", resp.Header.Get("Content-Type"), len(note))
	}

	// A text file and a hostile one: Download buttons, served as attachments.
	do(t, at, "choose the text file", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{txtPath}, chromedp.NodeReady))
	waitJS(t, bt, "its download at Bob's", `document.querySelectorAll('#messages .msg.in a.download').length === 3`)
	do(t, bt, "scroll to the end", chromedp.Evaluate[chromedp.Void](`document.getElementById('messages').scrollTop = 1e9`))
	shoot(t, bt, "chat-files")
	shoot(t, at, "chat-files-sent")
	do(t, at, "choose the hostile file", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{hostilePath}, chromedp.NodeReady))
	waitJS(t, bt, "its download at Bob's", `document.querySelectorAll('#messages .msg.in a.download').length === 4`)
	// The sender's node made the name safe for a path (attach.SanitiseName);
	// what is left of the markup is shown as text.
	for _, name := range []string{"notes.txt", attach.SanitiseName(hostileName)} {
		id := eval[string](t, bt, `[...document.querySelectorAll('#messages .msg.in .file-name')].find(e => e.textContent === `+jsString(name)+`).closest('.msg').dataset.id`)
		resp, body := get(t, bob, ck, "/ui/files/"+id+"?download=1")
		cd := resp.Header.Get("Content-Disposition")
		if resp.Header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(cd, "attachment;") || len(body) == 0 {
			t.Fatalf("%s served as %q, %q", name, resp.Header.Get("Content-Type"), cd)
		}
		// Asked for without ?download, it is an attachment all the same.
		resp, _ = get(t, bob, ck, "/ui/files/"+id)
		if !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("%s served inline or without a sandbox: %v", name, resp.Header)
		}
	}
	if n := eval[int](t, bt, `document.querySelectorAll('#messages img').length`); n != 1 {
		t.Fatalf("Bob's page has %d images (want the photo alone)", n)
	}
	if v := eval[bool](t, bt, `window.__pwned === undefined && document.title === 'Grapevine'`); !v {
		t.Fatal("the hostile file ran in Bob's page")
	}
}

// TestSentPhotoStates: a photo Alice sends shows in her conversation at
// once, as it was sent, and says honestly where it is: queued while no
// neighbour has taken a chunk, carried (k of n chunks) once a relay took
// them — though none is delivered to Bob, whom nothing reaches.
func TestSentPhotoStates(t *testing.T) {
	alice, bob := startNode(t, "Alice"), startNode(t, "Bob") // not linked
	var self struct{ Link string }
	if err := json.Unmarshal([]byte(bob.cli(t, "id", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	alice.cli(t, "contacts", "add", self.Link)
	photoPath := filepath.Join(t.TempDir(), "flooded road.jpg")
	writeFile(t, photoPath, jpegWithGPS(t))

	b := browser(t, "")
	at := tab(t, b)
	signIn(t, at, alice)
	bobFP := eval[string](t, at, `document.querySelector('#conversations li').dataset.fp`)
	show(t, at, "#/chat/"+bobFP)
	do(t, at, "choose the photo", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{photoPath}, chromedp.NodeReady))
	waitJS(t, at, "the photo shown at once", `(() => { const i = document.querySelector('#messages .msg.out img.photo'); return i && i.complete && i.naturalWidth === 640 })()`)
	state := func() string {
		return eval[string](t, at, `(() => { const a = document.querySelector('#messages .msg.out .attachment'); return a.dataset.fileState + ' | ' + a.querySelector('.file-status').textContent + ' | ' + a.querySelector('progress').value })()`)
	}
	if got := state(); !regexp.MustCompile(`^queued \| queued · 0 of (\d+) chunks? carried: waiting for a neighbour or a bundle \| 0$`).MatchString(got) {
		t.Fatalf("the photo, with no neighbour, shows as %q", got)
	}
	shoot(t, at, "chat-photo-queued")

	// A relay links with Alice and takes every chunk; Bob gets none.
	startNode(t, "Carol", "--peer", alice.listen)
	waitJS(t, at, "the photo carried", `(() => { const a = document.querySelector('#messages .msg.out .attachment');
		const m = /^carried · (\d+) of (\d+) chunks? carried, 0 delivered$/.exec(a.querySelector('.file-status').textContent);
		return a.dataset.fileState === 'carried' && m && m[1] === m[2] && a.querySelector('progress').value === Number(m[2]) })()`)
	if n := eval[int](t, at, `document.querySelectorAll('#messages .msg.out img.photo').length`); n != 1 {
		t.Fatalf("%d photos in Alice's conversation", n)
	}
	shoot(t, at, "chat-photo-carried")
}

// sendPhoto sends the photo at path from the sender's page (the compose
// area's file input) and waits until the receiver's page shows it.
func sendPhoto(t *testing.T, from, to context.Context, path, name string) {
	t.Helper()
	do(t, from, "choose the photo", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{path}, chromedp.NodeReady))
	waitJS(t, from, "the photo sent", `[...document.querySelectorAll('#messages .msg.out .file-name')].some(e => e.textContent === `+jsString(name)+`)`)
	waitJS(t, to, "the photo received", `(() => { const i = document.querySelector('#messages .msg.in img.photo'); return i && i.complete && i.naturalWidth === 640 })()`)
}

// center is where the element is on the page, for mouse events.
func center(t *testing.T, ctx context.Context, selector string) (x, y float64) {
	t.Helper()
	r := eval[[]float64](t, ctx, `(() => { const r = document.querySelector(`+jsString(selector)+`).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] })()`)
	return r[0], r[1]
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// get fetches a path of n's UI with the session cookie ck.
func get(t *testing.T, n *gnode, ck *http.Cookie, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.origin(t)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", path, resp.Status, err, b)
	}
	return resp, b
}

// jpegWithGPS is a 640×480 JPEG with an EXIF (APP1) segment holding a GPS
// latitude, as a phone writes it.
func jpegWithGPS(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			img.SetRGBA(x, y, color.RGBA{uint8(x / 3), uint8(y / 2), 160, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	// TIFF: IFD0 at 8 with one entry, the GPS IFD's offset (26); the GPS IFD
	// with GPSLatitudeRef "N" and GPSLatitude, three rationals at 56.
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	tiff = be.AppendUint16(tiff, 1)
	tiff = append(be.AppendUint16(be.AppendUint16(tiff, 0x8825), 4), 0, 0, 0, 1, 0, 0, 0, 26)
	tiff = be.AppendUint32(tiff, 0)
	tiff = be.AppendUint16(tiff, 2)
	tiff = append(be.AppendUint16(be.AppendUint16(tiff, 0x0001), 2), 0, 0, 0, 2, 'N', 0, 0, 0)
	tiff = append(be.AppendUint16(be.AppendUint16(tiff, 0x0002), 5), 0, 0, 0, 3, 0, 0, 0, 56)
	tiff = be.AppendUint32(tiff, 0)
	for _, v := range []uint32{27, 1, 42, 1, 1488, 100} {
		tiff = be.AppendUint32(tiff, v)
	}
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := be.AppendUint16([]byte{0xff, 0xe1}, uint16(len(payload)+2))
	out := append([]byte{0xff, 0xd8}, append(seg, payload...)...)
	return append(out, b.Bytes()[2:]...)
}

// hasAPP1 reads a JPEG's segments up to the first scan and reports whether
// one is APP1 (EXIF, XMP).
func hasAPP1(t *testing.T, jpg []byte) bool {
	t.Helper()
	if !bytes.HasPrefix(jpg, []byte{0xff, 0xd8}) {
		t.Fatalf("not a JPEG: % x", jpg[:min(len(jpg), 8)])
	}
	for i := 2; i+4 <= len(jpg); {
		if jpg[i] != 0xff {
			t.Fatalf("JPEG segment at %d does not start with 0xff", i)
		}
		m := jpg[i+1]
		if m == 0xe1 {
			return true
		}
		if m == 0xda { // start of scan: no more metadata segments
			return false
		}
		i += 2 + int(binary.BigEndian.Uint16(jpg[i+2:]))
	}
	return false
}

// TestGroupFileAndRecordingErrors: a photo sent from a group's page shows
// inline on the other member's; a file over the limit is refused before it
// is uploaded; push-to-talk cancelled with Escape sends nothing; a refused or
// absent microphone is said plainly.
func TestGroupFileAndRecordingErrors(t *testing.T) {
	alice, bob := friends(t)
	alice.cli(t, "groups", "create", "Team")
	alice.cli(t, "groups", "add", "Team", "Bob")
	bob.until(t, "", "groups", "join", "Team") // once the invitation has come
	alice.until(t, "Bob", "groups", "show", "Team")
	photoPath := filepath.Join(t.TempDir(), "map.jpg")
	writeFile(t, photoPath, jpegWithGPS(t))

	b := browser(t, "")
	at, bt := tab(t, b), tab(t, b)
	signIn(t, at, alice)
	signIn(t, bt, bob)
	waitJS(t, bt, "the group at Bob's", `!!document.querySelector('#groups li')`)
	group := eval[string](t, bt, `document.querySelector('#groups li').dataset.group`)
	show(t, at, "#/group/"+group)
	show(t, bt, "#/group/"+group)
	sendPhoto(t, at, bt, photoPath, "map.jpg")
	if s := eval[string](t, bt, `document.querySelector('#messages .msg.in .sender').textContent`); s != "Alice" {
		t.Fatalf("the photo's sender shows as %q", s)
	}
	// Alice's page shows her post's photo; of its chunks it knows no more
	// than that they were posted (members send no receipts).
	waitJS(t, at, "the photo shown to its sender", `(() => { const i = document.querySelector('#messages .msg.out img.photo'); return i && i.complete && i.naturalWidth === 640 })()`)
	if st := eval[string](t, at, `document.querySelector('#messages .msg.out .file-status').textContent`); !regexp.MustCompile(`^posted · \d+ chunks?, carried until they expire \(group members send no receipts\)$`).MatchString(st) {
		t.Fatalf("Alice's post's file shows as %q", st)
	}

	// A file over the node's limit (16 MiB) is refused before it is uploaded.
	big := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, big, nil)
	if err := os.Truncate(big, 17<<20); err != nil {
		t.Fatal(err)
	}
	do(t, at, "choose the large file", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{big}, chromedp.NodeReady))
	waitJS(t, at, "the large file refused", `document.querySelector('.notices').textContent.includes('big.bin was not sent: it is 17 MiB, the limit is 16 MiB')`)

	// Push-to-talk held, then Escape: cancelled, nothing sent.
	posts := eval[int](t, at, `document.querySelectorAll('#messages .msg').length`)
	x, y := center(t, at, "#ptt")
	do(t, at, "press to talk", chromedp.MouseEvent(chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	waitJS(t, at, "the recording indicator", `!!document.getElementById('recording')`)
	do(t, at, "Escape", chromedp.KeyEvent("\x1b"))
	waitJS(t, at, "cancelled", `document.getElementById('file-status').textContent.includes('cancelled')`)
	do(t, at, "release", chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	if n := eval[int](t, at, `document.querySelectorAll('#messages .msg').length`); n != posts {
		t.Fatalf("%d posts after a cancelled recording, %d before", n, posts)
	}

	// The browser says the microphone is refused, then that there is none.
	for _, c := range []struct{ name, want string }{{"NotAllowedError", "refused"}, {"NotFoundError", "No microphone"}} {
		do(t, at, "a microphone that fails", chromedp.Evaluate[chromedp.Void](
			`navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('no', `+jsString(c.name)+`))`))
		click(t, at, "record", "#record")
		waitJS(t, at, c.name, `document.getElementById('file-status').textContent.includes(`+jsString(c.want)+`)`)
	}
}
