// Command skipreport prints the table that ends `make test`: every test
// that did not run, why, and how to run it, from the test2json files that
// gotestsum wrote (--jsonfile) for each go test of the run.
//
// A skip message says why and, after "; run: ", how to run the test; a
// message without that part gets "see the test's message". A test skipped
// here that the same make test runs elsewhere (in a guest, in a run
// without -race) says so after "; runs in: ": those are counted below the
// table, not listed as not run.
//
//	usage: skipreport FILE.json...
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// event is a test2json record.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skipped struct {
	run, test, why, how string
	elsewhere           bool // "; runs in: " (how says where)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: skipreport FILE.json...")
		os.Exit(2)
	}
	var all []skipped
	for _, name := range os.Args[1:] {
		s, err := readFile(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "skipreport: %v\n", err)
			os.Exit(1)
		}
		all = append(all, s...)
	}
	writeTable(os.Stdout, all)
}

func readFile(name string) ([]skipped, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := read(f, strings.TrimSuffix(filepath.Base(name), ".json"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// read collects the skipped tests of one go test run; a test whose
// parent was skipped too is the parent's, not listed again.
func read(r io.Reader, run string) ([]skipped, error) {
	output := map[string][]string{}
	var order []string
	skips := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // go test's own lines (build output) are not events
		}
		if e.Test == "" {
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			output[key] = append(output[key], e.Output)
		case "skip":
			if !skips[key] {
				order = append(order, key)
			}
			skips[key] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []skipped
	for _, key := range order {
		pkg, test, _ := strings.Cut(key, " ")
		if i := strings.LastIndex(test, "/"); i > 0 && skips[pkg+" "+test[:i]] {
			continue
		}
		why := message(output[key])
		how := "see the test's message"
		elsewhere := false
		if w, h, ok := strings.Cut(why, "; run: "); ok {
			why, how = w, h
		} else if w, h, ok := strings.Cut(why, "; runs in: "); ok {
			why, how, elsewhere = w, h, true
		}
		out = append(out, skipped{run: run, test: shortPkg(pkg) + "." + test, why: why, how: how, elsewhere: elsewhere})
	}
	return out, nil
}

// message is the skip's own text: the indented "file.go:NN: text" lines.
func message(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") || t == "" {
			continue
		}
		if _, rest, ok := strings.Cut(t, ": "); ok && strings.Contains(t[:len(t)-len(rest)], ".go:") {
			t = rest
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}

func shortPkg(pkg string) string {
	const mod = "github.com/dpm-guest-image-tools/dpm-netconf/"
	if p := strings.TrimPrefix(pkg, mod); p != pkg {
		return p
	}
	return pkg
}

func writeTable(w io.Writer, all []skipped) {
	var notRun []skipped
	elsewhere := map[string]int{}
	var where []string
	for _, s := range all {
		if !s.elsewhere {
			notRun = append(notRun, s)
			continue
		}
		key := s.run + " skipped them; they run in " + s.how
		if elsewhere[key] == 0 {
			where = append(where, key)
		}
		elsewhere[key]++
	}
	if len(notRun) == 0 {
		fmt.Fprintln(w, "make test: every test ran")
	} else {
		sort.SliceStable(notRun, func(i, j int) bool { return notRun[i].run < notRun[j].run })
		fmt.Fprintf(w, "make test: %d tests did not run:\n", len(notRun))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tTEST\tWHY\tHOW TO RUN IT")
		for _, s := range notRun {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.run, s.test, s.why, s.how)
		}
		tw.Flush()
	}
	for _, key := range where {
		fmt.Fprintf(w, "(%d tests: %s)\n", elsewhere[key], key)
	}
}
