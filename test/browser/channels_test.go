package browser

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// pseudonymShown is how the web UI shows a poster's key: its first 12 hex
// digits in groups of four.
func pseudonymShown(key string) string { return key[:4] + " " + key[4:8] + " " + key[8:12] }

// TestChannelPage: Alice and Bob, linked but not contacts, meet in a public
// channel through their web UIs alone. Alice joins #rescue from her chats
// and posts (the page shows the stamp being made, then how long it took);
// Bob joins #Rescue (the same channel) and sees the post under Alice's
// pseudonym there, which is not her name; muting it hides her posts at
// Bob's, and undo shows them again. A Nearby post of Alice's shows up in
// Bob's chats and on his Nearby page. Alice makes an announcement channel,
// Bob follows it by its owner key and reads her announcement, with no box
// to post in. A hostile post stays text.
func TestChannelPage(t *testing.T) {
	alice := startNode(t, "Alice")
	bob := startNode(t, "Bob", "--peer", alice.listen)
	bob.until(t, `"synced": true`, "peers", "--json")

	b := browser(t, "")
	at, bt := tab(t, b), tab(t, b)
	signIn(t, at, alice)
	signIn(t, bt, bob)

	// Alice joins and posts.
	do(t, at, "open the room forms", chromedp.Evaluate[chromedp.Void](`document.getElementById('new-room').open = true`))
	do(t, at, "name the channel", chromedp.SendKeys(chromedp.CSS("#join-channel"), "#rescue"))
	click(t, at, "join", "#join-channel-button")
	waitJS(t, at, "the channel's page", `document.body.dataset.ready === '#/channel/rescue' && document.querySelector('.chat-head .name').textContent === '#rescue'`)
	var chans []struct{ Name, Pseudonym string }
	if err := json.Unmarshal([]byte(alice.cli(t, "channels", "--json")), &chans); err != nil {
		t.Fatal(err)
	}
	var pseudonym string
	for _, c := range chans {
		if c.Name == "#rescue" {
			pseudonym = c.Pseudonym
		}
	}
	if len(pseudonym) != 64 {
		t.Fatalf("Alice's channels: %+v", chans)
	}
	if about := eval[string](t, at, `document.getElementById('room-about').textContent`); !strings.Contains(about, pseudonymShown(pseudonym)) {
		t.Fatalf("the page says %q, not Alice's pseudonym %s", about, pseudonymShown(pseudonym))
	}
	do(t, at, "Alice writes", chromedp.SendKeys(chromedp.CSS("#compose"), "Water at the school"))
	click(t, at, "Alice posts", "#send")
	waitJS(t, at, "the stamp being made", `document.getElementById('stamping').textContent.startsWith('Stamping your post') || document.getElementById('stamping').textContent.startsWith('Posted')`)
	waitJS(t, at, "Alice's post shown", `document.getElementById('stamping').textContent.startsWith('Posted: stamped in') &&
		[...document.querySelectorAll('#messages .msg.out .text')].some(e => e.textContent === 'Water at the school')`)
	do(t, at, "open About", chromedp.Evaluate[chromedp.Void](`document.getElementById('room-manage').open = true`))
	shoot(t, at, "channel-posted")

	// Bob joins the same channel (the name is case-blind) and reads it.
	do(t, bt, "open the room forms", chromedp.Evaluate[chromedp.Void](`document.getElementById('new-room').open = true`))
	do(t, bt, "name the channel", chromedp.SendKeys(chromedp.CSS("#join-channel"), "#Rescue"))
	click(t, bt, "join", "#join-channel-button")
	waitJS(t, bt, "the channel's page", `document.body.dataset.ready === '#/channel/rescue'`)
	waitJS(t, bt, "Alice's post under her pseudonym", `[...document.querySelectorAll('#messages .msg.in')].some(e =>
		e.querySelector('.text').textContent === 'Water at the school' && e.querySelector('.sender').textContent === `+jsString(pseudonymShown(pseudonym))+`)`)
	if s := eval[string](t, bt, `document.getElementById('main').innerText`); strings.Contains(s, "Alice") {
		t.Fatalf("Bob's page names Alice:\n%s", s)
	}
	shoot(t, bt, "channel")

	// Bob mutes her pseudonym: her posts go; undo brings them back.
	click(t, bt, "mute", "#messages .msg.in [data-action=mute]")
	waitJS(t, bt, "Alice's post hidden", `document.querySelector('.notices').textContent.includes('Muted') && !document.querySelector('#messages .msg.in')`)
	bob.until(t, "No posts in #rescue yet.", "messages", "#rescue")
	shoot(t, bt, "channel-muted")
	click(t, bt, "undo", ".notices [data-action=unmute]")
	waitJS(t, bt, "Alice's post back", `[...document.querySelectorAll('#messages .msg.in .text')].some(e => e.textContent === 'Water at the school')`)
	// A post is text, whatever it holds.
	hostile := "<img src=x onerror=alert(1)> boats at the dock"
	alice.cli(t, "send", "#rescue", hostile)
	waitJS(t, bt, "the hostile post, as text", `[...document.querySelectorAll('#messages .msg.in .text')].some(e => e.textContent === `+jsString(hostile)+`)`)
	if n := eval[int](t, bt, `document.querySelectorAll('#messages img').length`); n != 0 {
		t.Fatalf("the post became %d img elements", n)
	}

	// Nearby: Alice posts; Bob's chats list it, his Nearby page shows it.
	show(t, at, "#/nearby")
	do(t, at, "Alice writes", chromedp.SendKeys(chromedp.CSS("#compose"), "Bridge on the north road is down"))
	click(t, at, "Alice posts", "#send")
	waitJS(t, at, "Alice's Nearby post shown", `[...document.querySelectorAll('#messages .msg.out .text')].some(e => e.textContent === 'Bridge on the north road is down')`)
	show(t, bt, "#/")
	waitJS(t, bt, "Nearby in Bob's chats", `[...document.querySelectorAll('#rooms li[data-room=nearby] .conv-last')].some(e => e.textContent.includes('Bridge on the north road is down'))`)
	shoot(t, bt, "chats-rooms")
	click(t, bt, "open Nearby", "#rooms li[data-room=nearby] a")
	waitJS(t, bt, "the Nearby post", `document.body.dataset.ready === '#/nearby' && [...document.querySelectorAll('#messages .msg.in .text')].some(e => e.textContent === 'Bridge on the north road is down')`)
	shoot(t, bt, "nearby")

	// Announcements: Alice makes "clinic"; Bob follows it by its owner key.
	show(t, at, "#/")
	do(t, at, "open the room forms", chromedp.Evaluate[chromedp.Void](`document.getElementById('new-room').open = true`))
	do(t, at, "name it", chromedp.SendKeys(chromedp.CSS("#new-announce"), "clinic"))
	click(t, at, "create", "#create-announce")
	waitJS(t, at, "the announcement page", `document.body.dataset.ready === '#/announce/clinic' && !!document.querySelector('[data-owner]')`)
	owner := eval[string](t, at, `document.querySelector('[data-owner]').dataset.owner`)
	do(t, at, "Alice writes", chromedp.SendKeys(chromedp.CSS("#compose"), "Clinic open at nine"))
	click(t, at, "Alice announces", "#send")
	waitJS(t, at, "the announcement shown", `document.getElementById('stamping').textContent.startsWith('Posted')`)
	show(t, bt, "#/")
	do(t, bt, "open the room forms", chromedp.Evaluate[chromedp.Void](`document.getElementById('new-room').open = true`))
	do(t, bt, "owner key", chromedp.SendKeys(chromedp.CSS("#follow-owner"), owner))
	do(t, bt, "local name", chromedp.SendKeys(chromedp.CSS("#follow-name"), "Clinic news"))
	click(t, bt, "follow", "#follow-button")
	waitJS(t, bt, "the announcement at Bob's", `document.body.dataset.ready === '#/announce/Clinic%20news' &&
		[...document.querySelectorAll('#messages .msg.in')].some(e => e.querySelector('.text').textContent === 'Clinic open at nine' && e.querySelector('.sender').textContent === 'owner')`)
	if !eval[bool](t, bt, `document.querySelector('form.sendbox').hidden`) {
		t.Fatal("Bob may post to Alice's announcements")
	}
	shoot(t, bt, "announce")
}
