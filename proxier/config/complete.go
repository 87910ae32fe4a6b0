package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// osHostname is os.Hostname; tests replace it.
var osHostname = os.Hostname

// Complete resolves the command line into the Config the daemon runs from:
// load the file (decoded strictly and defaulted) or take the flags over the
// defaults, apply the precedence documented on Options, validate everything
// at once, apply the platform defaults and parse. It returns an error
// rather than a partly usable Config.
func (o *Options) Complete() (*Config, error) {
	if o.fs == nil {
		return nil, errors.New("config: Options.AddFlags was not called before Complete")
	}
	var obj *v1alpha1.KubeProxyConfiguration
	if o.ConfigFile != "" {
		var err error
		if obj, err = Load(o.ConfigFile); err != nil {
			return nil, err
		}
		if ignored := o.ignoredFlags(); len(ignored) > 0 {
			klog.InfoS("Flags ignored because --config is set; put these settings in the config file instead", "flags", ignored, "config", o.ConfigFile)
		}
	} else {
		obj = o.fromFlags()
	}
	if err := o.applyLoggingPrecedence(obj); err != nil {
		return nil, err
	}
	if o.fs.Changed("hostname-override") {
		// Upstream: the flag wins over the file; blank is an error, not
		// "unset".
		h := strings.TrimSpace(o.hostnameOverride)
		if h == "" {
			return nil, errors.New("--hostname-override: empty hostname-override is invalid; omit the flag to use the host name")
		}
		obj.HostnameOverride = strings.ToLower(h)
	}

	if err := Validate(obj); err != nil {
		var errs ErrorList
		if errors.As(err, &errs) && o.ConfigFile == "" {
			o.annotate(errs, obj.Mode)
		}
		if o.ConfigFile != "" {
			return nil, fmt.Errorf("config file %s: invalid: %w", o.ConfigFile, err)
		}
		return nil, fmt.Errorf("invalid flags: %w", err)
	}
	if len(obj.FeatureGates) > 0 {
		// Upstream's gates switch kube-proxy code we do not have; say so
		// rather than pretend they took effect.
		klog.InfoS("Warning: featureGates are not used by this proxier and are ignored", "featureGates", obj.FeatureGates)
	}
	applyPlatformDefaults(obj)
	obj.APIVersion, obj.Kind = APIVersion, Kind
	if obj.DetectLocalMode == LocalModeClusterCIDR && strings.TrimSpace(obj.ClusterCIDR) == "" {
		// Upstream accepts this and only logs; say plainly what it costs.
		klog.InfoS("Warning: detect-local-mode is ClusterCIDR but no cluster CIDR is set (clusterCIDR / --cluster-cidr): pod traffic cannot be told from outside traffic, so nothing is treated as local")
	}

	cfg, err := parse(obj)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.NodeName, err = nodeName(cfg.HostnameOverride); err != nil {
		return nil, err
	}
	cfg.ClientConnection.Master = o.Master
	cfg.Cleanup = o.Cleanup
	cfg.WriteConfigTo = o.WriteConfigTo
	cfg.NetNS = o.NetNS
	if err := o.completeExtensions(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// nodeName is upstream's nodeutil.GetHostname: the override, else the
// host name, trimmed and lower-cased.
func nodeName(override string) (string, error) {
	name := override
	if name == "" {
		h, err := osHostname()
		if err != nil {
			return "", fmt.Errorf("node name: couldn't determine hostname: %w", err)
		}
		name = h
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errors.New("node name: empty hostname is invalid; set --hostname-override or hostnameOverride")
	}
	return strings.ToLower(name), nil
}

// applyLoggingPrecedence mirrors upstream's copyLogsFromFlags: -v and
// --vmodule on the command line win over logging.* in the file; otherwise
// the file's values are applied to klog. The object then shows what is in
// force.
func (o *Options) applyLoggingPrecedence(obj *v1alpha1.KubeProxyConfiguration) error {
	if f := o.fs.Lookup("v"); f != nil {
		if f.Changed {
			n, err := strconv.ParseUint(f.Value.String(), 10, 32)
			if err == nil {
				obj.Logging.Verbosity = logsapi.VerbosityLevel(n)
			}
		} else if obj.Logging.Verbosity != 0 {
			if err := f.Value.Set(strconv.FormatUint(uint64(obj.Logging.Verbosity), 10)); err != nil {
				return fmt.Errorf("config file %s: logging.verbosity: %w", o.ConfigFile, err)
			}
		}
	}
	if f := o.fs.Lookup("vmodule"); f != nil && !f.Changed && len(obj.Logging.VModule) > 0 {
		var parts []string
		for _, m := range obj.Logging.VModule {
			parts = append(parts, fmt.Sprintf("%s=%d", m.FilePattern, m.Verbosity))
		}
		if err := f.Value.Set(strings.Join(parts, ",")); err != nil {
			return fmt.Errorf("config file %s: logging.vmodule: %w", o.ConfigFile, err)
		}
	}
	return nil
}
