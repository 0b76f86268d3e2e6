package room

// Index finds the room an envelope belongs to by one map lookup of its tag,
// however many rooms a node has joined (SPEC §15.6): the union of every
// room's expected tags. Update a room's entries after anything changes
// what it expects (an envelope opened, an epoch gained or dropped).
type Index struct {
	tags   map[[16]byte]*Room
	byRoom map[*Room][][16]byte
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{tags: map[[16]byte]*Room{}, byRoom: map[*Room][][16]byte{}}
}

// Update replaces r's tags with those it expects now.
func (x *Index) Update(r *Room) {
	for _, t := range x.byRoom[r] {
		if x.tags[t] == r {
			delete(x.tags, t)
		}
	}
	ts := r.Expected()
	for _, t := range ts {
		x.tags[t] = r
	}
	x.byRoom[r] = ts
}

// Remove forgets r.
func (x *Index) Remove(r *Room) {
	for _, t := range x.byRoom[r] {
		if x.tags[t] == r {
			delete(x.tags, t)
		}
	}
	delete(x.byRoom, r)
}

// Lookup returns the room that expects tag.
func (x *Index) Lookup(tag [16]byte) (*Room, bool) {
	r, ok := x.tags[tag]
	return r, ok
}

// Len is the number of tags indexed.
func (x *Index) Len() int { return len(x.tags) }
