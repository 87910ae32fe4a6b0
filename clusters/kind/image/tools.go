package image

import "fmt"

// ToolPackages are the Debian packages whose files (with the libraries
// they link, which hack/kind/build-images.sh adds) make the tools layer:
// what a hostNetwork proxier or kube-proxy execs (procps: sysctl), and
// netbase's /etc/protocols and /etc/services the tools resolve names in.
var ToolPackages = []string{"iptables", "nftables", "ipset", "conntrack", "procps", "netbase"}

// toolLinks are what the packages' maintainer scripts would create with
// update-alternatives, which unpacking does not run. The default backend
// is nft, as Debian's and as kind's node entrypoint picks on a host whose
// Docker writes nft rules; iptables-legacy* stay callable by name.
var toolLinks = map[string]string{
	"/usr/sbin/iptables":          "iptables-nft",
	"/usr/sbin/iptables-save":     "iptables-nft-save",
	"/usr/sbin/iptables-restore":  "iptables-nft-restore",
	"/usr/sbin/ip6tables":         "ip6tables-nft",
	"/usr/sbin/ip6tables-save":    "ip6tables-nft-save",
	"/usr/sbin/ip6tables-restore": "ip6tables-nft-restore",
	"/usr/sbin/ebtables":          "ebtables-nft",
}

// ToolsLayer is the tools layer from root, a directory the Debian
// packages (ToolPackages and their library dependencies) were unpacked
// into with dpkg-deb -x, plus the alternatives links.
func ToolsLayer(root string) ([]Entry, error) {
	entries, err := TreeEntries(root)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Path] = true
	}
	for _, want := range []string{"/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi", "/usr/sbin/nft", "/usr/sbin/ipset", "/usr/sbin/conntrack", "/sbin/sysctl", "/etc/protocols"} {
		if !have[want] {
			return nil, fmt.Errorf("tools tree %s has no %s: unpack the Debian packages %v there", root, want, ToolPackages)
		}
	}
	for link, target := range toolLinks {
		if have[link] {
			return nil, fmt.Errorf("tools tree %s already has %s; the alternatives link would replace it", root, link)
		}
		entries = append(entries, Symlink(link, target))
	}
	return entries, nil
}
