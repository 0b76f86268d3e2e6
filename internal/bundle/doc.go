// Package bundle owns the sneakernet bundle file format: the framing that
// carries many sealed envelopes in one file, e.g. on a USB stick, between
// "grapevine export" and "grapevine import".
//
// The package treats envelopes as opaque byte strings of 1..MaxEnvelope
// bytes; it never parses, decrypts or authenticates them. What it owns is:
//
//   - the byte layout (header, length-prefixed CRC-32C-protected records,
//     end record; see SPEC.md §8);
//   - writing bundles, including the atomic file write used by export
//     (Create: temp file, fsync, link or rename, fsync directory; never over
//     anything but a regular file, and over that only if asked);
//   - reading bundles robustly: a truncated or partly corrupt bundle still
//     yields every intact envelope, resynchronising on the record sync
//     marker after damage, with a Report of what was skipped; a file that is
//     not a bundle is refused with ErrNotBundle. Reading streams with memory
//     bounded by MaxEnvelope plus a fixed buffer, and never panics on
//     hostile input.
//
// CRC-32C only detects accidental damage. It is not a security mechanism:
// envelopes carry their own authentication, and importers must treat every
// yielded envelope as untrusted input.
package bundle
