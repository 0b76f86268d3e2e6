package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestSettingsPage changes the node's settings through its web UI: a bad
// value is refused with the field marked and nothing changed; good ones are
// saved, and the running node applies them at once (its status says so,
// and the CLI, a client of the same node, sees them).
func TestSettingsPage(t *testing.T) {
	erin := startNode(t, "Erin")
	b := browser(t, "")
	et := tab(t, b)
	signIn(t, et, erin)
	show(t, et, "#/settings")
	waitJS(t, et, "the settings form", `!!document.getElementById('save-settings') && document.getElementById('set-quota').value === '256MiB'`)
	if on := eval[bool](t, et, `document.querySelector('#set-relay').checked && !document.querySelector('#set-stealth').checked`); !on {
		t.Fatal("the form does not show relay on and stealth off")
	}
	type settings struct {
		Stealth           bool   `json:"stealth"`
		Relay             bool   `json:"relay"`
		RelayQuota        int64  `json:"relay_quota"`
		ChunkQuota        int64  `json:"chunk_quota"`
		ChunkQuotaOfRelay bool   `json:"chunk_quota_of_relay"`
		FileLimit         int64  `json:"file_limit"`
		Retention         string `json:"retention"`
	}
	read := func() settings {
		t.Helper()
		var s settings
		if err := json.Unmarshal([]byte(erin.cli(t, "settings", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := read()

	// A bad quota (with a good change beside it): refused, the field marked.
	setValue(t, et, "#set-quota", "lots")
	click(t, et, "stealth on", "#set-stealth")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "the refusal", `/Not saved: relay_quota: "lots": want a size/.test(document.getElementById('settings-out').textContent)`)
	if bad := eval[string](t, et, `document.getElementById('set-quota').getAttribute('aria-invalid') + ' ' + document.activeElement.id`); bad != "true set-quota" {
		t.Fatalf("the quota field is not marked and focused: %q", bad)
	}
	if now := read(); now != before {
		t.Fatalf("a refused form changed the settings: %+v, before %+v", now, before)
	}
	shoot(t, et, "settings-refused")

	// A file limit beyond its range: refused, naming the range.
	setValue(t, et, "#set-quota", "64MiB")
	setValue(t, et, "#set-file-limit", "200MiB")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "the file limit refused", `document.getElementById('settings-out').textContent.includes('Not saved: file_limit: "200MiB": from 1MiB to 100MiB')`)
	if bad := eval[string](t, et, `document.getElementById('set-file-limit').getAttribute('aria-invalid') + ' ' + document.getElementById('set-quota').getAttribute('aria-invalid') + ' ' + document.activeElement.id`); bad != "true null set-file-limit" {
		t.Fatalf("the file limit field is not (alone) marked and focused: %q", bad)
	}
	if now := read(); now != before {
		t.Fatalf("a refused form changed the settings: %+v, before %+v", now, before)
	}
	do(t, et, "scroll to the refusal", chromedp.Evaluate[chromedp.Void](`document.getElementById('save-settings').scrollIntoView({ block: 'center' })`))
	shoot(t, et, "settings-file-limit-refused")
	setValue(t, et, "#set-file-limit", "64MiB")
	setValue(t, et, "#set-chunk-quota", "plenty")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "the chunk quota refused", `/Not saved: chunk_quota: "plenty": want a size/.test(document.getElementById('settings-out').textContent) && document.getElementById('set-chunk-quota').getAttribute('aria-invalid') === 'true'`)

	// Good values: saved and in force.
	setValue(t, et, "#set-chunk-quota", "1GiB")
	setValue(t, et, "#set-retention", "14d")
	click(t, et, "relay off", "#set-relay")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "saved", `document.querySelector('.page').dataset.saved === '1' && !!document.querySelector('#settings-out .match')`)
	want := settings{Stealth: true, Relay: false, RelayQuota: 64 << 20, ChunkQuota: 1 << 30, FileLimit: 64 << 20, Retention: "14d"}
	if now := read(); now != want {
		t.Fatalf("after saving: %+v, want %+v", now, want)
	}
	var st struct {
		Relay      bool  `json:"relay"`
		RelayQuota int64 `json:"relay_quota"`
	}
	if err := json.Unmarshal([]byte(erin.cli(t, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Relay || st.RelayQuota != 0 {
		t.Fatalf("relay off in the UI, yet the node's status says %+v", st)
	}
	// Shown again after a reload, as saved.
	show(t, et, "#/")
	show(t, et, "#/settings")
	waitJS(t, et, "the saved form", `document.getElementById('set-quota').value === '64MiB' && document.getElementById('set-retention').value === '14d' && document.querySelector('#set-stealth').checked && !document.querySelector('#set-relay').checked`)
	if got := eval[string](t, et, `[document.getElementById('set-file-limit').value, document.getElementById('set-chunk-quota').value, document.getElementById('chunk-quota-now').textContent].join(' | ')`); got != "64MiB | 1GiB | Now 1GiB. " {
		t.Fatalf("the saved file settings show as %q", got)
	}
	shoot(t, et, "settings-saved")

	// The chunk quota back to the relay's, then none, each said as it is (a
	// new page: its count of saves starts again).
	setValue(t, et, "#set-chunk-quota", "relay")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "as the relay quota", `document.querySelector('.page').dataset.saved === '1' && document.getElementById('chunk-quota-now').textContent === 'Now 64MiB (as the relay quota). ' && document.getElementById('set-chunk-quota').value === 'relay'`)
	setValue(t, et, "#set-chunk-quota", "0")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "no chunks carried", `document.querySelector('.page').dataset.saved === '2' && document.getElementById('chunk-quota-now').textContent.startsWith('Now none')`)
	if s := read(); s.ChunkQuota != 0 || s.ChunkQuotaOfRelay {
		t.Fatalf("chunk quota 0 saved as %+v", s)
	}
}

// setValue replaces an input's text, as typing would.
func setValue(t *testing.T, ctx context.Context, sel, v string) {
	t.Helper()
	do(t, ctx, "type into "+sel, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %s; e.dispatchEvent(new Event('input')); })()`, sel, jsString(v))))
}
