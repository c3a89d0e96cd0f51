module github.com/kube-prepull/kube-prepull/helper

go 1.24
