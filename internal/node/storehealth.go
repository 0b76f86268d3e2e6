package node

// StoreWarnings says what the store found wrong when it was opened that did
// not stop it (store.Store.Warnings).
func (n *Node) StoreWarnings() []string { return n.st.Warnings() }

// CheckStore reports an error wrapping store.ErrFilesGone if the store's
// files were deleted or replaced while the node runs: what it writes from
// then on would be lost.
func (n *Node) CheckStore() error { return n.st.CheckFiles() }
