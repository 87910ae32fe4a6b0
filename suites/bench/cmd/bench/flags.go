package main

import (
	"flag"

	"k8s.io/klog/v2"
)

// goflagSet carries klog's flags (-v, --logtostderr...).
func goflagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs
}
