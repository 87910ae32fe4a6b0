package gate

import (
	yaml "go.yaml.in/yaml/v3"
)

// tree is a parsed YAML (or JSON, which YAML reads) document kept only to
// say on which line something is: errors about a file name its line.
type tree struct{ root *yaml.Node }

func parseTree(data []byte) (*tree, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	return &tree{root: root}, nil
}

// line is the line of the value at path (map keys and list indexes), or of
// the deepest part of the path that exists.
func (t *tree) line(path ...any) int {
	n := t.root
	for _, p := range path {
		next := child(n, p)
		if next == nil {
			break
		}
		n = next
	}
	return n.Line
}

func child(n *yaml.Node, p any) *yaml.Node {
	switch k := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				return n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
			return n.Content[k]
		}
	}
	return nil
}

// keyLine is the line of the first map key named name anywhere, else 1.
func (t *tree) keyLine(name string) int {
	if n := findKey(t.root, name); n != nil {
		return n.Line
	}
	return 1
}

func findKey(n *yaml.Node, name string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if k := findKey(c, name); k != nil {
			return k
		}
	}
	return nil
}
