// Command prepull-helper is a tiny static binary used inside kube-prepull pods.
// It is copied into a shared emptyDir volume and then run as the command of
// other containers, so that nothing from the (arbitrary) target images runs:
// the kubelet only has to pull them.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Usage: prepull-helper <command> [args]

Commands:
  install DEST  copy this executable to DEST atomically (mode 0555)
  exit          exit 0 immediately (init containers that only pull an image)
  pause         block until SIGTERM or SIGINT, then exit 0
  version       print the version
  help          print this help
`

func main() {
	// Subscribe before running so that a signal arriving early is not lost.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, signals))
}

// run executes one command and returns the process exit code. It takes its
// inputs as parameters so tests can drive it without a subprocess.
func run(args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd := args[0]; cmd {
	case "exit":
		return 0
	case "pause":
		// A blocking receive sleeps in the runtime scheduler: no busy loop.
		<-signals
		return 0
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "install":
		if len(args) != 2 {
			fmt.Fprintf(stderr, "prepull-helper: install: expected exactly one argument DEST, got %d\n", len(args)-1)
			fmt.Fprint(stderr, usage)
			return 2
		}
		if err := install(args[1]); err != nil {
			fmt.Fprintf(stderr, "prepull-helper: install: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "prepull-helper: unknown command %q\n", cmd)
		fmt.Fprint(stderr, usage)
		return 2
	}
}

// selfPath returns the path of the running executable.
func selfPath() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return os.Args[0]
}

// install copies the running executable to dest. It writes a temporary file
// in dest's directory and renames it, so a concurrent reader never sees a
// partially written binary (rename is atomic within one file system).
func install(dest string) (err error) {
	src, err := os.Open(selfPath())
	if err != nil {
		return err
	}
	defer src.Close()

	tmp := fmt.Sprintf("%s.tmp-%d", dest, os.Getpid())
	// A restarted container often gets the same PID and the emptyDir survives,
	// so a stale read-only temp file from a crashed attempt may exist: drop it.
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return err
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o555)
	if err != nil {
		return err
	}
	// On any failure below, leave no temporary file behind.
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()

	if _, err = io.Copy(out, src); err != nil {
		return err
	}
	// The umask may have cleared bits at creation time; set the mode explicitly.
	if err = out.Chmod(0o555); err != nil {
		return err
	}
	if err = out.Sync(); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}
