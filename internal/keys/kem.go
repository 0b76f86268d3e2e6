package keys

import (
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"fmt"
	"io"
)

// encapsulateFrom is ML-KEM-768's derandomised encapsulation with 32 bytes
// from r (FIPS 203 ML-KEM.Encaps_internal): the same computation as the
// standard library's Encapsulate, with the randomness made injectable for
// replayable simulations and test vectors. Production code reaches it only
// when the node was given a reader other than crypto/rand's.
func encapsulateFrom(ek *mlkem.EncapsulationKey768, r io.Reader) (kss, ct []byte, err error) {
	var m [32]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		return nil, nil, fmt.Errorf("failed to draw ML-KEM randomness: %w", err)
	}
	return mlkemtest.Encapsulate768(ek, m[:])
}
