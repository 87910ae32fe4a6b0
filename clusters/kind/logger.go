package kind

import (
	"fmt"

	"k8s.io/klog/v2"
	kindlog "sigs.k8s.io/kind/pkg/log"
)

// klogger hands kind's progress and warnings to klog, like the rest of
// the project's logs.
type klogger struct{}

var _ kindlog.Logger = klogger{}

// Warn: kind warns about the network override Create makes on purpose
// (KIND_EXPERIMENTAL_DOCKER_NETWORK), so its warnings are details here.
func (klogger) Warn(msg string) { klog.V(2).Info("kind: " + msg) }
func (klogger) Warnf(format string, args ...any) {
	klog.V(2).Info("kind: " + fmt.Sprintf(format, args...))
}
func (klogger) Error(msg string) { klog.Error("kind: " + msg) }
func (klogger) Errorf(format string, args ...any) {
	klog.Error("kind: " + fmt.Sprintf(format, args...))
}
func (klogger) V(level kindlog.Level) kindlog.InfoLogger {
	return kinfo{v: klog.V(klog.Level(level) + 1)}
}

type kinfo struct{ v klog.Verbose }

func (k kinfo) Enabled() bool                    { return k.v.Enabled() }
func (k kinfo) Info(msg string)                  { k.v.Info("kind: " + msg) }
func (k kinfo) Infof(format string, args ...any) { k.v.Info("kind: " + fmt.Sprintf(format, args...)) }
