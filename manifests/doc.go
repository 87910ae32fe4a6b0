// Package manifests holds the Kubernetes objects proxyproof deploys: the
// proxier DaemonSet with its RBAC and configuration (proxier/), embedded so
// providers apply exactly what this repository ships.
package manifests

import "embed"

// Proxier holds proxier/*.yaml.
//
//go:embed proxier/*.yaml
var Proxier embed.FS
