package browser

import (
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

// TestGroupPage: Alice and Bob, contacts, make a private group through
// their web UIs alone: Alice creates it from her chats and invites Bob from
// its page; Bob joins from his chats. Alice's chats list it with Bob's post;
// its page shows the post with Bob's name (a hostile text as text), and what
// Alice writes there reaches Bob's node as a group post.
func TestGroupPage(t *testing.T) {
	alice, bob := friends(t)

	b := browser(t, "")
	at, bt := tab(t, b), tab(t, b)
	signIn(t, at, alice)
	signIn(t, bt, bob)
	do(t, at, "open New group", chromedp.Evaluate[chromedp.Void](`document.querySelector('details.new-group').open = true`))
	do(t, at, "name the group", chromedp.SendKeys(chromedp.CSS("#new-group"), "Night shift"))
	click(t, at, "create", "#create-group")
	waitJS(t, at, "the new group's page", `/^#\/group\/[0-9a-f]{64}$/.test(document.body.dataset.ready || '') && document.querySelector('.chat-head .name').textContent === 'Night shift'`)
	waitJS(t, at, "Bob offered to invite", `[...document.querySelectorAll('#invite-contact option')].some(o => o.textContent === 'Bob')`)
	click(t, at, "invite Bob", "#invite")
	waitJS(t, at, "the invitation sent", `document.querySelector('.notices').textContent.includes('Invited Bob')`)
	waitJS(t, bt, "the invitation at Bob's", `!!document.querySelector('#group-invitations li [data-action=join]')`)
	shoot(t, bt, "chats-invitation")
	click(t, bt, "join", "#group-invitations li [data-action=join]")
	waitJS(t, bt, "the group at Bob's", `[...document.querySelectorAll('#groups li .name')].some(e => e.textContent === 'Night shift')`)
	waitJS(t, at, "Bob in Alice's group", `document.getElementById('group-members').textContent.includes('Bob')`)
	if m := eval[string](t, at, `document.getElementById('group-members').textContent`); !strings.Contains(m, "me (admin)") {
		t.Fatalf("members %q", m)
	}
	waitJS(t, at, "nobody left to invite", `document.querySelector('#invite-contact').closest('form').hidden`)

	hostile := "<img src=x onerror=alert(1)> lights out"
	bob.cli(t, "send", "--group", "Night shift", hostile)
	show(t, at, "#/")
	waitJS(t, at, "the group in Alice's chats", `[...document.querySelectorAll('#groups li .conv-last')].some(e => e.textContent.includes('Bob: <img src=x'))`)
	shoot(t, at, "chats-group")
	click(t, at, "open the group", "#groups li a")
	waitJS(t, at, "the group page", `/^#\/group\/[0-9a-f]{64}$/.test(document.body.dataset.ready || '')`)
	waitJS(t, at, "Bob's post", `[...document.querySelectorAll('#messages .msg.in')].some(e => e.querySelector('.text').textContent === `+jsString(hostile)+` && e.querySelector('.sender').textContent === 'Bob')`)
	if n := eval[int](t, at, `document.querySelectorAll('#messages img').length`); n != 0 {
		t.Fatalf("the post became %d img elements", n)
	}
	do(t, at, "Alice writes", chromedp.SendKeys(chromedp.CSS("#compose"), "Keys are under the mat"))
	click(t, at, "Alice posts", "#send")
	waitJS(t, at, "Alice's post shown", `[...document.querySelectorAll('#messages .msg.out .text')].some(e => e.textContent === 'Keys are under the mat')`)
	shoot(t, at, "group")
	bob.until(t, "Keys are under the mat", "messages", "Night shift")

	// Alice renames the group and makes Bob an admin from its page; Bob
	// leaves from his.
	do(t, at, "open the group's settings", chromedp.Evaluate[chromedp.Void](`document.getElementById('group-manage').open = true`))
	shoot(t, at, "group-settings")
	do(t, at, "new name", chromedp.SetValue(chromedp.CSS("#group-rename"), "Day shift"))
	do(t, at, "rename", chromedp.Evaluate[chromedp.Void](`document.getElementById('group-rename').form.requestSubmit()`))
	alice.until(t, "Day shift", "groups") // the node has it: what follows is the page's part
	waitJS(t, at, "the new name", `document.querySelector('.chat-head .name').textContent === 'Day shift'`)
	click(t, at, "make Bob an admin", "#group-member-list [data-action=admin]")
	bob.until(t, "Day shift", "groups")
	bob.until(t, "You:    admin", "groups", "show", "Day shift")
	show(t, bt, "#/")
	click(t, bt, "Bob opens the group", "#groups li a")
	waitJS(t, bt, "Bob's view of the group", `document.querySelector('.chat-head .name')?.textContent === 'Day shift'`)
	do(t, bt, "open the group's settings", chromedp.Evaluate[chromedp.Void](`document.getElementById('group-manage').open = true`))
	click(t, bt, "leave", "#group-leave")
	click(t, bt, "confirm", "#group-leave-yes")
	waitJS(t, bt, "Bob back at his chats, without the group", `document.body.dataset.ready === '#/' && !document.querySelector('#groups li')`)
	waitJS(t, at, "Bob gone from Alice's group", `document.getElementById('group-members').textContent === 'me (admin)'`)
}
