package main

import "github.com/grapevine-mesh/grapevine/internal/termtext"

// safe renders text that someone else chose (a contact's name, a peer's
// address, a path given on the command line, a node's error) for one line
// of the terminal: see termtext.Line.
func safe(s string) string { return termtext.Line(s) }
