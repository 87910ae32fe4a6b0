// Command testimages writes upstream's e2e test images (the ones the
// conformance spec list names) as one docker archive, from binaries built
// from the Kubernetes tree and unpacked Debian packages, no registry
// (hack/conformance/images.sh runs it).
//
//	testimages debs REF                  the Debian packages REF's recipe needs
//	testimages write --out FILE --bin DIR --source DIR [--debs REPO=TREE]... REF...
//
// write prints "name image-id" per image, as hack/kind/images does, so the
// caller can tell whether Docker already holds them.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/clusters/kind/image"
	"github.com/proxyproof/proxyproof/suites/conformance"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "testimages: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: testimages debs REF | write --out FILE --bin DIR --source DIR [--debs REPO=TREE]... REF...")
	}
	switch args[0] {
	case "debs":
		if len(args) != 2 {
			return errors.New("usage: testimages debs REF")
		}
		debs, err := conformance.ImageDebs(args[1])
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(debs, " "))
		return nil
	case "write":
		return write(args[1:])
	}
	return fmt.Errorf("unknown command %q: want debs or write", args[0])
}

func write(args []string) error {
	fs := pflag.NewFlagSet("write", pflag.ContinueOnError)
	out := fs.String("out", "", "the docker archive to write")
	var in conformance.ImageInputs
	fs.StringVar(&in.Bin, "bin", "", "directory with agnhost and regression-issue-74839")
	fs.StringVar(&in.Source, "source", "", "the k8s.io/kubernetes module directory")
	debs := fs.StringArray("debs", nil, "REPO=TREE: the unpacked Debian packages of image repository REPO")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || in.Bin == "" || in.Source == "" || fs.NArg() == 0 {
		return errors.New("write needs --out, --bin, --source and at least one image")
	}
	in.Debs = map[string]string{}
	for _, d := range *debs {
		repo, tree, ok := strings.Cut(d, "=")
		if !ok {
			return fmt.Errorf("--debs %q: want REPO=TREE", d)
		}
		in.Debs[repo] = tree
	}
	images, err := conformance.TestImages(fs.Args(), in)
	if err != nil {
		return err
	}
	ids, err := image.WriteArchive(*out, images)
	if err != nil {
		return err
	}
	fmt.Print(ids)
	return nil
}
