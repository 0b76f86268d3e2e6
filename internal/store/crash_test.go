package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// op is one write of a crash-test transaction.
type op struct {
	coll, key, value string // value "" means delete
	exp              time.Time
}

// crashStep is one transaction of the crash tests, or a Sweep after
// advancing the clock.
type crashStep struct {
	name    string
	ops     []op
	advance time.Duration // then Sweep instead of ops
}

var crashT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func crashSteps() []crashStep {
	put := func(coll, key, value string) op { return op{coll, key, value, Forever} }
	del := func(coll, key string) op { return op{coll: coll, key: key} }
	var many, churn []op
	for i := range 200 {
		many = append(many, op{"prekeys", fmt.Sprint("p", i), fmt.Sprint("prekey ", i), crashT0.Add(24 * time.Hour)})
	}
	for i := range 5 {
		churn = append(churn, op{"prekeys", fmt.Sprint("p", i), "replaced", crashT0.Add(24 * time.Hour)}, del("prekeys", fmt.Sprint("p", 100+i)))
	}
	return []crashStep{
		{name: "new keys only", ops: []op{put("contacts", "a", "a0"), put("contacts", "b", "b0"), put("contacts", "c", "c0"), put("envelopes", "e", "e0")}},
		{name: "replaced keys only", ops: []op{put("contacts", "a", "a1")}},
		{name: "dropped keys only", ops: []op{del("contacts", "b")}},
		{name: "new, replaced and dropped", ops: []op{put("contacts", "a", "a2"), put("contacts", "d", "d0"), del("contacts", "c"), put("envelopes", "e", "e1"), put("contacts", "b", "b1")}},
		{name: "replaced twice, then deleted and put again", ops: []op{put("contacts", "a", "a3"), put("contacts", "a", "a4"), del("contacts", "d"), put("contacts", "d", "d1")}},
		{name: "the key file grows", ops: many},
		{name: "after growing", ops: churn},
		{name: "sweep drops keys", advance: 3 * 24 * time.Hour},
	}
}

// model is what the store should hold: coll/key -> value.
type model map[string]string

func (m model) apply(st crashStep) model {
	out := maps.Clone(m)
	for _, o := range st.ops {
		if o.value == "" {
			delete(out, o.coll+"/"+o.key)
		} else {
			out[o.coll+"/"+o.key] = o.value
		}
	}
	return out
}

func runStep(s *Store, st crashStep, clock *fakeClock) error {
	if st.advance > 0 {
		clock.Advance(st.advance)
		_, err := s.Sweep()
		return err
	}
	return s.Update(func(tx *Tx) error {
		for _, o := range st.ops {
			var err error
			if o.value == "" {
				err = tx.Delete(o.coll, []byte(o.key))
			} else {
				err = tx.Put(o.coll, []byte(o.key), []byte(o.value), o.exp)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// universe lists every coll/key the steps use.
func universe() []string {
	seen := map[string]bool{}
	for _, st := range crashSteps() {
		for _, o := range st.ops {
			seen[o.coll+"/"+o.key] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// contents reads every key of the universe (expired items read as absent).
func contents(t *testing.T, s *Store) model {
	t.Helper()
	m := model{}
	for _, ck := range universe() {
		coll, key, _ := strings.Cut(ck, "/")
		if v, ok := getString(t, s, coll, key); ok {
			m[ck] = v
		}
	}
	return m
}

// live drops from m what has expired at now (the prekeys of the steps).
func (m model) live(now time.Time) model {
	out := maps.Clone(m)
	if now.After(crashT0.Add(24 * time.Hour)) {
		for k := range out {
			if strings.HasPrefix(k, "prekeys/") {
				delete(out, k)
			}
		}
	}
	return out
}

// checkKeyHygiene checks that the key file's newest slot holds exactly the
// key of every erasable item the database holds, and the other slot no key
// but those (it may lack new ones: keys are added to one slot only).
func checkKeyHygiene(t *testing.T, s *Store, dir string) {
	t.Helper()
	want := map[hkey]bool{}
	if err := s.db.view(func(tx kvTx) error {
		c := tx.Bucket(bucketItems).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			for name, cd := range s.dir.colls {
				if _, ok := cd[hkey(k)]; ok && (name == "contacts" || name == "prekeys") {
					want[hkey(k)] = true
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFileName)); err != nil || fi.Size() != int64(2*s.kf.lay.size) {
		t.Fatalf("key file of %v bytes (%v), want two %d-byte slots and nothing more", fi.Size(), err, s.kf.lay.size)
	}
	tabs := keyFileTables(t, s, dir)
	if len(tabs) != 2 {
		t.Fatalf("%d slots verify after Open, want 2", len(tabs))
	}
	if !maps.Equal(tabs[0], s.keys) || len(tabs[0]) != len(want) {
		t.Fatalf("newest slot holds %d keys, store %d, erasable items %d", len(tabs[0]), len(s.keys), len(want))
	}
	for hk, k := range tabs[1] {
		if cur, ok := s.keys[hk]; !ok || cur != k || !want[hk] {
			t.Fatalf("the other slot holds a key for %x that is not the key of an erasable item", hk)
		}
	}
}

// snapshotter copies the home at every step of the key file protocol, and
// for every slot write also two torn versions of it (the first or the
// second half reached the disk, the rest did not).
type snapshotter struct {
	t    *testing.T
	dir  string
	snap []snapshot
	step int // the crash step in progress
}

type snapshot struct {
	dir, what string
	step      int
}

func (sn *snapshotter) take(what string, torn func(path string)) {
	cp := copyHome(sn.t, sn.dir)
	if torn != nil {
		torn(filepath.Join(cp, KeyFileName))
	}
	sn.snap = append(sn.snap, snapshot{cp, what, sn.step})
}

func (sn *snapshotter) hook(st keyFileStep) error {
	sn.take(st.op, nil)
	if st.op == "write" {
		half := len(st.buf) / 2
		for i, part := range [][2]int{{0, half}, {half, len(st.buf)}} {
			sn.take(fmt.Sprintf("write, torn %d", i), func(path string) {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					sn.t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt(st.buf[part[0]:part[1]], st.off+int64(part[0])); err != nil {
					sn.t.Fatal(err)
				}
			})
		}
	}
	return nil
}

// TestCrashAtEveryStep takes a copy of the home before every write and
// fsync of the key file, torn copies of every slot write, and one just
// before each database commit, as a crash would leave it; every copy must
// open with everything committed before the transaction, or everything
// after it, and Open must leave a key file that holds no key but those of
// the erasable items the database holds.
func TestCrashAtEveryStep(t *testing.T) {
	clock := &fakeClock{t: crashT0}
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(clock))
	defer s.Close()
	sn := &snapshotter{t: t, dir: dir}
	s.kf.hook = sn.hook
	s.commitHook = func() { sn.take("commit", nil) }
	steps := crashSteps()
	models := []model{{}}
	for i, st := range steps {
		sn.step = i
		sn.take("before", nil)
		if err := runStep(s, st, clock); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		models = append(models, models[i].apply(st))
		sn.take("after", nil)
	}
	s.kf.hook, s.commitHook = nil, nil
	if got := len(sn.snap); got < 60 {
		t.Fatalf("only %d snapshots", got)
	}
	for _, snp := range sn.snap {
		t.Run(fmt.Sprintf("%s/%s", steps[snp.step].name, snp.what), func(t *testing.T) {
			s, err := Open(snp.dir, testPass, erasableOpts(clock))
			if err != nil {
				t.Fatalf("a crash here leaves a home that does not open: %v", err)
			}
			defer s.Close()
			now := clock.Now()
			got := contents(t, s)
			before, after := models[snp.step].live(now), models[snp.step+1].live(now)
			if !maps.Equal(got, before) && !maps.Equal(got, after) {
				t.Fatalf("state is neither before nor after the step:\n got %v\nbefore %v\n after %v", got, before, after)
			}
			checkKeyHygiene(t, s, snp.dir)
		})
	}
}

// TestCrashDuringPassphraseChange: a copy taken at any step of a
// passphrase change opens with exactly one of the two passphrases, with
// everything in it, and once opened holds no trace of the other.
func TestCrashDuringPassphraseChange(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(nil))
	defer s.Close()
	mustUpdate(t, s, func(tx *Tx) error { return tx.Put("contacts", []byte("a"), []byte("a0"), Forever) })
	sn := &snapshotter{t: t, dir: dir}
	s.kf.hook = sn.hook
	newPass := []byte("a new passphrase")
	if err := s.ChangePassphrase(newPass, TestKDF()); err != nil {
		t.Fatal(err)
	}
	sn.take("after", nil)
	s.kf.hook = nil
	if len(sn.snap) < 8 {
		t.Fatalf("only %d snapshots", len(sn.snap))
	}
	for _, snp := range sn.snap {
		t.Run(snp.what, func(t *testing.T) {
			var opened []string
			for _, pass := range [][]byte{testPass, newPass} {
				s, err := Open(snp.dir, pass, erasableOpts(nil))
				if errors.Is(err, ErrWrongPassphrase) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				opened = append(opened, string(pass))
				if v, ok := getString(t, s, "contacts", "a"); !ok || v != "a0" {
					t.Fatalf("a = %q %v", v, ok)
				}
				checkKeyHygiene(t, s, snp.dir)
				s.Close()
				// Open rewrote both slots: the other passphrase is gone.
				for _, other := range [][]byte{testPass, newPass} {
					if !bytes.Equal(other, pass) {
						if _, err := Open(snp.dir, other, erasableOpts(nil)); !errors.Is(err, ErrWrongPassphrase) {
							t.Fatalf("after Open with %q, %q gives %v", pass, other, err)
						}
					}
				}
			}
			if len(opened) != 1 {
				t.Fatalf("opened with %q", opened)
			}
		})
	}
}

// TestKeyFileWriteFailures makes each key file write or fsync of each
// transaction fail in turn: the transaction is either rolled back (a
// failure before the database commit) or committed with an error saying
// the replaced keys are not yet erased, and the store then keeps working,
// rewriting the key file first.
func TestKeyFileWriteFailures(t *testing.T) {
	errInjected := errors.New("injected failure")
	steps := crashSteps()
	for i, st := range steps {
		for fail := 0; ; fail++ {
			clock := &fakeClock{t: crashT0}
			dir := t.TempDir()
			s := mustCreate(t, dir, erasableOpts(clock))
			m := model{}
			for _, prev := range steps[:i] {
				if err := runStep(s, prev, clock); err != nil {
					t.Fatal(err)
				}
				m = m.apply(prev)
			}
			n, committed := 0, false
			s.commitHook = func() { committed = true }
			s.kf.hook = func(keyFileStep) error {
				n++
				if n == fail+1 {
					return errInjected
				}
				return nil
			}
			err := runStep(s, st, clock)
			s.kf.hook, s.commitHook = nil, nil
			if n <= fail {
				// No step left to fail.
				s.Close()
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				break
			}
			if !errors.Is(err, errInjected) {
				t.Fatalf("%s, failing step %d: err %v", st.name, fail, err)
			}
			if committed {
				m = m.apply(st)
			}
			if got := contents(t, s); !maps.Equal(got, m.live(clock.Now())) {
				t.Fatalf("%s, failing step %d (committed %v): %v, want %v", st.name, fail, committed, got, m)
			}
			// The next transaction rewrites the key file first.
			mustUpdate(t, s, func(tx *Tx) error { return tx.Put("envelopes", []byte("next"), []byte("x"), Forever) })
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, dir, erasableOpts(clock))
			if got := contents(t, s); !maps.Equal(got, m.live(clock.Now())) {
				t.Fatalf("%s, failing step %d, reopened: %v, want %v", st.name, fail, got, m)
			}
			if v, ok := getString(t, s, "envelopes", "next"); !ok || v != "x" {
				t.Fatalf("%s, failing step %d: the next transaction was lost", st.name, fail)
			}
			checkKeyHygiene(t, s, dir)
			s.Close()
		}
	}
}

// killChildEnv names the home a child process of TestKillDuringWrites
// writes to until it is killed.
const killChildEnv = "GRAPEVINE_STORE_KILL_CHILD"

// killChild writes transactions until it is killed: transaction i sets
// contacts/counter and envelopes/counter to i, adds contacts/n<i> and
// deletes contacts/n<i-3> (a replaced, a new and a dropped key), and
// prints i once Update has returned. It starts after the counter it finds.
func killChild(dir string) {
	s, err := Open(dir, testPass, erasableOpts(nil))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var start int
	if err := s.View(func(tx *Tx) error {
		v, _, _, err := tx.Get("contacts", []byte("counter"))
		start, _ = strconv.Atoi(string(v))
		return err
	}); err != nil {
		fmt.Println("read:", err)
		os.Exit(2)
	}
	for i := start + 1; ; i++ {
		err := s.Update(func(tx *Tx) error {
			v := []byte(fmt.Sprint(i))
			return errorsJoin(
				tx.Put("contacts", []byte("counter"), v, Forever),
				tx.Put("envelopes", []byte("counter"), v, Forever),
				tx.Put("contacts", []byte(fmt.Sprint("n", i)), v, Forever),
				tx.Delete("contacts", []byte(fmt.Sprint("n", i-3))),
			)
		})
		if err != nil {
			fmt.Println("update:", err)
			os.Exit(2)
		}
		fmt.Println(i)
	}
}

// TestKillDuringWrites kills (SIGKILL) a process in the middle of a stream
// of transactions that replace, add and drop erasable keys, at a few
// points, and checks the home opens with a whole transaction's state, at
// least as new as the last one reported committed, and a clean key file.
func TestKillDuringWrites(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	s := mustCreate(t, dir, erasableOpts(nil))
	s.Close()
	last := 0
	// Kill after so many reported transactions, and then after a pause,
	// to land in different steps of the next one.
	for round, kill := range []struct {
		after int
		pause time.Duration
	}{{3, 0}, {17, time.Millisecond}, {40, 0}, {10, 3 * time.Millisecond}, {25, 500 * time.Microsecond}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringWrites$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for n := 0; n < kill.after && sc.Scan(); n++ {
			i, err := strconv.Atoi(sc.Text())
			if err != nil {
				cmd.Process.Kill()
				t.Fatalf("child: %s", sc.Text())
			}
			last = i
		}
		time.Sleep(kill.pause)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		s := mustOpen(t, dir, erasableOpts(nil))
		c, ok := getString(t, s, "contacts", "counter")
		e, _ := getString(t, s, "envelopes", "counter")
		n, err := strconv.Atoi(c)
		if !ok || err != nil || c != e || n < last {
			t.Fatalf("round %d: counter %q/%q after %d reported committed", round, c, e, last)
		}
		for j := max(1, n-5); j <= n; j++ {
			_, has := getString(t, s, "contacts", fmt.Sprint("n", j))
			if want := j > n-3; has != want {
				t.Fatalf("round %d at %d: n%d present %v", round, n, j, has)
			}
		}
		checkKeyHygiene(t, s, dir)
		if got := len(s.keys); got != 4 { // counter and the last three n<i>
			t.Fatalf("round %d: %d item keys, want 4", round, got)
		}
		s.Close()
		t.Logf("round %d: killed after %d reported, found %d", round, last, n)
		// The next child's transactions continue from n.
		last = n
	}
}
