package app

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// events records an API object the proxier had to skip as a Warning event
// on that object, so `kubectl describe` shows why its rules are missing.
type events struct {
	recorder record.EventRecorder
}

func (e events) Problem(p state.Problem) {
	ref := &v1.ObjectReference{Namespace: p.Object.Namespace, Name: p.Object.Name, Kind: p.Kind}
	switch p.Kind {
	case "Service":
		ref.APIVersion = "v1"
	case "EndpointSlice":
		ref.APIVersion = "discovery.k8s.io/v1"
	}
	e.recorder.Eventf(ref, v1.EventTypeWarning, "ProxyRulesSkipped", "%s", p.Reason)
}
