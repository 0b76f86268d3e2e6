package api

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// TestGroupEndpoints: Alice (behind the API) and Bob (in-process) make a
// group over bundle files; every group endpoint answers as the node does
// in-process, and refusals come back as the caller's errors with reasons.
func TestGroupEndpoints(t *testing.T) {
	f := newFixture(t)
	a, c := f.n, f.c
	dir := shortDir(t)
	bob := newNode(t, filepath.Join(dir, "bob"), "Bob")
	toBob := func() {
		t.Helper()
		p := filepath.Join(dir, "a.gvb")
		must(c.ExportFile(ctx, p, node.ExportOptions{Replace: true}))(t)
		must(bob.Import(p))(t)
	}
	fromBob := func() node.ImportReport {
		t.Helper()
		p := filepath.Join(dir, "b.gvb")
		must(bob.Export(p))(t)
		return must(c.ImportFile(ctx, p))(t)
	}
	must(c.AddContact(ctx, must(bob.Self())(t).Link, ""))(t)
	toBob()
	must(bob.Accept("Alice"))(t)
	fromBob()

	if gs := must(c.Groups(ctx))(t); gs == nil || len(gs) != 0 {
		t.Fatalf("Groups of a node in none = %#v, want empty", gs)
	}
	g := must(c.CreateGroup(ctx, "Well diggers"))(t)
	if g.Name != "Well diggers" || g.Epoch != 0 || !g.Admin || len(g.Members) != 1 || g.Members[0].Name != "me" {
		t.Fatalf("CreateGroup = %+v", g)
	}
	same(t, "Groups", must(c.Groups(ctx))(t), must(a.RoomConversations())(t))
	if err := c.InviteToGroup(ctx, "Well diggers", "Bob"); err != nil {
		t.Fatal(err)
	}
	toBob()
	if inv := must(bob.RoomInvitations())(t); len(inv) != 1 || inv[0].Name != "Well diggers" || inv[0].From != "Alice" {
		t.Fatalf("Bob's invitations: %+v", inv)
	}
	if inv := must(c.GroupInvitations(ctx))(t); len(inv) != 0 {
		t.Errorf("Alice lists her own invitation as received: %+v", inv)
	}
	if err := bob.JoinRoom("Well diggers"); err != nil {
		t.Fatal(err)
	}
	fromBob()
	got := must(c.Group(ctx, g.ID[:6]))(t)
	same(t, "Group", got, must(a.Room("Well diggers"))(t))
	if got.Epoch != 1 || len(got.Members) != 2 {
		t.Fatalf("Group after Bob joined = %+v", got)
	}
	toBob()
	must(bob.SendRoom("Well diggers", "found water at six metres"))(t)
	if rep := fromBob(); rep.Messages != 1 {
		t.Errorf("Alice's import of Bob's post: %+v", rep)
	}
	ms := must(c.GroupMessages(ctx, "Well diggers"))(t)
	same(t, "GroupMessages", ms, must(a.RoomMessages("Well diggers"))(t))
	if len(ms) != 1 || ms[0].Sender != "Bob" || ms[0].Text != "found water at six metres" || ms[0].Direction != "in" {
		t.Fatalf("GroupMessages = %+v", ms)
	}
	m := must(c.SendGroup(ctx, "Well diggers", "dig on"))(t)
	if m.Sender != "me" || m.Direction != "out" || m.Room != g.ID {
		t.Errorf("SendGroup = %+v", m)
	}
	gs := must(c.Groups(ctx))(t)
	same(t, "Groups", gs, must(a.RoomConversations())(t))
	if len(gs) != 1 || gs[0].Posts != 2 || gs[0].Last == nil || gs[0].Last.Text != "dig on" {
		t.Errorf("Groups after two posts = %+v", gs)
	}
	if err := c.RenameGroup(ctx, "Well diggers", "Well team"); err != nil {
		t.Fatal(err)
	}
	if err := c.MakeGroupAdmin(ctx, "Well team", "Bob"); err != nil {
		t.Fatal(err)
	}
	toBob()
	if r := must(bob.Room("Well team"))(t); r.Epoch != 3 || !r.Admin {
		t.Errorf("Bob's view after the rename and grant: %+v", r)
	}
	if ms := must(bob.RoomMessages("Well team"))(t); len(ms) != 2 || ms[1].Text != "dig on" || ms[1].Sender != "Alice" {
		t.Errorf("Bob reads %+v", ms)
	}

	// Refusals: the caller's doing, with reasons.
	refusals := []struct {
		name   string
		err    error
		status int
		reason string
		text   string
	}{
		{"unknown group", second(c.Group(ctx, "Nope")), 400, node.ReasonNoRoom, `no room "Nope"`},
		{"post to an unknown group", second(c.SendGroup(ctx, "Nope", "hi")), 400, node.ReasonNoRoom, `no room "Nope"`},
		{"invite a stranger", c.InviteToGroup(ctx, "Well team", "Zed"), 404, "", `no such contact: "Zed"`},
		{"invite a member", c.InviteToGroup(ctx, "Well team", "Bob"), 400, node.ReasonAlreadyContact, `Bob is already in "Well team"`},
		{"grant an admin", c.MakeGroupAdmin(ctx, "Well team", "Bob"), 400, node.ReasonAlreadyContact, "already an admin"},
		{"empty post", second(c.SendGroup(ctx, "Well team", " ")), 400, node.ReasonInvalidText, "empty"},
		{"bad name", c.RenameGroup(ctx, "Well team", "W\u202eell"), 400, node.ReasonInvalidName, "invalid name"},
		{"join without an invitation", c.JoinGroup(ctx, "Other"), 400, node.ReasonNoRoom, `no invitation to "Other"`},
		{"missing group", c.LeaveGroup(ctx, ""), 400, "", `missing "group"`},
		{"missing contact", c.RemoveFromGroup(ctx, "Well team", ""), 400, "", `missing "contact"`},
		{"missing name", second(c.CreateGroup(ctx, "")), 400, "", `missing "name"`},
	}
	for _, r := range refusals {
		var ae *Error
		if !errors.As(r.err, &ae) || ae.Status != r.status || ae.Reason != r.reason || !strings.Contains(ae.Error(), r.text) {
			t.Errorf("%s: %#v, want %d %q saying %q", r.name, r.err, r.status, r.reason, r.text)
		}
	}
	if err := c.RemoveFromGroup(ctx, "Well team", "Bob"); err != nil {
		t.Fatal(err)
	}
	if r := must(c.Group(ctx, "Well team"))(t); r.Epoch != 4 || len(r.Members) != 1 {
		t.Errorf("after the removal: %+v", r)
	}
	// Alone, Alice is the last admin: nobody can record her leave.
	err := c.LeaveGroup(ctx, "Well team")
	if ae := (*Error)(nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Reason != node.ReasonNotAdmin {
		t.Errorf("the last admin leaving: %#v", err)
	}
}

// TestRoomRefusalsAreTheCallersDoing: what the group's rules refuse (here an
// admin removing the creator, who outranks it) answers 400 with the rules'
// reason, not 500.
func TestRoomRefusalsAreTheCallersDoing(t *testing.T) {
	f := newFixture(t)
	c := f.c
	dir := shortDir(t)
	carol := newNode(t, filepath.Join(dir, "carol"), "Carol")
	// Carol creates a group, invites Alice (behind the API) and makes her an
	// admin: Alice, of a later rank, cannot remove Carol.
	p := filepath.Join(dir, "x.gvb")
	move := func(from func(string) error, to func(string) error) {
		t.Helper()
		if err := from(p); err != nil {
			t.Fatal(err)
		}
		if err := to(p); err != nil {
			t.Fatal(err)
		}
	}
	exportC := func(p string) error { _, err := carol.Export(p); return err }
	importC := func(p string) error { _, err := carol.Import(p); return err }
	exportA := func(p string) error {
		_, err := c.ExportFile(ctx, p, node.ExportOptions{Replace: true})
		return err
	}
	importA := func(p string) error { _, err := c.ImportFile(ctx, p); return err }
	must(carol.AddContact(must(c.Self(ctx))(t).Link, ""))(t)
	move(exportC, importA)
	must(c.Accept(ctx, "Carol"))(t)
	move(exportA, importC)
	must(carol.CreateRoom("Clinic"))(t)
	if err := carol.InviteToRoom("Clinic", "Alice"); err != nil {
		t.Fatal(err)
	}
	move(exportC, importA)
	if err := c.JoinGroup(ctx, "Clinic"); err != nil {
		t.Fatal(err)
	}
	move(exportA, importC)
	if err := carol.MakeRoomAdmin("Clinic", "Alice"); err != nil {
		t.Fatal(err)
	}
	move(exportC, importA)
	if g := must(c.Group(ctx, "Clinic"))(t); !g.Admin || g.Epoch != 2 {
		t.Fatalf("Alice's view: %+v", g)
	}
	err := c.RemoveFromGroup(ctx, "Clinic", "Carol")
	if ae := (*Error)(nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Error(), "removes only admins of a later rank") {
		t.Errorf("an admin removing the creator: %#v", err)
	}
	if g := must(c.Group(ctx, "Clinic"))(t); g.Epoch != 2 || len(g.Members) != 2 {
		t.Errorf("the refused removal moved the group: %+v", g)
	}
}
