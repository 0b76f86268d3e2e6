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
		Stealth    bool   `json:"stealth"`
		Relay      bool   `json:"relay"`
		RelayQuota int64  `json:"relay_quota"`
		Retention  string `json:"retention"`
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

	// Good values: saved and in force.
	setValue(t, et, "#set-quota", "64MiB")
	setValue(t, et, "#set-retention", "14d")
	click(t, et, "relay off", "#set-relay")
	click(t, et, "save", "#save-settings")
	waitJS(t, et, "saved", `document.querySelector('.page').dataset.saved === '1' && !!document.querySelector('#settings-out .match')`)
	want := settings{Stealth: true, Relay: false, RelayQuota: 64 << 20, Retention: "14d"}
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
	shoot(t, et, "settings-saved")
}

// setValue replaces an input's text, as typing would.
func setValue(t *testing.T, ctx context.Context, sel, v string) {
	t.Helper()
	do(t, ctx, "type into "+sel, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %s; e.dispatchEvent(new Event('input')); })()`, sel, jsString(v))))
}
