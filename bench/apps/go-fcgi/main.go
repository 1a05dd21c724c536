// The Go row of bench/run.mjs: net/http/fcgi from the standard library, listening on TCP.
// "Hello, World!" at /, the 64 KiB body of payload.mjs at /64k ("abc...xyz" repeated), text/plain with a
// Content-Length, like every other backend of the bench. Standard library only: builds without a module or
// the network.
//
//	go-fcgi 127.0.0.1:PORT
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go-fcgi HOST:PORT")
	}
	hello := []byte("Hello, World!")
	big := make([]byte, 64*1024)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s (pid %d)\n", os.Args[1], os.Getpid())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := hello
		if r.URL.Path == "/64k" {
			body = big
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	log.Fatal(fcgi.Serve(listener, handler))
}
