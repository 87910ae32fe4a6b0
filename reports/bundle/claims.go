package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/reports/run"
)

// productDoc is PRODUCT.yaml as written: the vendor's fields and what
// the run recorded.
type productDoc struct {
	ProductInfo `json:",inline"`
	Tested      struct {
		Run               string   `json:"run"`
		Suite             string   `json:"suite"`
		KubernetesVersion string   `json:"kubernetes_version"`
		Proxier           string   `json:"proxier"`
		Provider          string   `json:"provider"`
		Kernel            string   `json:"kernel"`
		Conformance       string   `json:"conformance"`
		Modes             []string `json:"modes"`
		Verdicts          []string `json:"verdicts"`
	} `json:"tested"`
}

// checkClaims checks versions.json, then PRODUCT.yaml, against run.json
// (the census the runner recorded) and the report's verdicts.
func checkClaims(files map[string][]byte, v Verified) (Verified, error) {
	var meta run.Meta
	dec := json.NewDecoder(bytes.NewReader(files[run.MetaFile]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil {
		return v, &Mismatch{run.MetaFile, fmt.Sprintf("not run.json: %v", err)}
	}
	var claimed Versions
	dec = json.NewDecoder(bytes.NewReader(files[VersionsFile]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&claimed); err != nil {
		return v, &Mismatch{VersionsFile, fmt.Sprintf("not a versions record: %v", err)}
	}
	if err := versionsMatch(claimed, meta); err != nil {
		return v, err
	}
	var p productDoc
	if err := yaml.UnmarshalStrict(files[ProductFile], &p); err != nil {
		return v, &Mismatch{ProductFile, fmt.Sprintf("not PRODUCT.yaml: %v", err)}
	}
	report, err := reportShows(files[run.ReportFile])
	if err != nil {
		return v, &Mismatch{run.ReportFile, err.Error()}
	}
	if err := productMatches(p, claimed, meta, report); err != nil {
		return v, err
	}
	for _, m := range claimed.Modes {
		v.Modes = append(v.Modes, m.Name)
	}
	v.Conformance = claimed.Conformance
	return v, nil
}

// differ is a claim that is not what run.json recorded.
func differ(file, what, claim, recorded string) error {
	return &Mismatch{file, fmt.Sprintf("claims %s %q, run.json records %q", what, claim, recorded)}
}

func versionsMatch(c Versions, m run.Meta) error {
	for _, f := range [][3]string{
		{"suite", c.Suite, m.Suite}, {"provider", c.Provider, m.Provider},
		{"kubernetes", c.Kubernetes, m.KubernetesVersion}, {"proxier name", c.Proxier.Name, m.Proxier.Name},
		{"proxier version", c.Proxier.Version, m.Proxier.Version}, {"runnerKernel", c.RunnerKernel, m.Kernel},
	} {
		if f[1] != f[2] {
			return differ(VersionsFile, f[0], f[1], f[2])
		}
	}
	if len(c.Modes) != len(m.Modes) {
		return differ(VersionsFile, "modes", modeNames(c.Modes), metaModes(m))
	}
	for i, cm := range c.Modes {
		rm := m.Modes[i]
		if cm.Name != rm.Name {
			return differ(VersionsFile, "modes", modeNames(c.Modes), metaModes(m))
		}
		var nodes []string
		for _, n := range cm.Nodes {
			nodes = append(nodes, n.Name)
			if err := nodeMatches(cm.Name, n, nodeVersions(rm, n.Name)); err != nil {
				return err
			}
		}
		if want := nodeNames(rm); !slices.Equal(slices.Sorted(slices.Values(nodes)), want) {
			return differ(VersionsFile, "mode "+cm.Name+": nodes", strings.Join(nodes, ","), strings.Join(want, ","))
		}
	}
	return nil
}

// nodeMatches checks one node's claims against what run.json recorded:
// the mode it was made to run and its mode census.
func nodeMatches(mode string, claim, recorded NodeVersions) error {
	for _, f := range [][3]string{
		{"runs", claim.Mode, recorded.Mode}, {"kernel", claim.Kernel, recorded.Kernel},
		{"declared mode", claim.Declared, recorded.Declared}, {"carried mode", claim.Carried, recorded.Carried},
		{"leftovers", strings.Join(claim.Leftovers, ","), strings.Join(recorded.Leftovers, ",")},
	} {
		if f[1] != f[2] {
			return differ(VersionsFile, fmt.Sprintf("mode %s: node %s %s", mode, claim.Name, f[0]), f[1], f[2])
		}
	}
	return nil
}

func modeNames(ms []ModeVersions) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return strings.Join(out, ",")
}

func metaModes(m run.Meta) string {
	var out []string
	for _, mm := range m.Modes {
		out = append(out, mm.Name)
	}
	return strings.Join(out, ",")
}

// productMatches checks PRODUCT.yaml's recorded part against run.json
// and versions.json, its verdicts against the report's, and, in a
// certification bundle, that the vendor's required fields are there.
func productMatches(p productDoc, c Versions, m run.Meta, report *shown) error {
	t := p.Tested
	for _, f := range [][3]string{
		{"tested.run", t.Run, m.Name}, {"tested.suite", t.Suite, m.Suite},
		{"tested.kubernetes_version", t.KubernetesVersion, m.KubernetesVersion},
		{"tested.proxier", t.Proxier, strings.TrimSpace(m.Proxier.Name + " " + m.Proxier.Version)},
		{"tested.provider", t.Provider, m.Provider}, {"tested.kernel", t.Kernel, m.Kernel},
		{"tested.modes", strings.Join(t.Modes, ","), metaModes(m)},
	} {
		if f[1] != f[2] {
			return differ(ProductFile, f[0], f[1], f[2])
		}
	}
	if t.Conformance != c.Conformance {
		return &Mismatch{ProductFile, fmt.Sprintf("claims tested.conformance %q, versions.json says %q", t.Conformance, c.Conformance)}
	}
	if len(t.Verdicts) != len(t.Modes) {
		return &Mismatch{ProductFile, fmt.Sprintf("%d verdicts for %d modes", len(t.Verdicts), len(t.Modes))}
	}
	for i, mode := range t.Modes {
		if got := report.verdicts[mode]; got != t.Verdicts[i] {
			return &Mismatch{ProductFile, fmt.Sprintf("claims verdict %q, report.html says %q", t.Verdicts[i], got)}
		}
	}
	if strings.HasPrefix(c.Conformance, notCertification) {
		return nil // make report's bundle: a template to fill in
	}
	if err := p.ProductInfo.Check(); err != nil {
		return &Mismatch{ProductFile, strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	return nil
}
