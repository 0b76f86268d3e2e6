package store

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RepairReport is what Repair did.
type RepairReport struct {
	CheckReport
	// Kept are the damaged files, renamed (the database) or copied (the key
	// file, which still opens it): grapevine.db.damaged-TIME and
	// grapevine.key.damaged-TIME in the home. Wipe removes them.
	KeptDB, KeptKey string
}

// repairBatch is how many items go into one transaction of the new database.
const repairBatch = 10000

// Repair saves every item of the store in dir that authenticates into a new
// database, and keeps the damaged one: it reads the store as Check does
// (walking the tree with bounds checks, or, if the tree is damaged,
// searching every page not known to be free), writes the items that open
// under their keys into a new database with a fresh meta record and expiry
// index, renames the damaged database to grapevine.db.damaged-TIME, copies
// the key file beside it as grapevine.key.damaged-TIME (so that the pair
// still opens), and puts the new database in its place. The key file itself
// is kept: the next Open drops the keys of items that were lost.
//
// What cannot be saved: items on damaged pages, and everything if the key
// file has no intact slot (restore it from a backup). When the tree could not
// be walked and an item is found in two intact versions (an old one on a
// page freed since), the one with the later clear expiry is taken; the
// report counts these.
func Repair(dir string, passphrase []byte, now time.Time) (*RepairReport, error) {
	cr, sv, err := salvage(dir, passphrase, true)
	rep := &RepairReport{}
	if cr != nil {
		rep.CheckReport = *cr
	}
	if err != nil {
		return rep, err
	}
	// The old database stays locked while the new one is written; it is
	// let go before the files are renamed (Windows renames no open file).
	unlock := func() {
		if sv.lock != nil {
			sv.lock.Close()
			sv.lock = nil
		}
	}
	defer unlock()
	dbPath := filepath.Join(dir, FileName)
	tmp := filepath.Join(dir, "."+FileName+".repair")
	os.Remove(tmp)
	if err := writeRepaired(tmp, sv); err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("failed to write the repaired database: %w", err)
	}
	unlock()
	stamp := now.UTC().Format("20060102-150405")
	rep.KeptDB = dbPath + ".damaged-" + stamp
	rep.KeptKey = filepath.Join(dir, KeyFileName+".damaged-"+stamp)
	if err := copyFile(filepath.Join(dir, KeyFileName), rep.KeptKey); err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("failed to keep a copy of the key file: %w", err)
	}
	if _, err := os.Stat(dbPath); err == nil {
		if err := os.Rename(dbPath, rep.KeptDB); err != nil {
			os.Remove(tmp)
			return rep, fmt.Errorf("failed to keep the damaged database: %w", err)
		}
	} else {
		rep.KeptDB = ""
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return rep, fmt.Errorf("failed to put the repaired database in place (the damaged one is %s): %w", rep.KeptDB, err)
	}
	return rep, syncDir(dir)
}

// writeRepaired writes a new database at path holding the salvaged items.
func writeRepaired(path string, sv *salvaged) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	hks := make([]hkey, 0, len(sv.items))
	for hk := range sv.items {
		hks = append(hks, hk)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := mb.Put([]byte(metaKey), append([]byte(storeMagic), sv.id[:]...)); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte(bucketItems)); err != nil {
			return err
		}
		_, err = tx.CreateBucket([]byte(bucketExpiry))
		return err
	})
	for start := 0; err == nil && start < len(hks); start += repairBatch {
		batch := hks[start:min(start+repairBatch, len(hks))]
		err = db.Update(func(tx *bolt.Tx) error {
			items, exp := tx.Bucket([]byte(bucketItems)), tx.Bucket([]byte(bucketExpiry))
			for _, hk := range batch {
				v := sv.items[hk]
				coarse, _ := storedCoarse(v)
				if err := (*boltItems)(items).Put(bytes16(hk), v); err != nil { // large values in buckets of their own
					return err
				}
				if err := exp.Put(indexKey(coarse, hk[:]), nil); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func bytes16(hk hkey) []byte { return append([]byte(nil), hk[:]...) }

// copyFile copies src to a new file dst (0600) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
