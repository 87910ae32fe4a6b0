// Command netserver is the suite's test server (image proxyproof/netserver);
// see package clusters/local/netserver. Build it static: CGO_ENABLED=0.
package main

import (
	"fmt"
	"os"

	"github.com/proxyproof/proxyproof/clusters/local/netserver"
)

func main() {
	if err := netserver.Main(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "netserver: %v\n", err)
		os.Exit(1)
	}
}
