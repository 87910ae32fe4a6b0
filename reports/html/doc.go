// Package html renders a loaded run (and a compare of two) as one
// self-contained HTML page: inline CSS and SVG, no script, no font and no
// URL fetched from anywhere, so it opens offline from a file or a CI
// artifact. It renders the whole page into memory first and never writes
// half a page.
package html
