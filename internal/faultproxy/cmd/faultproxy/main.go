// Command faultproxy puts the fault proxy between a program and a database
// on 127.0.0.1 for benchmark scripts, delaying every chunk by a latency in
// each direction, as a database on another host would be:
//
//	go run ./internal/faultproxy/cmd/faultproxy -target 127.0.0.1:3306 -latency 500us
//
// It prints the address to connect to (127.0.0.1:PORT) on the first line of
// its output and forwards until it is interrupted or terminated. On SIGUSR1
// it prints "requests N": the chunks clients have sent so far, which is
// the number of round trips to the database (see Proxy.Requests).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weave-sync/weave/internal/faultproxy"
)

func main() {
	target := flag.String("target", "127.0.0.1:3306", "database `host:port` on the loopback network")
	latency := flag.Duration("latency", 0, "delay of every chunk in each direction (a round trip takes twice this more)")
	flag.Parse()
	p, err := faultproxy.New(*target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p.SetLatency(*latency)
	fmt.Println(p.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	for s := range sig {
		if s != syscall.SIGUSR1 {
			break
		}
		fmt.Println("requests", p.Requests())
	}
	_ = p.Close()
}
