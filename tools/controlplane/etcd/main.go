// Command etcd is upstream etcd's own server main (go.etcd.io/etcd/server/v3/main.go), wrapped
// in a module of ours because upstream's go.mod carries monorepo-relative replace directives
// that make `go install go.etcd.io/etcd/server/v3@version` fail (etcd-io/etcd#18501).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
