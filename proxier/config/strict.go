package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// scanYAML parses data (YAML or JSON, which is YAML) into a node tree to
// report syntax errors and duplicate fields with their line, and returns
// the line of every field path for later messages.
func scanYAML(data []byte) (map[string]int, ErrorList, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	lines := map[string]int{}
	var errs ErrorList
	var walk func(n *yamlv3.Node, path string)
	walk = func(n *yamlv3.Node, path string) {
		switch n.Kind {
		case yamlv3.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yamlv3.MappingNode:
			first := map[string]int{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				if line, dup := first[k.Value]; dup {
					msg := fmt.Sprintf("duplicate field %q (first set on line %d); keep one", p, line)
					if line == k.Line {
						msg = fmt.Sprintf("duplicate field %q; keep one", p)
					}
					errs = append(errs, FieldError{Line: k.Line, Message: msg})
					continue
				}
				first[k.Value] = k.Line
				lines[p] = k.Line
				walk(v, p)
			}
		case yamlv3.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				lines[p] = c.Line
				walk(c, p)
			}
		}
	}
	walk(&doc, "")
	return lines, errs, nil
}

var (
	configType   = reflect.TypeFor[v1alpha1.KubeProxyConfiguration]()
	durationType = reflect.TypeFor[metav1.Duration]()
	unmarshaler  = reflect.TypeFor[json.Unmarshaler]()
)

// checkFields walks the decoded document against the v1alpha1 Go type and
// reports every unknown field (with a did-you-mean) and every value of the
// wrong type, each with its path, instead of stopping at the first.
func checkFields(top map[string]any, lines map[string]int) ErrorList {
	w := &fieldWalker{lines: lines}
	w.value("", configType, top)
	// Report in file order, the order a user fixes them in.
	slices.SortStableFunc(w.errs, func(a, b FieldError) int { return a.Line - b.Line })
	return w.errs
}

type fieldWalker struct {
	lines map[string]int
	errs  ErrorList
}

func (w *fieldWalker) fail(path, format string, args ...any) {
	w.errs = append(w.errs, FieldError{Field: path, Line: w.lines[path], Message: fmt.Sprintf(format, args...)})
}

func (w *fieldWalker) value(path string, t reflect.Type, v any) {
	if v == nil { // null leaves the field at its zero value, as encoding/json does
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		s, ok := v.(string)
		if _, err := time.ParseDuration(s); !ok || err != nil {
			w.fail(path, `%s is not a duration; use e.g. "30s", "5m" or "1h30m"`, quote(v))
		}
		return
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		// A type with its own JSON form (quantities, logging durations):
		// let it judge its value, and name the field when it refuses.
		raw, _ := json.Marshal(v)
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			w.fail(path, "%s is not valid here: %v", quote(v), err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			w.fail(path, "%s is %s; must be a mapping of fields", quote(v), describe(v))
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			p := joinPath(path, k)
			ft, ok := fields[k]
			if !ok {
				w.errs = append(w.errs, FieldError{Line: w.lines[p], Message: unknownField(p, k, fields)})
				continue
			}
			w.value(p, ft, m[k])
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			w.fail(path, "%s is %s; must be a mapping", quote(v), describe(v))
			return
		}
		for _, k := range sortedKeys(m) {
			w.value(joinPath(path, k), t.Elem(), m[k])
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			w.fail(path, "%s is %s; must be a list", quote(v), describe(v))
			return
		}
		for i, e := range l {
			w.value(fmt.Sprintf("%s[%d]", path, i), t.Elem(), e)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			w.fail(path, "%s is %s; must be a string (quote it)", quote(v), describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.fail(path, "%s is %s; must be true or false", quote(v), describe(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			w.fail(path, "%s is %s; must be an integer", quote(v), describe(v))
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			w.fail(path, "%s is not an integer that fits in %s", n, t.Kind())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			w.fail(path, "%s is %s; must be a non-negative integer", quote(v), describe(v))
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			w.fail(path, "%s is not a non-negative integer that fits in %s", n, t.Kind())
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			w.fail(path, "%s is %s; must be a number", quote(v), describe(v))
			return
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			w.fail(path, "%s is not a number that fits in %s", n, t.Kind())
		}
	}
}

// jsonFields maps the JSON names of t's fields to their types, promoting
// embedded (",inline") structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// unknownField says which field is unknown and guesses what was meant:
// first a near spelling among its siblings, else the same name elsewhere
// in the schema (a top-level "syncPeriod" belongs under a mode).
func unknownField(path, key string, siblings map[string]reflect.Type) string {
	msg := fmt.Sprintf("unknown field %q", path)
	if s := closest(key, slices.Collect(maps.Keys(siblings))); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	var elsewhere []string
	collectPaths("", configType, func(p, name string) {
		if strings.EqualFold(name, key) && p != path {
			elsewhere = append(elsewhere, strconv.Quote(p))
		}
	})
	switch len(elsewhere) {
	case 0:
		return msg
	case 1:
		return msg + fmt.Sprintf("; did you mean %s?", elsewhere[0])
	default:
		return msg + fmt.Sprintf("; did you mean one of %s?", strings.Join(elsewhere, ", "))
	}
}

// collectPaths calls fn for every struct field path under t.
func collectPaths(path string, t reflect.Type, fn func(path, name string)) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType {
		return
	}
	fields := jsonFields(t)
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		p := joinPath(path, name)
		fn(p, name)
		collectPaths(p, fields[name], fn)
	}
}

// closest returns the candidate nearest to key when it is near enough to be
// a typo (case-insensitive edit distance of at most a third of the length,
// and at least 2), else "".
func closest(key string, candidates []string) string {
	best, bestDist := "", -1
	limit := max(2, len(key)/3)
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		d := editDistance(strings.ToLower(key), strings.ToLower(c))
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// describe names the JSON kind of a decoded value for messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// quote renders a decoded value the way a user would write it.
func quote(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprint(v)
}
