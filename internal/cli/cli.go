// Package cli reads wikiflow's configuration: command-line flags, each with an
// environment variable as fallback and a documented default, parsed in one place and
// validated with every problem reported at once.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Flags is a flag set whose flags fall back to environment variables. Precedence:
// command line, then environment, then default.
type Flags struct {
	fs      *flag.FlagSet
	env     func(string) string
	envOf   map[string]string // flag name -> env var
	summary string
	usage   string
	probs   []error
	out     io.Writer
}

// New returns an empty flag set for the command name. summary is a one-line
// description; usage (optional) is extra text printed by --help after the flags.
// env looks up environment variables (os.Getenv in main, a map in tests).
func New(name, summary, usage string, env func(string) string, out io.Writer) *Flags {
	f := &Flags{
		fs:      flag.NewFlagSet(name, flag.ContinueOnError),
		env:     env,
		envOf:   map[string]string{},
		summary: summary,
		usage:   usage,
		out:     out,
	}
	f.fs.SetOutput(out)
	f.fs.Usage = f.printUsage
	return f
}

// FlagSet returns the underlying flag set.
func (f *Flags) FlagSet() *flag.FlagSet { return f.fs }

func (f *Flags) register(name, envVar string) {
	if envVar != "" {
		f.envOf[name] = envVar
	}
}

func (f *Flags) describe(usage, envVar string) string {
	if envVar == "" {
		return usage
	}
	return usage + " [$" + envVar + "]"
}

// String defines a string flag bound to p.
func (f *Flags) String(p *string, name, envVar, def, usage string) {
	f.fs.StringVar(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// Int defines an int flag bound to p.
func (f *Flags) Int(p *int, name, envVar string, def int, usage string) {
	f.fs.IntVar(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// Int64 defines an int64 flag bound to p.
func (f *Flags) Int64(p *int64, name, envVar string, def int64, usage string) {
	f.fs.Int64Var(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// Uint64 defines a uint64 flag bound to p.
func (f *Flags) Uint64(p *uint64, name, envVar string, def uint64, usage string) {
	f.fs.Uint64Var(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// Float64 defines a float64 flag bound to p.
func (f *Flags) Float64(p *float64, name, envVar string, def float64, usage string) {
	f.fs.Float64Var(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// Bool defines a bool flag bound to p.
func (f *Flags) Bool(p *bool, name, envVar string, def bool, usage string) {
	f.fs.BoolVar(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// Duration defines a time.Duration flag bound to p.
func (f *Flags) Duration(p *time.Duration, name, envVar string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, def, f.describe(usage, envVar))
	f.register(name, envVar)
}

// List defines a comma-separated list flag bound to p.
func (f *Flags) List(p *[]string, name, envVar, def, usage string) {
	*p = splitList(def)
	f.fs.Func(name, f.describe(usage+" (comma-separated; default "+quote(def)+")", envVar), func(s string) error {
		*p = splitList(s)
		return nil
	})
	f.register(name, envVar)
}

func quote(s string) string {
	if s == "" {
		return "none"
	}
	return fmt.Sprintf("%q", s)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// ErrHelp is returned by Parse when -h or --help was asked for; usage has been printed.
var ErrHelp = flag.ErrHelp

// Parse parses args, then fills every flag not given on the command line from its
// environment variable when that is set. Problems with environment values are
// collected with those found later by Check and reported together by Err.
func (f *Flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	names := make([]string, 0, len(f.envOf))
	for name := range f.envOf {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		envVar := f.envOf[name]
		if set[name] {
			continue
		}
		v := f.env(envVar)
		if v == "" {
			continue
		}
		if err := f.fs.Set(name, v); err != nil {
			f.probs = append(f.probs, fmt.Errorf("$%s: %v", envVar, err))
		}
	}
	return nil
}

// Args returns the positional arguments left after Parse.
func (f *Flags) Args() []string { return f.fs.Args() }

// Check records a configuration problem when ok is false.
func (f *Flags) Check(ok bool, format string, args ...any) {
	if !ok {
		f.probs = append(f.probs, fmt.Errorf(format, args...))
	}
}

// Problem records a configuration problem when err is not nil.
func (f *Flags) Problem(err error) {
	if err != nil {
		f.probs = append(f.probs, err)
	}
}

// Err returns every recorded problem joined into one error, or nil.
func (f *Flags) Err() error {
	if len(f.probs) == 0 {
		return nil
	}
	msgs := make([]string, len(f.probs))
	for i, p := range f.probs {
		msgs[i] = "  - " + p.Error()
	}
	return fmt.Errorf("invalid configuration for %s:\n%s", f.fs.Name(), strings.Join(msgs, "\n"))
}

// Join is errors.Join, re-exported for callers that validate in several steps.
var Join = errors.Join

func (f *Flags) printUsage() {
	fmt.Fprintf(f.out, "Usage: wikiflow %s [flags]\n\n%s\n\nFlags (command line, then environment, then default):\n", f.fs.Name(), f.summary)
	f.fs.PrintDefaults()
	if f.usage != "" {
		fmt.Fprintf(f.out, "\n%s\n", strings.TrimSpace(f.usage))
	}
}

// EnvVars returns the environment variable of every flag that has one, by flag name.
func (f *Flags) EnvVars() map[string]string {
	out := make(map[string]string, len(f.envOf))
	for k, v := range f.envOf {
		out[k] = v
	}
	return out
}
