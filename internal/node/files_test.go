package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestBundleProgress: an export reports each envelope written and ends at
// what it wrote; an import reports each envelope read and ends at the
// file's size, with every envelope counted.
func TestBundleProgress(t *testing.T) {
	f := sendTestFile(t, 300_000, "progress")
	path := filepath.Join(t.TempDir(), "a.gvb")
	var out []Progress
	res, err := f.alice.ExportFile(context.Background(), path, ExportOptions{Progress: func(p Progress) { out = append(out, p) }})
	if err != nil {
		t.Fatal(err)
	}
	checkProgress(t, "export", out, res.Count)
	if last := out[len(out)-1]; last.TotalEnvelopes != res.Count {
		t.Errorf("export ends at %+v, wrote %d", last, res.Count)
	}
	var in []Progress
	if _, err := f.bob.ImportFileWith(context.Background(), path, ImportOptions{Progress: func(p Progress) { in = append(in, p) }}); err != nil {
		t.Fatal(err)
	}
	checkProgress(t, "import", in, res.Count)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if last := in[len(in)-1]; last.TotalBytes != fi.Size() || last.Bytes != fi.Size() {
		t.Errorf("import ends at %+v, the file is %d bytes", last, fi.Size())
	}
}

// checkProgress: one report per envelope and a final one, growing, never
// past the total, the last done at 100 %.
func checkProgress(t *testing.T, what string, ps []Progress, count int) {
	t.Helper()
	if len(ps) != count+1 {
		t.Fatalf("%s: %d reports for %d envelopes", what, len(ps), count)
	}
	for i, p := range ps[:count] {
		if p.Envelopes != i+1 || p.Done || p.Bytes > p.TotalBytes || i > 0 && p.Bytes <= ps[i-1].Bytes {
			t.Fatalf("%s: report %d is %+v after %+v", what, i, p, ps[max(i-1, 0)])
		}
	}
	if last := ps[count]; !last.Done || last.Envelopes != count || last.Bytes != last.TotalBytes {
		t.Fatalf("%s: the last report is %+v", what, last)
	}
}
