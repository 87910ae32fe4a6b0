# k8s_ldflags VERSION prints upstream's version ldflags (Kubernetes'
# hack/lib/version.sh) for both version packages: client-go's, read by
# kubectl and e2e.test, and component-base's, read by the servers
# (--version, /version). No git checkout to take the commit from: an
# empty gitCommit beats "$Format:%H$". Shared by the control-plane and
# conformance builds, whose cache stamps hash this string.
k8s_ldflags() {
  local version=$1 minor major pkg flags="-s -w"
  minor=${version#v*.}
  minor=${minor%%.*}
  major=${version#v}
  major=${major%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit="
  done
  echo "$flags"
}
