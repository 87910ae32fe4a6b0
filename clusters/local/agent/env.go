package agent

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// containerEnv is a container's environment: a PATH, the downward-API
// basics every netserver-like program wants (POD_NAME, POD_NAMESPACE,
// POD_IP, NODE_NAME), then the container's own env in order, $(VAR)
// references expanded against what came before. valueFrom supports the
// fieldRef paths a pod can know here; other sources read as empty.
func (a *Agent) containerEnv(pod *corev1.Pod, c *corev1.Container, ip netip.Addr) (map[string]string, []string) {
	env := map[string]string{
		"PATH":          "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME":      pod.Name,
		"POD_NAME":      pod.Name,
		"POD_NAMESPACE": pod.Namespace,
		"POD_IP":        ip.String(),
		"NODE_NAME":     a.cfg.NodeName,
	}
	fields := map[string]string{
		"metadata.name":           pod.Name,
		"metadata.namespace":      pod.Namespace,
		"metadata.uid":            string(pod.UID),
		"spec.nodeName":           a.cfg.NodeName,
		"spec.serviceAccountName": pod.Spec.ServiceAccountName,
		"status.podIP":            ip.String(),
		"status.podIPs":           ip.String(),
		"status.hostIP":           a.cfg.NodeIP,
		"status.hostIPs":          a.cfg.NodeIP,
	}
	for _, e := range c.Env {
		v := expand(e.Value, env)
		if e.ValueFrom != nil {
			v = ""
			if f := e.ValueFrom.FieldRef; f != nil {
				v = fields[f.FieldPath]
				if key, ok := labelRef(f.FieldPath, "metadata.labels['"); ok {
					v = pod.Labels[key]
				} else if key, ok := labelRef(f.FieldPath, "metadata.annotations['"); ok {
					v = pod.Annotations[key]
				}
			}
		}
		env[e.Name] = v
	}
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return env, list
}

func labelRef(path, prefix string) (string, bool) {
	if len(path) > len(prefix)+2 && path[:len(prefix)] == prefix && path[len(path)-2:] == "']" {
		return path[len(prefix) : len(path)-2], true
	}
	return "", false
}
