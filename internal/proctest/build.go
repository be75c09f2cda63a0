package proctest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// programs is where Build puts what it builds: a temporary directory,
// created by the first Build and removed by Main.
var programs struct {
	sync.Mutex
	inMain bool   // Main is running the tests
	dir    string // "" until the first Build
	builds map[string]*build
}

// build is one package built, at most once per test binary.
type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests of m and then removes the programs Build built, and
// returns the exit code for os.Exit. A package whose tests call Build
// calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }
func Main(m *testing.M) int {
	programs.Lock()
	programs.inMain = true
	programs.Unlock()

	code := m.Run()

	programs.Lock()
	defer programs.Unlock()
	programs.inMain = false
	if programs.dir != "" {
		if err := os.RemoveAll(programs.dir); err != nil {
			fmt.Fprintln(os.Stderr, "proctest:", err)
		}
	}
	return code
}

// Build builds the main package pkg, given relative to the module root
// (for example "./cmd/trigger-worker"), once per test binary, and returns
// the path of the executable, whose base name is that of pkg. It fails the
// test when pkg does not build, or when TestMain does not run the tests
// with [Main].
//
// The go command builds the program in a child process, so it would not
// know that the test's result depends on the program's sources, and could
// report a cached pass after they change. Build therefore stats the source
// files of pkg and of every package of this module pkg imports, which the
// go command records as inputs of the test.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	programs.Lock()
	if programs.builds == nil {
		programs.builds = map[string]*build{}
	}
	b, ok := programs.builds[pkg]
	if !ok {
		b = &build{}
		programs.builds[pkg] = b
	}
	programs.Unlock()
	b.once.Do(func() { b.path, b.err = buildProgram(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func buildProgram(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := programDir()
	if err != nil {
		return "", err
	}
	// A directory of its own, so that two packages with the same base name
	// do not overwrite each other.
	dir, err = os.MkdirTemp(dir, "")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", path, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	if err := statSources(root, pkg); err != nil {
		return "", err
	}
	return path, nil
}

// programDir returns the directory of the programs, creating it on first
// use.
func programDir() (string, error) {
	programs.Lock()
	defer programs.Unlock()
	if !programs.inMain {
		return "", errors.New("proctest.Build: TestMain must run the tests with proctest.Main, which removes the programs")
	}
	if programs.dir == "" {
		dir, err := os.MkdirTemp("", "triggerbus-proctest-")
		if err != nil {
			return "", err
		}
		programs.dir = dir
	}
	return programs.dir, nil
}

// statSources stats the files of the directories of pkg and of the
// packages of this module it imports (see Build).
func statSources(root, pkg string) error {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", pkg)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	for dir := range strings.Lines(string(out)) {
		dir = strings.TrimSpace(dir)
		if dir == "" || !strings.HasPrefix(dir, root+string(filepath.Separator)) {
			continue // the module cache does not change
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// ModuleRoot returns the directory of the module's go.mod, as the go
// command finds it from the test's working directory. It fails the test
// when there is none.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var moduleRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
})
