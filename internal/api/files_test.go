package api

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// TestFileEndpoints: a file sent through the API crosses to Bob in a bundle;
// Alice lists it; Bob's node, behind the API, lists it complete and saves it;
// saving over a file or an unknown message fails with its reason.
func TestFileEndpoints(t *testing.T) {
	dir := shortDir(t)
	home := filepath.Join(dir, "a")
	alice, bob := newNode(t, home, "Alice"), newNode(t, filepath.Join(dir, "b"), "Bob")
	c := served(t, bob, filepath.Join(dir, "b"))
	befriendDirect(t, dir, alice, bob)

	data := bytes.Repeat([]byte("a file through the API "), 5000)
	src := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sent := must(Local{alice}.SendFile(ctx, "Bob", src, node.SendFileOptions{Caption: "notes"}))(t)
	if sent.Attachment == nil || sent.Attachment.MediaType != "text/plain" || sent.Attachment.Chunks != 4 {
		t.Fatalf("SendFile = %+v", sent.Attachment)
	}
	must(alice.Export(filepath.Join(dir, "f.gvb")))(t)
	must(c.ImportFile(ctx, filepath.Join(dir, "f.gvb")))(t)

	files := must(c.Attachments(ctx, "Alice"))(t)
	if len(files) != 1 || files[0].ID != sent.ID || !files[0].Attachment.Complete || files[0].Text != "notes" {
		t.Fatalf("Attachments = %+v", files)
	}
	same(t, "Attachments", files, must(Local{bob}.Attachments(ctx, "Alice"))(t))
	dest := filepath.Join(dir, "saved.txt")
	if a := must(c.SaveAttachment(ctx, sent.ID, dest))(t); a.Name != "notes.txt" || a.Size != int64(len(data)) {
		t.Errorf("SaveAttachment = %+v", a)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Errorf("saved %d bytes, sent %d", len(got), len(data))
	}
	var ae *Error
	if _, err := c.SaveAttachment(ctx, sent.ID, dest); !errors.As(err, &ae) || ae.Reason != node.ReasonDestinationExists {
		t.Errorf("saving over a file: %v", err)
	}
	if _, err := c.SaveAttachment(ctx, "0123", filepath.Join(dir, "x")); !errors.As(err, &ae) || ae.Reason != node.ReasonNoAttachment {
		t.Errorf("saving an unknown message: %v", err)
	}
	if _, err := c.SendFile(ctx, "Alice", filepath.Join(dir, "missing"), node.SendFileOptions{}); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("sending a missing file: %v", err)
	}
	if _, err := c.SendGroupFile(ctx, "Nope", src, node.SendFileOptions{}); !errors.As(err, &ae) || ae.Reason != node.ReasonNoRoom {
		t.Errorf("sending a file to no group: %v", err)
	}
	if _, err := bob.CreateRoom("Team"); err != nil {
		t.Fatal(err)
	}
	post := must(c.SendGroupFile(ctx, "Team", src, node.SendFileOptions{Caption: "all"}))(t)
	if post.Attachment == nil || post.Attachment.Chunks != 4 || post.Text != "all" || post.Sender != "me" {
		t.Errorf("SendGroupFile = %+v", post)
	}
}

// befriendDirect makes a and b contacts through bundle files.
func befriendDirect(t *testing.T, dir string, a, b *node.Node) {
	t.Helper()
	must(a.AddContact(must(b.Self())(t).Link, ""))(t)
	must(a.Export(filepath.Join(dir, "req.gvb")))(t)
	must(b.Import(filepath.Join(dir, "req.gvb")))(t)
	must(b.Accept("Alice"))(t)
	must(b.Export(filepath.Join(dir, "ans.gvb")))(t)
	must(a.Import(filepath.Join(dir, "ans.gvb")))(t)
}
