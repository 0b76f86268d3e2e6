// Package negentropy owns set reconciliation between two Grapevine nodes:
// working out, in a few small messages, which envelopes each side holds that
// the other lacks, so that only those are transferred.
//
// It implements version 1 (0x61) of the Negentropy range-based set
// reconciliation protocol (https://github.com/hoytech/negentropy, file
// docs/negentropy-protocol-v1.md) byte for byte, so it interoperates with
// the reference implementations. The exact message layout, as Grapevine uses
// it, is in SPEC.md §11; test vectors are in testdata/vectors/negentropy.json.
//
// An item is an (expiry, envelope ID) pair: Item.Timestamp is the envelope's
// expiry in Unix seconds and Item.ID its 32-byte envelope ID. Each node puts
// the items it holds into a Storage, an immutable sorted vector with
// prefix sums kept per chunk, so that the fingerprint of any range costs
// O(log n) and one SHA-256, and finding a range's end O(log n).
//
// The package is sans-IO: it produces and consumes byte messages and leaves
// moving them to the caller. One node creates an Initiator and sends the
// message from Initiate; the other feeds each message it receives to a
// Responder and sends back the reply; the initiator feeds each reply to
// Reconcile, learning the IDs it has that the peer lacks (have) and the IDs
// the peer has that it lacks (need), and sends the next message until
// Reconcile reports done:
//
//	in, err := negentropy.NewInitiator(mine, 0)
//	msg, err := in.Initiate()
//	for {
//		reply := roundTrip(msg)                   // the peer runs Responder.Reconcile
//		next, have, need, done, err := in.Reconcile(reply)
//		// ... collect have and need ...
//		if done {
//			break
//		}
//		msg = next
//	}
//
// Every message a side sends stays within its frame size limit (0 for no
// limit, else at least MinFrameSizeLimit); ranges that do not fit are deferred
// to later rounds. Messages from the peer are treated as hostile: malformed
// input yields an error wrapping ErrMalformed that names the problem and its
// byte offset, and no length field is trusted before it is checked against
// the remaining input.
//
// How ranges are split (how many fingerprint buckets, when to send an ID
// list) is the sender's choice and never affects how a message is read. This
// package sends a first message of 14 buckets padded to 320 bytes, whatever
// the store holds; when a peer's fingerprint differs from ours it first
// checks whether the peer lacks exactly one of our items in the range, which
// settles most single differences without further splitting, and it
// estimates how dense the differences are from how many of the peer's
// ranges differ, going to ID lists early when they are dense: 100
// differences among 100,000 items cost about 15 KB in three round trips,
// where the reference implementation needs about 1 KB per difference
// (SPEC.md §11.7 has the table). A peer's message is read as any v1 peer may
// legally write it, including the reference implementations' deferral under
// a frame size limit (SPEC.md §11.5).
//
// Initiator and Responder are not safe for concurrent use; a Storage is
// immutable and may be shared by any number of them.
package negentropy
