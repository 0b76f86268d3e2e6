package browser

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// until runs a grapevine command against n until its output holds want.
func (n *gnode) until(t *testing.T, want string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(grapevineBin(t), append([]string{"--home", n.home}, args...)...).CombinedOutput()
		if err == nil && strings.Contains(string(out), want) {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: grapevine %s never showed %q; last:\n%s (%v)", n.name, strings.Join(args, " "), want, out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGroupPage: Alice and Bob, contacts, share a private group made with
// `grapevine groups`. Alice's chats list it with Bob's post; its page shows
// the post with Bob's name (a hostile text as text), and what Alice writes
// there reaches Bob's node as a group post.
func TestGroupPage(t *testing.T) {
	alice := startNode(t, "Alice")
	bob := startNode(t, "Bob", "--peer", alice.listen)
	var self struct{ Link string }
	if err := json.Unmarshal([]byte(alice.cli(t, "id", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	bob.cli(t, "contacts", "add", self.Link)
	alice.until(t, "request", "contacts")
	alice.cli(t, "contacts", "accept", "Bob")
	bob.until(t, "active", "contacts")
	alice.cli(t, "groups", "create", "Night shift")
	alice.cli(t, "groups", "add", "Night shift", "Bob")
	bob.until(t, "Invitations", "groups")
	bob.cli(t, "groups", "join", "Night shift")
	bob.until(t, "Epoch:", "groups", "show", "Night shift")
	hostile := "<img src=x onerror=alert(1)> lights out"
	bob.cli(t, "send", "--group", "Night shift", hostile)

	b := browser(t, "")
	at := tab(t, b)
	signIn(t, at, alice)
	waitJS(t, at, "the group in Alice's chats", `[...document.querySelectorAll('#groups li .conv-last')].some(e => e.textContent.includes('Bob: <img src=x'))`)
	if n := eval[string](t, at, `document.querySelector('#groups li .name').textContent`); n != "Night shift" {
		t.Fatalf("group row %q", n)
	}
	shoot(t, at, "chats-group")
	click(t, at, "open the group", "#groups li a")
	waitJS(t, at, "the group page", `/^#\/group\/[0-9a-f]{64}$/.test(document.body.dataset.ready || '')`)
	waitJS(t, at, "Bob's post", `[...document.querySelectorAll('#messages .msg.in')].some(e => e.querySelector('.text').textContent === `+jsString(hostile)+` && e.querySelector('.sender').textContent === 'Bob')`)
	if n := eval[int](t, at, `document.querySelectorAll('#messages img').length`); n != 0 {
		t.Fatalf("the post became %d img elements", n)
	}
	if m := eval[string](t, at, `document.getElementById('group-members').textContent`); !strings.Contains(m, "me (admin)") || !strings.Contains(m, "Bob") {
		t.Fatalf("members %q", m)
	}
	do(t, at, "Alice writes", chromedp.SendKeys(chromedp.CSS("#compose"), "Keys are under the mat"))
	click(t, at, "Alice posts", "#send")
	waitJS(t, at, "Alice's post shown", `[...document.querySelectorAll('#messages .msg.out .text')].some(e => e.textContent === 'Keys are under the mat')`)
	shoot(t, at, "group")
	bob.until(t, "Keys are under the mat", "messages", "Night shift")
}
