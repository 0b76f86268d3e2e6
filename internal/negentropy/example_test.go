package negentropy_test

import (
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/grapevine-mesh/grapevine/internal/negentropy"
)

// Two nodes hold 1,000 envelopes in common; Alice alone holds envelope 1000
// and Bob alone 1001. Alice initiates; Bob responds. The byte messages would
// travel over the link between them.
func Example() {
	item := func(i int) negentropy.Item {
		return negentropy.Item{
			Timestamp: 1_800_000_000 + uint64(i%300), // expiry
			ID:        sha256.Sum256(fmt.Appendf(nil, "envelope %d", i)),
		}
	}
	var alice, bob []negentropy.Item
	for i := range 1000 {
		alice, bob = append(alice, item(i)), append(bob, item(i))
	}
	alice, bob = append(alice, item(1000)), append(bob, item(1001))

	aliceStore, err := negentropy.NewStorage(alice)
	if err != nil {
		log.Fatal(err)
	}
	bobStore, err := negentropy.NewStorage(bob)
	if err != nil {
		log.Fatal(err)
	}
	in, err := negentropy.NewInitiator(aliceStore, 0)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := negentropy.NewResponder(bobStore, 0)
	if err != nil {
		log.Fatal(err)
	}

	msg, err := in.Initiate()
	if err != nil {
		log.Fatal(err)
	}
	var have, need [][negentropy.IDSize]byte
	for {
		reply, err := resp.Reconcile(msg) // on Bob's node
		if err != nil {
			log.Fatal(err)
		}
		next, h, n, done, err := in.Reconcile(reply) // back on Alice's node
		if err != nil {
			log.Fatal(err)
		}
		have, need = append(have, h...), append(need, n...)
		if done {
			break
		}
		msg = next
	}
	fmt.Println(len(have), "to send, envelope 1000:", len(have) == 1 && have[0] == item(1000).ID)
	fmt.Println(len(need), "to fetch, envelope 1001:", len(need) == 1 && need[0] == item(1001).ID)
	// Output:
	// 1 to send, envelope 1000: true
	// 1 to fetch, envelope 1001: true
}
