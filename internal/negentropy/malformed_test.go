package negentropy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// malformed are messages that break the protocol, with the error they give.
var malformed = []struct {
	name, msg, err string
}{
	{"empty", "", "negentropy: empty message at offset 0"},
	{"truncated bound timestamp", "61 81", "negentropy: truncated varint (bound timestamp) at offset 1"},
	{"non-minimal varint", "61 8001 00 00", "negentropy: non-minimal varint (bound timestamp) at offset 1"},
	{"varint over 64 bits", "61 82808080808080808000 00 00", "negentropy: varint overflows 64 bits (bound timestamp) at offset 1"},
	{"timestamp overflow", "61 81ffffffffffffffff7f 00 00 03 00 00", "negentropy: bound timestamp overflows 64 bits at offset 13"},
	{"truncated prefix length", "61 05", "negentropy: truncated varint (bound id prefix length) at offset 2"},
	{"prefix too long", "61 05 21" + strings.Repeat("00", 33) + " 00", "negentropy: bound id prefix of 33 bytes is longer than 32 at offset 2"},
	{"truncated prefix", "61 05 03 aabb", "negentropy: truncated bound id prefix: 3 bytes needed, 2 left at offset 3"},
	{"truncated mode", "61 00 00", "negentropy: truncated varint (mode) at offset 3"},
	{"unknown mode", "61 00 00 03", "negentropy: unknown mode 3 at offset 3"},
	{"huge mode", "61 00 00 81ffffffffffffffff7f", "negentropy: unknown mode 18446744073709551615 at offset 3"},
	{"truncated fingerprint", "61 00 00 01 00112233", "negentropy: truncated fingerprint: 16 bytes needed, 4 left at offset 4"},
	{"truncated id list length", "61 00 00 02", "negentropy: truncated varint (id list length) at offset 4"},
	{"id list longer than message", "61 00 00 02 02" + strings.Repeat("ee", 40), "negentropy: id list of 2 ids is longer than the 40 bytes left at offset 4"},
	{"huge id list", "61 00 00 02 81ffffffffffffffff7f", "negentropy: id list of 18446744073709551615 ids is longer than the 0 bytes left at offset 4"},
	{"bound out of order", "61 06 01 10 00  01 01 05 00", "negentropy: bound out of order at offset 5"},
	// Ranges after the infinity bound are legal (a frame-limited peer's
	// deferral may follow one) but hold no item: one that claims any is
	// malformed.
	{"fingerprint after infinity", "61 00 00 00  00 00 01" + strings.Repeat("00", 16), "negentropy: fingerprint of items after the infinity bound at offset 4"},
	{"id list after infinity", "61 00 00 00  00 00 02 01" + strings.Repeat("ee", 32), "negentropy: id list of 1 ids after the infinity bound at offset 7"},
	{"id list above infinity", "61 00 01 01 00  00 01 02 02 01" + strings.Repeat("ee", 32), "negentropy: id list of 1 ids after the infinity bound at offset 9"},
}

func TestMalformed(t *testing.T) {
	st, err := NewStorage(gen(newRand(7), 50, func(i int) uint64 { return uint64(i) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range malformed {
		msg := unhex(t, tc.msg)
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := NewResponder(st, 0)
			reply, err := resp.Reconcile(msg)
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrMalformed) {
				t.Errorf("responder: %x, %v\nwant error %q", reply, err, tc.err)
			}
			in, _ := NewInitiator(st, 0)
			if _, err := in.Initiate(); err != nil {
				t.Fatal(err)
			}
			next, _, _, _, err := in.Reconcile(msg)
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrMalformed) {
				t.Errorf("initiator: %x, %v\nwant error %q", next, err, tc.err)
			}
		})
	}
}

var zeros31 = strings.Repeat("00", 31)

// TestWellFormedEdges checks messages that look odd but follow the protocol.
func TestWellFormedEdges(t *testing.T) {
	st, err := NewStorage([]Item{{Timestamp: 5, ID: [32]byte{0x10}}, {Timestamp: 5, ID: [32]byte{0x20}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, msg, reply string }{
		{"no ranges", "61", "61"},
		{"only a skip", "61 00 00 00", "61"},
		{"empty range (equal bounds)", "61 06 01 10 00  01 01 10 00  00 00 02 00",
			"61 06 01 10 00  00 00 02 02 10" + zeros31 + "20" + zeros31},
		{"zero-padded prefix", "61 06 02 2000 00  00 00 02 00", "61 06 02 2000 00  00 00 02 01 20" + zeros31},
		{"duplicate ids in a list", "61 00 00 02 02 10" + zeros31 + "10" + zeros31, "61 06 01 20 00  00 00 02 01 20" + zeros31},
		// What a frame-limited v1 responder sends when an IdList up to
		// infinity took it over its limit: its deferral, a Fingerprint of
		// its items past infinity (none) up to infinity.
		{"empty fingerprint after infinity", "61 00 00 02 00  00 00 01 7f9c9e31ac8256ca2f258583df262dbc",
			"61 00 00 02 02 10" + zeros31 + "20" + zeros31},
		{"skip and empty id list after infinity", "61 00 00 00  00 00 00  00 00 02 00", "61"},
		{"bound above infinity", "61 00 01 01 00  00 01 02 01 7f9c9e31ac8256ca2f258583df262dbc", "61"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := NewResponder(st, 0)
			reply, err := resp.Reconcile(unhex(t, tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.reply); !bytes.Equal(reply, want) {
				t.Errorf("reply %x, want %x", reply, want)
			}
		})
	}
}
