package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field. Field is the JSON path as a user
// writes it in the config file ("iptables.masqueradeBit"); it is empty when
// Message already names the field (unknown or duplicate fields). Flag names
// the command-line flag when the value came from there; Line is the line in
// the config file when known.
type FieldError struct {
	Field   string
	Flag    string
	Line    int
	Message string
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Flag != "" {
			fmt.Fprintf(&b, " (--%s)", e.Flag)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList aggregates every problem found so a user fixes them in one go
// instead of one restart per typo.
type ErrorList []FieldError

func (l ErrorList) Error() string {
	if len(l) == 1 {
		return l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(l))
	for _, e := range l {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// errOrNil keeps a nil ErrorList from turning into a non-nil error interface.
func (l ErrorList) errOrNil() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l *ErrorList) add(field, format string, args ...any) {
	*l = append(*l, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}
