package browser

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tmuxSession runs a command in a detached tmux session on a server of the
// test's own (-L), 100×30.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing and CI=true: .ci/run installs it")
		}
		t.Skip("no tmux: apt-get install tmux (CI=true makes this a failure)")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("gvtest-%d-%d", os.Getpid(), time.Now().UnixNano())}
	s.run("new-session", "-d", "-s", "chat", "-x", "100", "-y", "30", command)
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return s.run("capture-pane", "-p", "-t", "chat") }

// keys types into the client; each argument is a tmux key (Enter, C-a) or,
// with literal, text.
func (s *tmuxSession) keys(literal bool, keys ...string) {
	s.t.Helper()
	args := []string{"send-keys", "-t", "chat"}
	if literal {
		args = append(args, "-l")
	}
	s.run(append(args, keys...)...)
}

// wait waits until the screen shows every string (the client redraws by
// itself: nothing here prods it).
func (s *tmuxSession) wait(what string, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		scr := s.screen()
		ok := true
		for _, w := range want {
			if !strings.Contains(scr, w) {
				ok = false
			}
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s (%q); the screen:\n%s", what, want, scr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTerminalChat drives `grapevine chat` in a pseudo-terminal (tmux):
// Bob's request arrives live, Alice accepts it, reads his message, answers
// and sees it delivered; a hostile text cannot touch the terminal.
func TestTerminalChat(t *testing.T) {
	alice := startNode(t, "Alice")
	bob := startNode(t, "Bob", "--peer", alice.listen)
	var link string
	for _, l := range strings.Split(alice.cli(t, "id"), "\n") {
		if strings.HasPrefix(l, "grapevine:") {
			link = l
		}
	}
	term := newTmux(t, grapevineBin(t)+" --home "+alice.home+" chat")
	term.wait("the empty list", "Grapevine · Alice · chats", "No contacts yet")

	bob.cli(t, "contacts", "add", link)
	bob.cli(t, "send", "Alice", "hello from Bob")
	term.wait("Bob's request, live", "Bob", "[request: a accept, x reject]")
	term.keys(false, "a")
	term.wait("Bob's message, readable once accepted", "hello from Bob")
	term.keys(false, "Enter")
	term.wait("the chat view", "Grapevine · Alice · Bob", "hello from Bob", "enter send")
	term.keys(true, "Hi Bob, Alice here")
	term.keys(false, "Enter")
	scr := term.wait("Alice's answer delivered, live", "Hi Bob, Alice here", "✓✓ delivered")
	if !strings.Contains(bob.cli(t, "messages"), "Hi Bob, Alice here") {
		t.Fatal("Bob did not get Alice's answer")
	}

	// Bob writes while Alice looks: it shows up by itself, escapes defused.
	bob.cli(t, "send", "Alice", "live one \x1b]2;pwned\x07 and \x1b[2J\x1b[31mred")
	scr = term.wait("Bob's live message", "live one")
	if title := strings.TrimSpace(term.run("display-message", "-p", "-t", "chat", "#{pane_title}")); strings.Contains(title, "pwned") {
		t.Fatalf("a text set the terminal's title to %q", title)
	}
	if !strings.Contains(scr, `live one \x1b]2;pwned\x07 and \x1b[2J\x1b[31mred`) {
		t.Fatalf("the hostile text is not shown defused:\n%s", scr)
	}
	if !strings.Contains(scr, "Hi Bob, Alice here") {
		t.Fatalf("a text cleared the screen:\n%s", scr)
	}
	term.keys(false, "Escape")
	term.wait("back to the list", "Grapevine · Alice · chats", "Bob")
	term.keys(false, "C-c")
}
