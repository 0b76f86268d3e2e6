package browser

import (
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBundleProgress: the bundles page shows the node's own progress as it
// writes a bundle and as it imports one — for a bundle of about a hundred
// chunks of a file, many steps, rising to 100 % — then downloads the bundle
// written and reports the import.
func TestBundleProgress(t *testing.T) {
	alice, bob := startNode(t, "Alice"), startNode(t, "Bob") // not linked: a bundle carries the file
	var self struct{ Link string }
	if err := json.Unmarshal([]byte(bob.cli(t, "id", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	alice.cli(t, "contacts", "add", self.Link)
	data := make([]byte, 3<<20)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "survey.bin")
	writeFile(t, file, data)
	alice.cli(t, "send", "Bob", "--file", file)

	b := browser(t, "")
	at, bt := tab(t, b), tab(t, b)
	signIn(t, at, alice)
	signIn(t, bt, bob)
	show(t, at, "#/bundles")
	click(t, at, "export", "#export")
	waitJS(t, at, "the bundle downloaded", `!!document.getElementById('export-link')`)
	if got := eval[string](t, at, `document.querySelector('#export-link').previousSibling.textContent`); !regexp.MustCompile(`^\d+ envelopes, 3\.\d MiB\. $`).MatchString(got) {
		t.Fatalf("the export says %q", got)
	}
	if steps := eval[int](t, at, `Number(document.getElementById('export-status').dataset.steps)`); steps < 50 {
		t.Fatalf("the export's progress was shown %d times (want one per percent or so)", steps)
	}

	bundle := filepath.Join(t.TempDir(), "a.gvb")
	alice.cli(t, "export", bundle)
	show(t, bt, "#/bundles")
	do(t, bt, "import", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{bundle}))
	waitJS(t, bt, "the import report", `/Imported/.test(document.getElementById('import-report').textContent)`)
	st := eval[string](t, bt, `(() => { const s = document.getElementById('import-status'); return s.dataset.steps + ' | ' + s.dataset.percent + ' | ' + s.textContent })()`)
	m := regexp.MustCompile(`^(\d+) \| 100 \| Importing: 100 % · \d+ envelopes · 3\.\d MiB of 3\.\d MiB$`).FindStringSubmatch(st)
	if report := eval[string](t, bt, `document.getElementById('import-report').textContent`); strings.Contains(report, "null") {
		t.Fatalf("the import report says %q", report)
	}
	if m == nil {
		t.Fatalf("the import's progress: %q (want it at 100 %%)", st)
	}
	if steps, _ := strconv.Atoi(m[1]); steps < 50 {
		t.Fatalf("the import's progress was shown %d times (want one per percent or so)", steps)
	}
	shoot(t, bt, "bundles-import-progress")
}
