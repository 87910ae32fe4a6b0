// Command kubeconfigcluster is make cluster-down PROVIDER=kubeconfig:
// it removes what interrupted runs of the suite left in a cluster the
// suite did not make (their labelled namespaces), and nothing else.
//
//	kubeconfigcluster down --kubeconfig PATH [--context NAME] [--all]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/proxyproof/proxyproof/clusters/kubeconfig"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "down" {
		fmt.Fprintln(os.Stderr, "usage: kubeconfigcluster down --kubeconfig PATH [--context NAME] [--all]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	path := fs.String("kubeconfig", "", "kubeconfig of the cluster")
	ctxName := fs.String("context", "", "its context (default: the current one)")
	all := fs.Bool("all", false, "also the namespaces of runs that may still be going (on another machine)")
	_ = fs.Parse(os.Args[2:])
	runs, err := kubeconfig.Down(context.Background(), *path, *ctxName, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfigcluster down:", err)
		os.Exit(1)
	}
	if len(runs) == 0 {
		fmt.Println("nothing left by earlier runs")
		return
	}
	fmt.Printf("removed the namespaces of runs %s\n", strings.Join(runs, ", "))
}
