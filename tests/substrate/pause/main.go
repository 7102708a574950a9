// Command pause is the local cluster's CRI sandbox process: it waits for SIGTERM or SIGINT and
// exits 0, like the upstream pause image (no registry exists here to pull that one from).
//
// `pause alloc MIB` first allocates and touches MIB mebibytes, then waits: the real OOMKilled
// tests give it a smaller memory limit than that. Arguments after MIB are ignored, so an image
// whose entrypoint is `pause alloc MIB` stands in for any container (the "hog" image: a probe
// pod with it is OOM-killed whatever its args).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

var held [][]byte

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "alloc" {
		mib, err := strconv.Atoi(os.Args[2])
		if err != nil || mib <= 0 || mib > 65536 {
			fmt.Fprintf(os.Stderr, "pause: alloc wants a size in MiB (1-65536), got %q\n", os.Args[2])
			os.Exit(2)
		}
		for i := 0; i < mib; i++ {
			chunk := make([]byte, 1<<20)
			for j := 0; j < len(chunk); j += 4096 {
				chunk[j] = 1
			}
			held = append(held, chunk)
		}
		fmt.Printf("pause: holding %d MiB\n", mib)
	} else if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pause [alloc MIB]")
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
