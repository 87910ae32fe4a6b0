// Package run loads a suite run directory (the layout is in package reports)
// into one model that the HTML, JUnit, bundle and compare outputs share. It
// reads everything before returning, so a bad file fails the load, not a
// half-written page.
package run
