// Package attach owns the attachment and chunk formats, their encryption, and
// reassembly (SPEC §16).
//
// A file travels as a manifest, carried inside an ordinary (already sealed)
// message, and as chunk envelopes (envelope.KindChunk) that relays carry and
// reconcile like any other envelope. The file is encrypted under its own
// random 32-byte key; every chunk envelope is exactly envelope.ChunkSize
// bytes, the last one padded, so relays learn how many chunks a file has and
// nothing finer. A chunk's tag and receipt commitment are PRF outputs of the
// file key and the chunk's index: a relay cannot tell which chunks belong to
// one file, and the recipient computes every tag it expects from the
// manifest.
//
// Every chunk carries, inside its ciphertext, its path in a Merkle tree over
// the file's chunks, whose root is in the manifest: a chunk is checked on
// arrival, from any source and in any order, against the manifest alone —
// also against someone who holds the file key (every member of a room, or
// anyone the manifest was shown to), which the AEAD alone would not catch.
//
// Sender: Prepare, then File.Seal for each chunk. Recipient: ParseManifest,
// NewAssembler over a Storage (NewMemStorage, NewFileStorage), Assembler.Add
// for each chunk as it comes, Assembler.Sync to make progress durable, and
// Assembler.Finish to verify the whole file and put it in place.
package attach
