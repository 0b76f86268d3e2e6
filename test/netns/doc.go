// Package netns tests Grapevine end to end: real `grapevine up` processes,
// each in a Linux network namespace of its own, joined by veth pairs, talking
// TCP links and multicast discovery beacons to each other, and driven from the
// test through each node's local API socket with the ordinary CLI commands
// (`status --json`, `contacts add`, `send`, `messages --json`, ...).
//
// What it checks, one test each:
//
//   - TestLine: a line A–B–C found by LAN discovery; A writes to C, who is
//     reached only through B; the message arrives, its receipt comes back,
//     and B's home holds neither the text nor the names of A and C.
//   - TestCarry: C is down when A writes; B carries the envelopes; A stops
//     cleanly; C comes up later, meets only B and receives everything; A,
//     back up, learns of the delivery through B.
//   - TestIslands: two islands, each with traffic of its own and mail for the
//     other, are joined by a link added at runtime (found by discovery); all
//     the mail arrives and the nodes converge on the same envelopes.
//   - TestKillMidSync: a node killed with SIGKILL in the middle of a large sync
//     (30,000 envelopes over a slowed link) restarts with everything it had
//     accepted and then completes the sync.
//   - TestHostile: a hostile neighbour sending garbage, unknown and oversized
//     frames, or nothing at all, is cut off and penalised, while legitimate
//     neighbours keep syncing through the same node.
//   - TestFlood: a neighbour flooding valid-looking envelopes fills only its
//     share of the relay quota; a legitimate neighbour's envelopes stay.
//   - TestGroupThroughRelay, TestGroupRemovedMemberOpensNothing,
//     TestGroupOfflineMemberConverges (groups_test.go): a private group of
//     four over A–B–C–D (and E on C), driven by the groups commands: every
//     post reaches every member through B, which is no member and opens
//     none; a removed member holds the later posts' envelopes and opens
//     none; a member down during two membership changes comes back on the
//     same member list.
//   - TestNearbyHopLimit, TestUnstampedSpamStopsAtTheFirstRelay
//     (channels_test.go): a Nearby post goes as far as its hop limit and no
//     further; public posts without a valid stamp from a hostile neighbour
//     are stored neither by the first relay nor beyond it, while honest
//     envelopes cross that relay.
//   - TestFileSurvivesAFlappingLink, TestFileFromTwoCarriers (files_test.go):
//     a 20 MB file from A to C over A–B–C whose B–C link goes down (its
//     connections destroyed, as a phone's OS does when its network goes) and
//     up three times mid-transfer arrives byte-identical, each chunk crossing
//     to C once; a file whose chunks two carriers hold half each completes
//     at C, which shows it came from two carriers.
//
// The namespaces (named gvt-XXXXXXXX) carry only IPv4 link-local addresses
// (169.254.0.0/16) and the kernel's IPv6 link-local ones, and are not
// connected to the host's network, so no traffic leaves them. Everything the
// tests create (namespaces, veth pairs, processes, homes) is removed when
// each test ends, whether it passed or not.
//
// The tests need root and iproute2 (`ip`, `tc` with the tbf qdisc, `ss` with -K); without them they are
// skipped, unless the environment variable CI is "true", where they fail
// instead so they cannot silently stop running. They build the grapevine
// binary once per run. Run them with:
//
//	sudo go test ./test/netns -v -count=1
//
// On failure, each node's log (its standard output and error) is printed.
package netns
