// Command goecho measures the floor a Go process puts under felt's latency:
// a UDP echo, once through Go's netpoller ("server") and once with blocking
// syscalls on a locked thread ("bserver"), pinged by a Go client 10 ms apart.
// See docs/performance.md ("Latency").
//
//	ip netns exec B goecho server &   ip netns exec A goecho client ADDR_OF_B
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goecho server|bserver|client ADDR")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 9999})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 2000)
		for {
			n, a, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(buf[:n], a)
		}
	case "bserver":
		runtime.LockOSThread()
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
		if err == nil {
			err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: 9999})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 2000)
		for {
			n, from, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				return
			}
			syscall.Sendto(fd, buf[:n], 0, from)
		}
	case "client":
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: goecho client ADDR")
			os.Exit(2)
		}
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(os.Args[2]), Port: 9999})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 2000)
		var rtts []float64
		for i := 0; i < 300; i++ {
			t := time.Now()
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err == nil {
				rtts = append(rtts, float64(time.Since(t).Microseconds()))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(rtts) == 0 {
			fmt.Fprintln(os.Stderr, "no replies")
			os.Exit(1)
		}
		sort.Float64s(rtts)
		fmt.Printf("p50 %.0f µs p90 %.0f µs (%d replies)\n", rtts[len(rtts)/2], rtts[len(rtts)*9/10], len(rtts))
	}
}
