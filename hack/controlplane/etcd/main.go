// Command etcd is the etcd server, built from the published go.etcd.io/etcd/server/v3 module.
//
// The upstream main package lives in the go.etcd.io/etcd/v3 root module, whose go.mod relies on
// local replace directives; wrapping etcdmain avoids that and keeps the build to one `go build`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
