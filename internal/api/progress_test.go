package api

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// TestStreamedProgress: export and import through the API, asked for
// their progress, report it as the node makes it — rising, at most once per
// whole percent, ending Done with the totals — and answer what the plain
// requests answer; an export refused once started (the file exists) is
// refused as the plain request is.
func TestStreamedProgress(t *testing.T) {
	dir := shortDir(t)
	alice, bob := newNode(t, filepath.Join(dir, "a"), "Alice"), newNode(t, filepath.Join(dir, "b"), "Bob")
	c := served(t, alice, filepath.Join(dir, "a"))
	befriendDirect(t, dir, alice, bob)
	data := make([]byte, 2<<20)
	rand.Read(data)
	src := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sent := must(Local{alice}.SendFile(ctx, "Bob", src, node.SendFileOptions{}))(t)

	var steps []node.Progress
	record := func(p node.Progress) { steps = append(steps, p) }
	check := func(what string, envelopes int) {
		t.Helper()
		if len(steps) == 0 {
			t.Fatalf("%s: no progress", what)
		}
		last := steps[len(steps)-1]
		if len(steps) < 50 || len(steps) > 102 || !last.Done || last.Envelopes != envelopes || last.Bytes != last.TotalBytes {
			t.Fatalf("%s: %d progress events, the last %+v (want 50 to 102, Done with %d envelopes)", what, len(steps), last, envelopes)
		}
		for i := 1; i < len(steps); i++ {
			a, b := steps[i-1], steps[i]
			if b.Envelopes < a.Envelopes || b.Bytes < a.Bytes || (b.Percent() == a.Percent() && !b.Done) {
				t.Fatalf("%s: progress %+v after %+v", what, b, a)
			}
		}
	}

	path := filepath.Join(dir, "out.gvb")
	res := must(c.ExportFile(ctx, path, node.ExportOptions{Progress: record}))(t)
	if res.Count < sent.Attachment.Chunks {
		t.Fatalf("exported %d envelopes, the file alone has %d chunks", res.Count, sent.Attachment.Chunks)
	}
	check("export", res.Count)
	plain := must(os.ReadFile(path))(t)

	steps = nil
	if _, err := c.ExportFile(ctx, path, node.ExportOptions{Progress: record}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a streamed export over a file: %v", err)
	}
	nowhere := filepath.Join(dir, "no", "such", "x.gvb")
	_, streamErr := c.ExportFile(ctx, nowhere, node.ExportOptions{Progress: record})
	_, plainErr := c.ExportFile(ctx, nowhere, node.ExportOptions{})
	var se, pe *Error
	if !errors.As(streamErr, &se) || !errors.As(plainErr, &pe) || *se != *pe || se.Status != 400 {
		t.Fatalf("an export into no directory: streamed %#v, plain %#v", streamErr, plainErr)
	}
	if again := must(os.ReadFile(path))(t); !bytes.Equal(again, plain) {
		t.Fatal("a refused export changed the file")
	}

	// Into a third node, behind the same API shape.
	carol := newNode(t, filepath.Join(dir, "c"), "Carol")
	cc := served(t, carol, filepath.Join(dir, "c"))
	steps = nil
	rep := must(cc.ImportFileWith(ctx, path, node.ImportOptions{Progress: record}))(t)
	if rep.Received != res.Count || !rep.Complete {
		t.Fatalf("import report %+v, %d exported", rep, res.Count)
	}
	check("import", res.Count)
}
