package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCmd calls run with buffers and no signals, returning code and outputs.
func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, nil)
	return code, stdout.String(), stderr.String()
}

func TestExit(t *testing.T) {
	code, out, errOut := runCmd("exit")
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("exit: code=%d stdout=%q stderr=%q", code, out, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := runCmd("x")
	if code != 2 {
		t.Fatalf("code=%d, want 2", code)
	}
	if !strings.Contains(errOut, `prepull-helper: unknown command "x"`) || !strings.Contains(errOut, "Usage:") {
		t.Fatalf("stderr=%q", errOut)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		code, out, _ := runCmd(arg)
		if code != 0 {
			t.Fatalf("%s: code=%d, want 0", arg, code)
		}
		for _, cmd := range []string{"install", "exit", "pause", "version"} {
			if !strings.Contains(out, cmd) {
				t.Fatalf("%s: usage does not list %q: %q", arg, cmd, out)
			}
		}
	}
}

func TestNoArgs(t *testing.T) {
	code, out, errOut := runCmd()
	if code != 2 || out != "" || !strings.Contains(errOut, "Usage:") {
		t.Fatalf("code=%d stdout=%q stderr=%q", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	old := version
	version = "v9.8.7"
	defer func() { version = old }()
	code, out, _ := runCmd("version")
	if code != 0 || out != "v9.8.7\n" {
		t.Fatalf("code=%d stdout=%q", code, out)
	}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "prepull-helper")
	if code, _, errOut := runCmd("install", dest); code != 0 {
		t.Fatalf("code=%d stderr=%q", code, errOut)
	}
	checkInstalled(t, selfPath(), dest)
}

// checkInstalled asserts dest is a byte-identical 0555 copy of src and that
// dest's directory holds nothing else (no leftover temp file).
func checkInstalled(t *testing.T, src, dest string) {
	t.Helper()
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from %s", dest, src)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o555 {
		t.Fatalf("mode=%o, want 555", mode)
	}
	entries, err := os.ReadDir(filepath.Dir(dest))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(dest) && e.Name() != filepath.Base(src) {
			t.Fatalf("unexpected file left behind: %s", e.Name())
		}
	}
}

func TestInstallMissingDir(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "missing", "prepull-helper")
	code, _, errOut := runCmd("install", dest)
	if code != 1 || !strings.HasPrefix(errOut, "prepull-helper: install: ") {
		t.Fatalf("code=%d stderr=%q", code, errOut)
	}
}

func TestInstallMissingDest(t *testing.T) {
	code, _, errOut := runCmd("install")
	if code != 2 || !strings.Contains(errOut, "DEST") {
		t.Fatalf("code=%d stderr=%q", code, errOut)
	}
}

func TestPause(t *testing.T) {
	signals := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		done <- run([]string{"pause"}, &stdout, &stderr, signals)
	}()
	select {
	case code := <-done:
		t.Fatalf("pause returned %d before any signal", code)
	case <-time.After(50 * time.Millisecond):
	}
	signals <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("code=%d, want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pause did not return after SIGTERM")
	}
}

// TestBinary builds the real static binary and runs it as a subprocess.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary; skipped in -short mode")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "prepull-helper")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	if out, err := exec.Command(bin, "exit").CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("exit: err=%v output=%q", err, out)
	}

	dest := filepath.Join(dir, "installed")
	if out, err := exec.Command(bin, "install", dest).CombinedOutput(); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	checkInstalled(t, bin, dest)
	// The installed copy must itself be runnable.
	if err := exec.Command(dest, "exit").Run(); err != nil {
		t.Fatalf("installed binary: %v", err)
	}
}
