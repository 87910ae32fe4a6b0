package iptables

import "bytes"

// lines accumulates iptables-restore input one line at a time and counts
// the lines, like upstream's LineBuffer. Words are joined by single spaces.
type lines struct {
	buf bytes.Buffer
	n   int
}

// write appends one line made of words; a word may also be a []string.
func (l *lines) write(words ...any) {
	first := true
	for _, w := range words {
		switch v := w.(type) {
		case string:
			l.word(v, &first)
		case []string:
			for _, s := range v {
				l.word(s, &first)
			}
		}
	}
	l.buf.WriteByte('\n')
	l.n++
}

func (l *lines) word(s string, first *bool) {
	if !*first {
		l.buf.WriteByte(' ')
	}
	*first = false
	l.buf.WriteString(s)
}

// chain writes a chain declaration, which creates or flushes the chain.
func (l *lines) chain(name string) {
	l.buf.WriteByte(':')
	l.buf.WriteString(name)
	l.buf.WriteString(" - [0:0]\n")
	l.n++
}

func (l *lines) reset() {
	l.buf.Reset()
	l.n = 0
}

func (l *lines) appendTo(o *lines) {
	o.buf.Write(l.buf.Bytes())
	o.n += l.n
}
