package node

import (
	"errors"
	"testing"
)

// TestRenameToTheSameNameIsRefused: renaming a group to the name it has
// would make a new epoch and welcome every member for nothing (and a page
// that sent the old name back by mistake would look like it renamed).
func TestRenameToTheSameNameIsRefused(t *testing.T) {
	alice := newTestNode(t, "Alice", newTestClock())
	info, err := alice.CreateRoom("Night shift")
	if err != nil {
		t.Fatal(err)
	}
	var ie *Error
	if err := alice.RenameRoom(info.ID, "Night shift"); !errors.As(err, &ie) || ie.Reason != ReasonInvalidName {
		t.Fatalf("renaming to the same name: %v", err)
	}
	if err := alice.RenameRoom(info.ID, "Day shift"); err != nil {
		t.Fatal(err)
	}
	if r, _ := alice.Room(info.ID); r.Name != "Day shift" || r.Epoch != 1 {
		t.Fatalf("after one refused and one real rename: %+v", r)
	}
}
