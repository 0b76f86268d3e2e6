package release

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMinisignInterop checks files made by minisign 0.11 (testdata/mini.*:
// `minisign -G -W`, then `minisign -S -t ...` and `minisign -Sl`): its
// signatures verify here, and signing the same file with its key and the same
// trusted comment gives minisign's signature byte for byte (Ed25519 is
// deterministic).
func TestMinisignInterop(t *testing.T) {
	pub, err := ParsePublicKey(readFile(t, "mini.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID.String() != "5E7E9539155AD1B8" {
		t.Errorf("key id %s, want minisign's 5E7E9539155AD1B8", pub.ID)
	}
	msg := readFile(t, "mini.txt")
	for _, sigFile := range []string{"mini.txt.minisig", "mini.txt.legacy.minisig"} {
		if _, err := Verify(pub, bytes.NewReader(msg), readFile(t, sigFile)); err != nil {
			t.Errorf("%s: %v", sigFile, err)
		}
	}
	trusted, _ := Verify(pub, bytes.NewReader(msg), readFile(t, "mini.txt.minisig"))
	if trusted != "timestamp:1700000000\tfile:mini.txt\thashed" {
		t.Errorf("trusted comment %q", trusted)
	}

	sk, err := ParsePrivateKey(readFile(t, "mini.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sk.Public().ID != pub.ID || !sk.Public().Key.Equal(pub.Key) {
		t.Fatal("the secret key's public half is not mini.pub")
	}
	ours, err := Sign(sk, bytes.NewReader(msg), trusted)
	if err != nil {
		t.Fatal(err)
	}
	theirs := readFile(t, "mini.txt.minisig")
	if a, b := nonEmptyLines(ours)[1:], nonEmptyLines(theirs)[1:]; strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("our signature\n%s\nminisign's\n%s", a, b)
	}
	pubText, _ := pub.MarshalText()
	if !bytes.Equal(pubText, readFile(t, "mini.pub")) {
		t.Errorf("public key written as\n%s\nminisign wrote\n%s", pubText, readFile(t, "mini.pub"))
	}
}

func TestSignVerify(t *testing.T) {
	sk, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKey(nil)
	msg := bytes.Repeat([]byte("grapevine binary "), 1000)
	sig, err := Sign(sk, bytes.NewReader(msg), "timestamp:1\tfile:grapevine\tversion:v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Verify(sk.Public(), bytes.NewReader(msg), sig); err != nil || got != "timestamp:1\tfile:grapevine\tversion:v1.0.0" {
		t.Fatalf("Verify of an intact file = %q, %v", got, err)
	}

	// Every single-byte change to the file is refused.
	for _, i := range []int{0, 1, len(msg) / 2, len(msg) - 1} {
		bad := bytes.Clone(msg)
		bad[i] ^= 1
		if _, err := Verify(sk.Public(), bytes.NewReader(bad), sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("byte %d flipped: %v, want ErrBadSignature", i, err)
		}
	}
	if _, err := Verify(sk.Public(), bytes.NewReader(append(bytes.Clone(msg), 0)), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a byte appended: %v", err)
	}
	if _, err := Verify(sk.Public(), bytes.NewReader(msg[:len(msg)-1]), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a byte cut: %v", err)
	}
	// Another key's signature, or an edited trusted comment, is refused.
	if _, err := Verify(other.Public(), bytes.NewReader(msg), sig); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), sk.ID.String()) {
		t.Errorf("another key: %v", err)
	}
	forged := PublicKey{ID: sk.ID, Key: other.Public().Key} // same id, other key
	if _, err := Verify(forged, bytes.NewReader(msg), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("key with the same id: %v", err)
	}
	edited := bytes.Replace(sig, []byte("version:v1.0.0"), []byte("version:v9.9.9"), 1)
	if _, err := Verify(sk.Public(), bytes.NewReader(msg), edited); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "trusted comment") {
		t.Errorf("edited trusted comment: %v", err)
	}
	// A signature that is not one is a format error, not a mismatch.
	for _, junk := range [][]byte{nil, []byte("hello"), sig[:len(sig)/2], bytes.Replace(sig, []byte("R"), []byte("!"), 1)} {
		if _, err := Verify(sk.Public(), bytes.NewReader(msg), junk); err == nil || errors.Is(err, ErrBadSignature) {
			t.Errorf("junk signature %q: %v", junk, err)
		}
	}
	if _, err := Sign(sk, bytes.NewReader(msg), "two\nlines"); err == nil {
		t.Error("a two-line trusted comment was accepted")
	}
}

// TestVerifyComment: without the file, a signature by the key with its
// trusted comment intact is told from one by another key (or one whose ID
// was rewritten to the key's), an edited comment or an edited file
// signature; the file itself is vouched for only by Verify.
func TestVerifyComment(t *testing.T) {
	sk, _ := GenerateKey(nil)
	other, _ := GenerateKey(nil)
	const tc = "timestamp:1\tfile:grapevine\tversion:v1.0.0"
	sig, err := Sign(sk, strings.NewReader("the binary"), tc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifyComment(sk.Public(), sig); err != nil || got != tc {
		t.Fatalf("VerifyComment = %q, %v", got, err)
	}
	byOther, _ := Sign(other, strings.NewReader("the binary"), tc)
	lines := strings.Split(string(byOther), "\n")
	raw, _ := base64.StdEncoding.DecodeString(lines[1])
	copy(raw[2:10], sk.ID[:]) // claims to be by sk
	lines[1] = base64.StdEncoding.EncodeToString(raw)
	edited := bytes.Replace(sig, []byte("v1.0.0"), []byte("v9.9.9"), 1)
	lines2 := strings.Split(string(sig), "\n")
	raw2, _ := base64.StdEncoding.DecodeString(lines2[1])
	raw2[20] ^= 1 // the file's signature: the global signature covers it
	lines2[1] = base64.StdEncoding.EncodeToString(raw2)
	for name, bad := range map[string][]byte{"another key": byOther, "another key, rewritten ID": []byte(strings.Join(lines, "\n")),
		"edited comment": edited, "edited file signature": []byte(strings.Join(lines2, "\n"))} {
		if _, err := VerifyComment(sk.Public(), bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := VerifyComment(sk.Public(), []byte("junk")); err == nil || errors.Is(err, ErrBadSignature) {
		t.Errorf("junk: %v", err)
	}
}

func TestPrivateKeyFile(t *testing.T) {
	sk, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	small := KDFLimits{Ops: 1 << 15, Mem: 1 << 20} // fast, for the test only
	enc, err := MarshalPrivateKey(sk, []byte("offline"), small)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(enc, []byte("untrusted comment: minisign encrypted secret key\n")) {
		t.Errorf("encrypted key file starts %q", enc[:40])
	}
	got, err := ParsePrivateKey(enc, func() ([]byte, error) { return []byte("offline"), nil })
	if err != nil || !got.Key.Equal(sk.Key) || got.ID != sk.ID {
		t.Fatalf("ParsePrivateKey = %v, %v", got.ID, err)
	}
	if _, err := ParsePrivateKey(enc, func() ([]byte, error) { return []byte("online"), nil }); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := ParsePrivateKey(enc, nil); err == nil {
		t.Error("an encrypted key opened without a passphrase")
	}
	plain, _ := MarshalPrivateKey(sk, nil, KDFLimits{})
	if got, err := ParsePrivateKey(plain, nil); err != nil || !got.Key.Equal(sk.Key) {
		t.Errorf("unencrypted key: %v", err)
	}
	// minisign's own parameters: N = 2^20, r = 8, p = 1 (1 GiB).
	if n, r, p := scryptParams(KDFSensitive()); n != 1<<20 || r != 8 || p != 1 {
		t.Errorf("scrypt parameters for minisign's limits: N=%d r=%d p=%d", n, r, p)
	}
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(readFileF(f, "mini.pub"))
	f.Add([]byte("RWS40VoVOZV+XlVtM0y/BcA1Z6hzVBtgPOdiaUPfE6VNyIvVr05QMKsc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		text, _ := k.MarshalText()
		if k2, err := ParsePublicKey(text); err != nil || k2.ID != k.ID || !k2.Key.Equal(k.Key) {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Add(readFileF(f, "mini.key"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePrivateKey(b, func() ([]byte, error) { return []byte("x"), nil })
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(readFileF(f, "mini.txt.minisig"))
	f.Add(readFileF(f, "mini.txt.legacy.minisig"))
	pub, err := ParsePublicKey(readFileF(f, "mini.pub"))
	if err != nil {
		f.Fatal(err)
	}
	msg := readFileF(f, "mini.txt")
	f.Fuzz(func(t *testing.T, sig []byte) {
		trusted, err := Verify(pub, bytes.NewReader(msg), sig)
		if err == nil && !bytes.Contains(sig, []byte(trusted)) {
			t.Fatalf("accepted with a trusted comment %q that is not in it", trusted)
		}
		comment, cerr := VerifyComment(pub, sig)
		if err == nil && (cerr != nil || comment != trusted) {
			t.Fatalf("Verify accepted what VerifyComment refuses: %v", cerr)
		}
	})
}

func readFileF(f *testing.F, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}
