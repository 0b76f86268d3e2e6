package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/grapevine-mesh/grapevine/internal/qrscan"
	"rsc.io/qr"
)

// Hostile content: none of it may run, restyle the page or spill out of it.
var hostileTexts = []string{
	`<script>window.__pwned = 1; document.title = "pwned"</script>`,
	`<img src=x onerror="window.__pwned = 2; document.title = 'pwned'">`,
	"\u202Edeliver to gnirts desrever\u202C and \u2066isolated\u2069 text",
	strings.Repeat("W", 10000),
	"emoji 👩‍👩‍👧 🎉 🇺🇦 and </div></main><h1>broken out</h1>",
}

// hostileName is Alice's own name, which Bob's UI shows.
const hostileName = `<img src=x onerror=alert(1)> Alice "&amp;"`

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestTwoPeopleMeet is the first meeting of Alice and Bob through the web
// UI alone: Alice shows her invite, Bob adds it from a photo (PNG) of the
// QR code, writes; Alice sees the request arrive, accepts, answers; both
// see their messages become delivered without reloading. Then Alice writes
// hostile texts, which Bob's page shows as text.
func TestTwoPeopleMeet(t *testing.T) {
	alice := startNode(t, hostileName)
	bob := startNode(t, "Bob", "--peer", alice.listen)
	b := browser(t, "")
	at, bt := tab(t, b), tab(t, b)
	signIn(t, at, alice)
	signIn(t, bt, bob)
	t.Logf("page load: the chats page on screen %s ms after Alice's sign-in link was opened",
		eval[string](t, at, `document.body.dataset.firstReadyMs`))
	shoot(t, at, "chats-empty")

	// Alice shows her invite; its QR code, as the screen shows it, is the photo.
	show(t, at, "#/invite")
	waitJS(t, at, "QR code loaded", `document.getElementById('invite-qr').complete && document.getElementById('invite-qr').naturalWidth > 0`)
	link := eval[string](t, at, `document.getElementById('invite-link').textContent`)
	if !strings.HasPrefix(link, "grapevine:") {
		t.Fatalf("invite link %q", link)
	}
	if v := eval[string](t, at, `document.getElementById('invite-valid').textContent`); !strings.Contains(v, "Valid until") {
		t.Fatalf("validity: %q", v)
	}
	shoot(t, at, "invite")
	// The photo: loaded is not yet painted on a busy machine, so the
	// screenshot is taken again until it holds a code.
	var photo []byte
	for try := 0; ; try++ {
		var err error
		if photo, err = chromedp.Run(at, chromedp.Screenshot(chromedp.CSS("#invite-qr"))); err != nil {
			t.Fatal(err)
		}
		if _, err = qrscan.Decode(bytes.NewReader(photo)); err == nil {
			break
		} else if try == 40 {
			t.Fatalf("no code in the screenshot of the invite's QR code: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	photoPath := filepath.Join(t.TempDir(), "alice-qr.png")
	if err := os.WriteFile(photoPath, photo, 0o644); err != nil {
		t.Fatal(err)
	}

	// Bob adds her by uploading the photo.
	show(t, bt, "#/add")
	shoot(t, bt, "add")
	do(t, bt, "upload the photo", chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{photoPath}))
	waitJS(t, bt, "the link read from the photo", `document.getElementById('add-link').value.startsWith('GRAPEVINE:')`)
	if got := eval[string](t, bt, `document.getElementById('add-link').value`); !strings.EqualFold(got, link) {
		t.Fatalf("decoded %q, want %q", got, link)
	}
	click(t, bt, "add", "#add")
	waitJS(t, bt, "Bob's chat with Alice", `/^#\/chat\//.test(document.body.dataset.ready || '')`)
	if got := eval[string](t, bt, `document.querySelector('.chat-head .name').textContent`); got != hostileName {
		t.Fatalf("chat title %q, want the name as text %q", got, hostileName)
	}
	do(t, bt, "Bob writes", chromedp.SendKeys(chromedp.CSS("#compose"), "Hello Alice, it is Bob"))
	click(t, bt, "Bob writes", "#send")
	waitJS(t, bt, "Bob's message shown", `document.querySelectorAll('#messages .msg.out').length === 1`)

	// Alice's chats show the request as it arrives: no reload.
	show(t, at, "#/")
	waitJS(t, at, "Bob's request in Alice's chats", `!!document.querySelector('#conversations li .tag.request')`)
	shoot(t, at, "chats-request")
	click(t, at, "open the request", "#conversations li a")
	waitJS(t, at, "the request notice", `!!document.querySelector('[data-testid=request] [data-action=accept]')`)
	shoot(t, at, "chat-request")
	click(t, at, "accept", "[data-action=accept]")
	waitJS(t, at, "Bob's message, readable after accepting", `[...document.querySelectorAll('#messages .msg.in .text')].some(e => e.textContent === 'Hello Alice, it is Bob')`)
	do(t, at, "Alice answers", chromedp.SendKeys(chromedp.CSS("#compose"), "Hi Bob! Welcome."))
	click(t, at, "Alice answers", "#send")

	// Both see delivered, live.
	waitJS(t, bt, "Bob's message delivered", `document.querySelector('#messages .msg.out')?.dataset.state === 'delivered'`)
	waitJS(t, at, "Alice's answer delivered", `document.querySelector('#messages .msg.out')?.dataset.state === 'delivered'`)
	waitJS(t, bt, "Alice's answer at Bob's", `[...document.querySelectorAll('#messages .msg.in .text')].some(e => e.textContent === 'Hi Bob! Welcome.')`)
	if s := eval[string](t, bt, `document.querySelector('#messages .msg.out .state').textContent`); !strings.Contains(s, "delivered") {
		t.Fatalf("Bob's state label %q", s)
	}
	shoot(t, bt, "chat")

	// Hostile texts render inertly at Bob's.
	for _, text := range hostileTexts {
		do(t, at, "Alice sends hostile text", chromedp.Evaluate[chromedp.Void](
			fmt.Sprintf(`document.getElementById('compose').value = %s; document.getElementById('send').click()`, jsString(text))))
		waitJS(t, at, "sent", fmt.Sprintf(`[...document.querySelectorAll('#messages .msg.out .text')].some(e => e.textContent === %s)`, jsString(text)))
	}
	for _, text := range hostileTexts {
		waitJS(t, bt, "hostile text shown as text", fmt.Sprintf(`[...document.querySelectorAll('#messages .msg.in .text')].some(e => e.textContent === %s)`, jsString(text)))
	}
	checkInert(t, bt)
	shoot(t, bt, "chat-hostile")
	show(t, bt, "#/")
	if got := eval[string](t, bt, `document.querySelector('#conversations .name').textContent`); got != hostileName {
		t.Fatalf("conversation name %q", got)
	}
	checkInert(t, bt)
	shoot(t, bt, "chats")

	// Unread counts: Bob has read everything; Alice's chat list shows none.
	show(t, at, "#/")
	if n := eval[int](t, at, `document.querySelectorAll('#conversations .badge.unread').length`); n != 0 {
		t.Fatalf("Alice has %d unread badges after reading", n)
	}

	// Every other page renders, at phone and desktop widths.
	fp := eval[string](t, bt, `document.querySelector('#conversations li').dataset.fp`)
	for _, p := range []struct{ hash, name, ready string }{
		{"#/contacts", "contacts", `document.querySelectorAll('#contacts li').length === 1`},
		{"#/contact/" + fp, "contact", `!!document.getElementById('rename')`},
		{"#/verify/" + fp, "verify", `document.getElementById('safety-qr').complete && document.getElementById('safety-digits').children.length > 0`},
		{"#/mesh", "mesh", `!!document.querySelector('#peers tbody tr') && !!document.querySelector('svg.hood line')`},
		{"#/bundles", "bundles", `!!document.getElementById('export')`},
		{"#/settings", "settings", `!!document.getElementById('node-settings')`},
	} {
		show(t, bt, p.hash)
		waitJS(t, bt, p.name, p.ready)
		checkInert(t, bt)
		shoot(t, bt, p.name)
	}

	// The safety numbers agree on both sides, and each side's QR scans to it.
	show(t, bt, "#/verify/"+fp)
	bobNum := eval[string](t, bt, `document.getElementById('safety-digits').textContent`)
	afp := eval[string](t, at, `document.querySelector('#conversations li').dataset.fp`)
	show(t, at, "#/verify/"+afp)
	aliceNum := eval[string](t, at, `document.getElementById('safety-digits').textContent`)
	if bobNum == "" || bobNum != aliceNum {
		t.Fatalf("safety numbers differ: %q and %q", aliceNum, bobNum)
	}
	qrShot, err := chromedp.Run(at, chromedp.Screenshot(chromedp.CSS("#safety-qr")))
	if err != nil {
		t.Fatal(err)
	}
	qrPath := filepath.Join(t.TempDir(), "safety.png")
	os.WriteFile(qrPath, qrShot, 0o644)
	do(t, bt, "Bob scans Alice's safety number", chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{qrPath}))
	waitJS(t, bt, "numbers match", `document.querySelector('#compare-result .match') !== null`)

	// Bundles: export downloads a bundle, import uploads it back.
	show(t, bt, "#/bundles")
	click(t, bt, "export", "#export")
	waitJS(t, bt, "bundle exported", `!!document.getElementById('export-link')`)
	bundle := filepath.Join(t.TempDir(), "b.gvb")
	bob.cli(t, "export", bundle)
	do(t, bt, "import", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{bundle}))
	waitJS(t, bt, "import report", `/Imported/.test(document.getElementById('import-report').textContent)`)
	shoot(t, bt, "bundles-import")

	// Desktop notifications: off by default; once on, "New message" without
	// the text; with the text only when asked. (The page's Notification is
	// replaced by a recorder, and the page pretends to be in the background.)
	show(t, bt, "#/settings")
	do(t, bt, "record notifications", chromedp.Evaluate[chromedp.Void](`
		window.__notes = [];
		window.Notification = class { constructor(title, o) { window.__notes.push(title + '|' + o.body); }
			static get permission() { return 'granted'; } static requestPermission() { return Promise.resolve('granted'); } };
		Object.defineProperty(document, 'hidden', { get: () => true });`))
	if on := eval[bool](t, bt, `document.getElementById('notify').checked || document.getElementById('notify-text').checked`); on {
		t.Fatal("notifications are on by default")
	}
	alice.cli(t, "send", "Bob", "while notifications are off")
	waitJS(t, bt, "the message counted", `live.lastUnread === 1`)
	click(t, bt, "notifications on", "#notify")
	alice.cli(t, "send", "Bob", "secret plans")
	waitJS(t, bt, "a notification without the text", `window.__notes.length === 1`)
	if note := eval[string](t, bt, `window.__notes[0]`); note != "Grapevine|New message" {
		t.Fatalf("notification %q", note)
	}
	click(t, bt, "with the text", "#notify-text")
	alice.cli(t, "send", "Bob", "meet at noon")
	waitJS(t, bt, "a notification with the text", `window.__notes.length === 2`)
	if note := eval[string](t, bt, `window.__notes[1]`); !strings.HasSuffix(note, ": meet at noon") {
		t.Fatalf("notification %q", note)
	}
}

// checkInert fails if anything a contact wrote ran, made elements, or
// made the page wider than the screen.
func checkInert(t *testing.T, ctx context.Context) {
	t.Helper()
	js := `(() => {
		const bad = [];
		if (window.__pwned) bad.push('script ran: ' + window.__pwned);
		if (document.title !== 'Grapevine') bad.push('title ' + document.title);
		if (document.querySelector('#main img:not(.qr), #main script, #main h1 ~ h1')) bad.push('element injected');
		if ([...document.querySelectorAll('#main h1')].some(e => e.textContent === 'broken out')) bad.push('heading injected');
		if (document.documentElement.scrollWidth > window.innerWidth + 1) bad.push('page wider than the window: ' + document.documentElement.scrollWidth);
		return bad.join('; ');
	})()`
	if bad := eval[string](t, ctx, js); bad != "" {
		t.Fatalf("hostile content was not inert: %s", bad)
	}
}

// TestRefused: the UI answers its API only to a browser signed in by the
// secret link, on an IP or localhost Host, and changes nothing for a
// request from another site.
func TestRefused(t *testing.T) {
	alice := startNode(t, "Alice")
	origin := alice.origin(t)
	ck := session(t, alice)
	send := func(host, originHdr string, cookie bool) int {
		req, _ := http.NewRequest(http.MethodPost, origin+"/api/v1/contacts",
			strings.NewReader(`{"link":"grapevine:nothing"}`))
		req.Header.Set("Content-Type", "application/json")
		if host != "" {
			req.Host = host
		}
		if originHdr != "" {
			req.Header.Set("Origin", originHdr)
		}
		if cookie {
			req.AddCookie(ck)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(path, host string, cookie bool, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodGet, origin+path, nil)
		if host != "" {
			req.Host = host
		}
		if cookie {
			req.AddCookie(ck)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	port := strings.TrimPrefix(origin, "http://127.0.0.1:")
	for _, tc := range []struct {
		what string
		got  int
		want int
	}{
		{"signed in", get("/api/v1/self", "", true, nil), 200},
		{"no cookie", get("/api/v1/self", "", false, nil), 401},
		{"a wrong secret", get("/open?k=guess", "", false, nil), 403},
		{"a DNS-rebinding Host", get("/api/v1/self", "attacker.example:"+port, true, nil), 403},
		{"a Host on another port", get("/api/v1/self", "127.0.0.1:1", true, nil), 403},
		{"a cross-site fetch", get("/api/v1/self", "", true, map[string]string{"Sec-Fetch-Site": "cross-site"}), 403},
		{"a cross-origin GET", get("/api/v1/self", "", true, map[string]string{"Origin": "http://attacker.example"}), 403},
		{"the paths API", get("/api/v1/export", "", true, nil), 403},
		{"a change with our Origin", send("", origin, true), 400}, // reaches the node: the link is bad
		{"a change without Origin", send("", "", true), 403},
		{"a change from another site", send("", "http://attacker.example", true), 403},
		{"a change from a null origin", send("", "null", true), 403},
		{"a change without the cookie", send("", origin, false), 401},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.what, tc.got, tc.want)
		}
	}

	// A real cross-site page in the browser: its forged POST carries no
	// cookie (SameSite=Strict) and no acceptable Origin, and changes nothing.
	b := browser(t, "")
	at := tab(t, b)
	signIn(t, at, alice)
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><form id=f method=POST action="%s/api/v1/send" enctype="text/plain">
<input name='{"to":"Alice","text":"forged","x":"' value='"}'></form><script>
fetch(%q, {method: "POST", credentials: "include", mode: "no-cors", body: '{"to":"Bob","text":"forged"}'}).finally(() => document.getElementById('f').submit())
</script>`, origin, origin+"/api/v1/send")
	})}
	ln := listenLoopback(t, "127.0.0.2:0")
	go evil.Serve(ln)
	t.Cleanup(func() { evil.Close() })
	do(t, at, "visit the evil page", chromedp.Navigate("http://"+ln.Addr().String()+"/"))
	// The page navigates when its form posts: look again until the answer
	// shows (a poll does not survive a navigation).
	for deadline := time.Now().Add(60 * time.Second); ; {
		text, err := chromedp.Run(at, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		if err == nil && (strings.Contains(text, "refused") || strings.Contains(text, "unauthorized")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forged form's answer never showed (last: %q, %v)", text, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := alice.cli(t, "messages"); strings.Contains(out, "forged") {
		t.Fatalf("a forged request changed the node:\n%s", out)
	}
}

// TestCamera: Carol scans Alice's invite with the camera (Chromium's fake
// camera shows a video of the QR code).
func TestCamera(t *testing.T) {
	alice := startNode(t, "Alice")
	carol := startNode(t, "Carol")
	var self struct {
		Link string `json:"link"`
	}
	if err := json.Unmarshal([]byte(alice.cli(t, "id", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	video := filepath.Join(t.TempDir(), "qr.y4m")
	writeY4M(t, video, strings.ToUpper(self.Link))
	b := browser(t, video)
	ct := tab(t, b)
	signIn(t, ct, carol)
	show(t, ct, "#/add")
	click(t, ct, "start the camera", "#camera")
	waitJS(t, ct, "the camera read the code", `document.getElementById('add-link').value.length > 0`)
	shoot(t, ct, "add-scanned")
	if got := eval[string](t, ct, `document.getElementById('add-link').value`); !strings.EqualFold(got, self.Link) {
		t.Fatalf("camera read %q, want %q", got, self.Link)
	}
	if live := eval[bool](t, ct, `document.querySelector('video.camera').hidden`); !live {
		t.Fatal("the camera still runs after reading the code")
	}
	click(t, ct, "add", "#add")
	waitJS(t, ct, "Carol's chat with Alice", `/^#\/chat\//.test(document.body.dataset.ready || '')`)
	if out := carol.cli(t, "contacts"); !strings.Contains(out, "Alice") || !strings.Contains(out, "pending") {
		t.Fatalf("Carol's contacts:\n%s", out)
	}
}

// writeY4M writes a two-frame 640×480 video of text's QR code (Chromium
// loops it).
func writeY4M(t *testing.T, path, text string) {
	t.Helper()
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 640, 480
	scale := (h - 40) / (code.Size + 8)
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 235 // a bright room
	}
	x0, y0 := (w-code.Size*scale)/2, (h-code.Size*scale)/2
	for y := range code.Size * scale {
		for x := range code.Size * scale {
			if code.Black(x/scale, y/scale) {
				img.SetGray(x0+x, y0+y, color.Gray{Y: 20})
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "YUV4MPEG2 W%d H%d F5:1 Ip A1:1 C420jpeg\n", w, h)
	chroma := make([]byte, w*h/4)
	for i := range chroma {
		chroma[i] = 128
	}
	for range 2 {
		f.WriteString("FRAME\n")
		f.Write(img.Pix)
		f.Write(chroma)
		f.Write(chroma)
	}
}

// TestLocked: a node started locked takes its passphrase in the browser.
func TestLocked(t *testing.T) {
	bin := grapevineBin(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "h")
	cmd := exec.Command(bin, "--home", home, "init", "--name", "Dana")
	cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE="+passphrase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	dana := startLocked(t, bin, home)
	b := browser(t, "")
	dt := tab(t, b)
	do(t, dt, "open", chromedp.Navigate(dana.ui))
	waitJS(t, dt, "lock screen", `document.body.dataset.ready === 'locked'`)
	shoot(t, dt, "locked")
	do(t, dt, "wrong passphrase", chromedp.SendKeys(chromedp.CSS("#passphrase"), "not it"))
	click(t, dt, "wrong passphrase", "#unlock")
	waitJS(t, dt, "refused", `!!document.querySelector('.notice[role=alert]')`)
	do(t, dt, "passphrase", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById('passphrase').value = %s; document.getElementById('unlock').click()`, jsString(passphrase))))
	waitJS(t, dt, "unlocked: chats", `document.body.dataset.ready === '#/'`)
	show(t, dt, "#/settings")
	if name := eval[string](t, dt, `document.querySelector('#main dd.name').textContent`); name != "Dana" {
		t.Fatalf("settings show %q", name)
	}
}
