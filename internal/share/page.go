package share

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"rsc.io/qr"

	"github.com/grapevine-mesh/grapevine/internal/release"
)

// Page serves the download page and the verified files it lists:
//
//	/                the page: what Grapevine is, the file for the
//	                 visitor's platform, every file, how to check them
//	/qr.png          a QR code of the page's address, as the visitor reached it
//	/f/NAME          a file (only the verified ones)
//	/f/NAME.minisig  its signature
//	/release.pub     the key they verify under, in minisign's format
//
// It serves nothing else, keeps no log of visitors, and says nothing about
// the node or its person.
type Page struct {
	shelf  *Shelf
	items  []Item
	byName map[string]Item
}

// NewPage serves items, verified from shelf (Shelf.Scan).
func NewPage(shelf *Shelf, items []Item) *Page {
	p := &Page{shelf: shelf, items: items, byName: map[string]Item{}}
	for _, it := range items {
		p.byName[it.Name] = it
	}
	return p
}

func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	switch path := r.URL.Path; {
	case path == "/":
		p.page(w, r)
	case path == "/qr.png":
		p.qr(w, r)
	case path == "/release.pub":
		h.Set("Content-Type", "text/plain; charset=utf-8")
		b, _ := p.shelf.key.MarshalText()
		w.Write(b)
	case strings.HasPrefix(path, "/f/"):
		p.file(w, r, strings.TrimPrefix(path, "/f/"))
	default:
		http.NotFound(w, r)
	}
}

// publicKeyLine is the key's second line in minisign's format, which
// minisign -P takes.
func publicKeyLine(k release.PublicKey) string {
	b, _ := k.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// file serves a verified file or its signature, and only while the file is
// as it was verified.
func (p *Page) file(w http.ResponseWriter, r *http.Request, name string) {
	sig := strings.HasSuffix(name, release.SigSuffix)
	it, ok := p.byName[strings.TrimSuffix(name, release.SigSuffix)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	path := filepath.Join(p.shelf.dir, it.Name)
	st, err := os.Stat(path)
	if err != nil || st.Size() != it.Size || !st.ModTime().Equal(it.modTime) {
		http.Error(w, it.Name+" changed on this device since it was verified: it is not offered", http.StatusGone)
		return
	}
	if sig {
		path += release.SigSuffix
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, "failed to open "+name, http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err = f.Stat()
	if err != nil {
		http.Error(w, "failed to read "+name, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// qr draws the page's address as the visitor reached it, so that whoever
// has the page open can show it to the next person.
func (p *Page) qr(w http.ResponseWriter, r *http.Request) {
	code, err := qr.Encode(pageURL(r), qr.M)
	if err != nil {
		http.Error(w, "failed to draw the QR code", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(code.PNG())
}

// pageURL is the page's address from the request's Host, which is checked
// to be a host and port only (it is the visitor's own say).
func pageURL(r *http.Request) string {
	host := r.Host
	if host == "" || len(host) > 255 || strings.ContainsFunc(host, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]%", c))
	}) {
		host = "localhost"
	}
	return "http://" + host + "/"
}

// platformOf guesses the visitor's platform from its User-Agent, to offer
// the right file first. A wrong guess costs nothing: every file is listed.
func platformOf(ua string) string {
	ua = strings.ToLower(ua)
	switch {
	case strings.Contains(ua, "iphone") || strings.Contains(ua, "ipad"):
		return "ios" // no build: iOS runs only what its store signed
	case strings.Contains(ua, "android"):
		return "android/arm64"
	case strings.Contains(ua, "windows"):
		return "windows/amd64"
	case strings.Contains(ua, "mac os x") || strings.Contains(ua, "macintosh"):
		return "darwin/arm64"
	case strings.Contains(ua, "linux") && (strings.Contains(ua, "aarch64") || strings.Contains(ua, "arm64")):
		return "linux/arm64"
	case strings.Contains(ua, "linux") && strings.Contains(ua, "armv"):
		return "linux/arm"
	case strings.Contains(ua, "linux"):
		return "linux/amd64"
	}
	return ""
}

type pageData struct {
	Items  []Item
	Yours  *Item
	IOS    bool
	KeyID  string
	KeyB64 string
}

func (p *Page) page(w http.ResponseWriter, r *http.Request) {
	d := pageData{Items: p.items, KeyID: p.shelf.key.ID.String(), KeyB64: publicKeyLine(p.shelf.key)}
	plat := platformOf(r.UserAgent())
	d.IOS = plat == "ios"
	if plat != "" {
		for i := range p.items {
			if p.items[i].Platform == plat {
				d.Yours = &p.items[i]
				break
			}
		}
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, d); err != nil {
		http.Error(w, "failed to draw the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{"size": sizeText}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Grapevine — a messenger that works without the internet</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:1rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.5rem;margin:.5rem 0}
.yours{background:#eef6ee;border:1px solid #9c9;padding:.75rem;border-radius:.5rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd;vertical-align:top}
code{font-size:.8rem;word-break:break-all}
.warn{background:#fff6e0;border:1px solid #e6c36a;padding:.75rem;border-radius:.5rem}
img{width:12rem;height:12rem;image-rendering:pixelated}
</style></head><body>
<h1>Grapevine</h1>
<p>An end-to-end encrypted messenger that works without the internet: phones and computers pass sealed messages
from one to the next until they arrive. No account, no phone number, no server. Someone nearby is handing it on to
you from their device.</p>
{{if .Yours}}<p class="yours"><strong>For this device:</strong>
<a href="/f/{{.Yours.Name}}" download>{{.Yours.Name}}</a> ({{size .Yours.Size}}) —
<a href="/f/{{.Yours.Name}}.minisig" download>signature</a></p>{{end}}
{{if .IOS}}<p class="warn">There is no Grapevine for iPhone or iPad: they run only what Apple's store signed. A
friend's Android phone or a laptop can carry your messages.</p>{{end}}
<p class="warn"><strong>Check before you run it.</strong> This page comes from another person's device, and it cannot
prove itself; the signature can. Every file here was checked against Grapevine's release key
{{.KeyID}} by that device, and you can check it again: with Grapevine, <code>grapevine verify FILE</code>; with
<a href="https://jedisct1.github.io/minisign/">minisign</a>, <code>minisign -Vm FILE -P {{.KeyB64}}</code>.
The SHA-256 of each file is listed too.</p>
{{if .Items}}<table><tr><th>File</th><th>For</th><th>Size</th><th>SHA-256</th></tr>
{{range .Items}}<tr><td><a href="/f/{{.Name}}" download>{{.Name}}</a><br><a href="/f/{{.Name}}.minisig" download>signature</a></td>
<td>{{if .Platform}}{{.Platform}}{{else}}—{{end}}{{if .Version}}<br>{{.Version}}{{end}}</td><td>{{size .Size}}</td><td><code>{{.SHA256}}</code></td></tr>
{{end}}</table>{{else}}<p>This device has no verified release to hand on yet.</p>{{end}}
<p>On Android and Linux the file is a program for a terminal (for example Termux on Android): make it executable
(<code>chmod +x FILE</code>) and run <code>./FILE up</code>. On Windows and macOS run it from a terminal the same way.</p>
<p>Pass it on: let the next person scan this.<br><img src="/qr.png" alt="QR code of this page's address"></p>
</body></html>
`))
