package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aymanbagabas/go-udiff"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/bundle"
)

const functionsLong = `The fleet's functions as one versioned bundle: the functions list and the
scripts.dir scripts, with every file they reference, stored by revision in
the JetStream object store <PREFIX>_FUNCTIONS; the key-value bucket
<PREFIX>_FUNCTIONS_HEAD names the active revision. Exec commands are paths
on each worker's host: they are listed, not copied. Workers with
bundle.source: bundle serve the active revision.

With bundle.trusted_keys set, push must be signed (--sign) by one of them, and
activate and pull refuse revisions that are not signed by one or whose files
do not match the signed hashes.`

func newFunctionsCmd() *cobra.Command {
	push := functionsCmd("push [DIR]", "Check the functions as check does, store them as a new revision and make it active",
		`Checks the functions as check does and stores them as a new revision, then
makes it active (--no-activate: only stores it). The functions are those of the
config (-c FILE), or of DIR/functions.yaml (the layout pull writes). Any problem:
nothing is stored, exit 2. Prints the revision.`, "at most one DIR", cobra.MaximumNArgs(1), 0, "scripts-dir")
	var p pusher
	push.cmd.Flags().StringVarP(&p.message, "message", "m", "", "why this revision (shown by ls)")
	push.cmd.Flags().StringVar(&p.author, "author", defaultAuthor(), "who pushes")
	push.cmd.Flags().StringVar(&p.signWith, "sign", "", "sign with the nkey seed in this file (functions keygen)")
	noActivate := push.cmd.Flags().Bool("no-activate", false, "store the revision without making it active")
	push.cmd.Flags().BoolVar(&p.dryRun, "dry-run", false, "check and show the bundle, store nothing")
	push.run = func(ctx context.Context, f *functionsCmdFlags, args []string, stdout, stderr io.Writer) error {
		p.activate, p.timeout = !*noActivate, f.timeout
		return p.run(ctx, f.cf, args, stdout, stderr)
	}

	ls := functionsCmd("ls", "List the revisions: revision, time, author, signer, functions, message; * marks the active one",
		"", "no arguments", cobra.NoArgs, 0)
	lsOut := addOutputFlag(ls.cmd)
	ls.store = func(ctx context.Context, st *bundle.Store, _ config.Config, _ []uint64, _ []string, out io.Writer) error {
		return listRevisions(ctx, st, *lsOut, out)
	}

	show := functionsCmd("show REV [FILE]", "Print a revision's manifest (functions, files and their sha256, commands), or one of its files",
		"", "REV [FILE]", cobra.RangeArgs(1, 2), 1)
	showOut := addOutputFlag(show.cmd)
	show.store = func(ctx context.Context, st *bundle.Store, cfg config.Config, revs []uint64, args []string, out io.Writer) error {
		b, err := st.Fetch(ctx, revs[0])
		if err != nil {
			return err
		}
		if len(args) == 2 {
			return showFile(b, args[1], out)
		}
		active, err := st.Active(ctx)
		if err != nil {
			return err
		}
		return showManifest(b, active, cfg.Bundle.TrustedKeys, *showOut, out)
	}

	diff := functionsCmd("diff A B", "What changed from revision A to B: functions, files, and a diff of each file",
		"", "two revisions A B", cobra.ExactArgs(2), 2)
	diff.store = func(ctx context.Context, st *bundle.Store, _ config.Config, revs []uint64, _ []string, out io.Writer) error {
		a, err := st.Fetch(ctx, revs[0])
		if err != nil {
			return err
		}
		b, err := st.Fetch(ctx, revs[1])
		if err != nil {
			return err
		}
		diffBundles(a, b, out)
		return nil
	}

	activate := functionsCmd("activate REV", "Make REV the active revision: roll back or forward", "", "one REV", cobra.ExactArgs(1), 1)
	activate.store = func(ctx context.Context, st *bundle.Store, cfg config.Config, revs []uint64, _ []string, out io.Writer) error {
		if trusted := cfg.Bundle.TrustedKeys; len(trusted) > 0 {
			if _, err := verified(ctx, st, revs[0], trusted); err != nil {
				return err
			}
		}
		prev, err := st.Activate(ctx, revs[0])
		if err != nil {
			return err
		}
		if prev == revs[0] {
			fmt.Fprintf(out, "revision %d was already active\n", revs[0])
		} else {
			fmt.Fprintf(out, "revision %d is active (was %s)\n", revs[0], revName(prev))
		}
		return nil
	}

	pull := functionsCmd("pull REV DIR", "Write revision REV into the new directory DIR", "", "REV DIR", cobra.ExactArgs(2), 1)
	pull.store = func(ctx context.Context, st *bundle.Store, cfg config.Config, revs []uint64, args []string, out io.Writer) error {
		trusted := cfg.Bundle.TrustedKeys
		b, err := st.Fetch(ctx, revs[0])
		if err != nil {
			return err
		}
		if len(trusted) > 0 {
			if b, err = verified(ctx, st, revs[0], trusted); err != nil {
				return err
			}
		}
		if err := b.WriteDir(args[1]); err != nil {
			return err
		}
		fmt.Fprintf(out, "revision %d written to %s: %d files, %s, %s\n", revs[0], args[1], len(b.Files), bundle.ManifestFile, signedText(b, trusted))
		return nil
	}

	keygen := &cobra.Command{
		Use:   "keygen [FILE]",
		Short: "Make an ed25519 nkey for signing: the seed to FILE (created, mode 0600) or stdout, the public key to stdout",
		Args:  argsError("at most one FILE", cobra.MaximumNArgs(1)),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return keygen(args, cmd.OutOrStdout())
		}),
	}
	return groupCmd("functions", "The fleet's functions as one versioned, signed bundle", functionsLong,
		push.build(), ls.build(), show.build(), diff.build(), activate.build(), pull.build(), keygen)
}

// functionsCmdFlags are the flags every functions command that connects
// takes.
type functionsCmdFlags struct {
	cf      *commonFlags
	timeout time.Duration
}

// functionsSub is a functions command under construction: run runs it
// whole (push); store runs it on the opened function store, with its
// revision arguments (the first nrevs arguments) parsed.
type functionsSub struct {
	cmd   *cobra.Command
	flags functionsCmdFlags
	nrevs int
	run   func(ctx context.Context, f *functionsCmdFlags, args []string, stdout, stderr io.Writer) error
	store func(ctx context.Context, st *bundle.Store, cfg config.Config, revs []uint64, args []string, out io.Writer) error
}

func functionsCmd(use, short, long, argsText string, args cobra.PositionalArgs, nrevs int, overrides ...string) *functionsSub {
	s := &functionsSub{cmd: &cobra.Command{Use: use, Short: short, Long: long, Args: argsError(argsText, args)}, nrevs: nrevs}
	s.flags.cf = addCommonFlags(s.cmd, true, append([]string{"prefix", "embedded-listen"}, overrides...)...)
	s.cmd.Flags().DurationVar(&s.flags.timeout, "timeout", 30*time.Second, "bound of each JetStream request")
	return s
}

func (s *functionsSub) build() *cobra.Command {
	s.cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		ctx, stdout := cmd.Context(), cmd.OutOrStdout()
		if s.run != nil {
			return s.run(ctx, &s.flags, args, stdout, cmd.ErrOrStderr())
		}
		var revs []uint64
		for _, a := range args[:s.nrevs] {
			rev, err := strconv.ParseUint(a, 10, 64)
			if err != nil || rev == 0 {
				return usagef("functions %s: %q is not a revision number (see functions ls)", cmd.Name(), a)
			}
			revs = append(revs, rev)
		}
		st, cfg, done, err := openStore(ctx, s.flags.cf, s.flags.timeout, false)
		if err != nil {
			return err
		}
		defer done()
		return s.store(ctx, st, cfg, revs, args, stdout)
	})
	return s.cmd
}

// verified fetches rev and verifies it against trusted.
func verified(ctx context.Context, st *bundle.Store, rev uint64, trusted []string) (*bundle.Bundle, error) {
	b, err := st.Fetch(ctx, rev)
	if err != nil {
		return nil, err
	}
	if err := bundle.Verify(b, trusted); err != nil {
		return nil, fmt.Errorf("revision %d is refused by bundle.trusted_keys: %w", rev, err)
	}
	return b, nil
}

// openStore loads the configuration, connects to JetStream and opens the
// function store; done closes the connection.
func openStore(ctx context.Context, cf *commonFlags, timeout time.Duration, create bool) (*bundle.Store, config.Config, func(), error) {
	cfg, err := cf.load()
	if err != nil {
		return nil, cfg, nil, err
	}
	scheme, nc, js, err := toolJetStream(cf, "trigger-worker functions", timeout)
	if err != nil {
		return nil, cfg, nil, err
	}
	st, err := bundle.Open(ctx, js, scheme, bundle.Options{History: cfg.Bundle.History, Replicas: cfg.Delivery.Replicas, Create: create, PutTimeout: timeout})
	if errors.Is(err, bundle.ErrNoStore) {
		err = fmt.Errorf("no function bundle has been pushed with prefix %q on this NATS (%w)", scheme.Prefix(), err)
	}
	if err != nil {
		nc.Close()
		return nil, cfg, nil, err
	}
	return st, cfg, nc.Close, nil
}

func defaultAuthor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// pusher is one functions push.
type pusher struct {
	message, author, signWith string
	activate, dryRun          bool
	timeout                   time.Duration
}

func (p pusher) run(ctx context.Context, cf *commonFlags, dir []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(cf, stderr)
	if err != nil {
		return err
	}
	src := cfg
	if len(dir) == 1 {
		var problems []error
		if src, problems = definitionsConfig(cfg, dir[0]); len(problems) > 0 {
			writeProblems(stderr, problems)
			return &usageError{err: errQuiet}
		}
	}
	// The one validation of functions, as check and run do it.
	l := loadFunctions(src, slog.New(slog.DiscardHandler), nil)
	l.close()
	if len(l.problems) > 0 {
		writeProblems(stderr, l.problems)
		fmt.Fprintln(stderr, "\nnothing pushed")
		return &usageError{err: errQuiet}
	}
	if l.set.Len() == 0 {
		return usagef("functions push: %s", noFunctionsWarning)
	}
	b, err := bundle.FromConfig(src)
	if err != nil {
		return &usageError{err: err}
	}
	if b.Manifest.Functions, err = bundleFunctions(cfg, b); err != nil {
		return err
	}
	b.Manifest.Author, b.Manifest.Message = p.author, p.message

	var key nkeys.KeyPair
	trusted := cfg.Bundle.TrustedKeys
	if p.signWith != "" {
		if key, err = bundle.ReadKey(p.signWith); err != nil {
			return &usageError{err: err}
		}
		pub, _ := key.PublicKey()
		if len(trusted) > 0 && !slices.Contains(trusted, pub) {
			return usagef("functions push: the key of %s (%s) is not in bundle.trusted_keys: workers would refuse the revision; nothing pushed", p.signWith, pub)
		}
	} else if len(trusted) > 0 {
		return usagef("functions push: bundle.trusted_keys is set, so workers refuse unsigned revisions: sign with --sign KEYFILE; nothing pushed")
	}
	if p.dryRun {
		printFunctions(b, stdout)
		fmt.Fprintf(stdout, "\n%d functions, %d files: no problems (dry run: nothing pushed)\n", len(b.Manifest.Functions), len(b.Manifest.Files))
		return nil
	}

	st, _, done, err := openStore(ctx, cf, p.timeout, true)
	if err != nil {
		return err
	}
	defer done()
	opts := bundle.PushOptions{Activate: p.activate}
	if key != nil {
		opts.Sign = func(b *bundle.Bundle) error { return b.Sign(key) }
	}
	res, err := st.Push(ctx, b, opts)
	if res.Revision == 0 && err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revision %d pushed: %d functions, %d files, %s\n", res.Revision, len(b.Manifest.Functions), len(b.Manifest.Files), signedText(b, nil))
	switch {
	case res.Activated:
		fmt.Fprintf(stdout, "revision %d is active\n", res.Revision)
	case p.activate && err == nil:
		fmt.Fprintf(stdout, "revision %d is not active: revision %d, pushed since, is\n", res.Revision, res.Active)
	case err == nil:
		fmt.Fprintf(stdout, "revision %d is not active (active: %s); functions activate %d makes it so\n", res.Revision, revName(res.Active), res.Revision)
	}
	if len(res.Pruned) > 0 {
		fmt.Fprintf(stdout, "removed beyond the history of %d: %s\n", cfg.Bundle.History, joinRevs(res.Pruned))
	}
	return err
}

// definitionsConfig is cfg with the functions of the bundle directory dir
// (dir/functions.yaml) in place of its own: what push DIR checks and what a
// worker loads from a bundle.
func definitionsConfig(cfg config.Config, dir string) (config.Config, []error) {
	path := filepath.Join(dir, config.DefinitionsFile)
	if _, err := os.Stat(path); err != nil {
		return cfg, []error{fmt.Errorf("%s: %w (a bundle directory has a %s: functions, scripts.dir)", dir, err, config.DefinitionsFile)}
	}
	d, err := config.LoadDefinitions(path)
	if err != nil {
		return cfg, splitJoined(err)
	}
	cfg.File, cfg.Functions, cfg.Scripts.Dir = path, d.Functions, d.ScriptsDir
	return cfg, nil
}

// bundleFunctions loads b as a worker will (materialised on its own, read
// through its functions.yaml) and returns its functions for the manifest.
// A problem here is a bundle that does not stand on its own.
func bundleFunctions(cfg config.Config, b *bundle.Bundle) ([]bundle.Function, error) {
	tmp, err := os.MkdirTemp("", "trigger-bundle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := b.WriteFiles(tmp); err != nil {
		return nil, err
	}
	src, problems := definitionsConfig(cfg, tmp)
	var l *loaded
	if len(problems) == 0 {
		l = loadFunctions(src, slog.New(slog.DiscardHandler), nil)
		l.close()
		problems = l.problems
	}
	if len(problems) > 0 {
		return nil, &usageError{err: fmt.Errorf("the bundle does not load on its own: %w", errors.Join(problems...))}
	}
	var fns []bundle.Function
	for _, e := range l.set.Entries() {
		f := bundle.Function{
			Ref: e.Ref, Kind: l.kinds[e.Ref], TriggerType: e.Type.Name, TriggerOptions: e.Options, Priority: e.Priority,
			Source: filepath.ToSlash(strings.TrimPrefix(e.Source, tmp+string(filepath.Separator))),
		}
		if e.Type.IsPre() {
			f.Policy = string(e.FailurePolicy) + "/" + string(e.Mode)
		}
		if sc := e.Schedule; sc != nil {
			f.Schedule = sc.String()
		}
		fns = append(fns, f)
	}
	return fns, nil
}

func keygen(file []string, stdout io.Writer) error {
	seed, pub, err := bundle.NewKey()
	if err != nil {
		return err
	}
	if len(file) == 0 {
		fmt.Fprintf(stdout, "%s\n%s\n", seed, pub)
		return nil
	}
	f, err := os.OpenFile(file[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return &usageError{err: err}
	}
	_, werr := fmt.Fprintf(f, "%s\n", seed)
	if err := errors.Join(werr, f.Close()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", pub)
	return nil
}

func revName(rev uint64) string {
	if rev == 0 {
		return "none"
	}
	return strconv.FormatUint(rev, 10)
}

func joinRevs(revs []uint64) string {
	s := make([]string, len(revs))
	for i, r := range revs {
		s[i] = strconv.FormatUint(r, 10)
	}
	return strings.Join(s, " ")
}

// signedText says who signed b and, with trusted keys, whether that is
// one of them.
func signedText(b *bundle.Bundle, trusted []string) string {
	if b.Signature == nil {
		return "not signed"
	}
	s := "signed by " + b.Signature.Key
	if len(trusted) > 0 {
		if err := bundle.Verify(b, trusted); err != nil {
			return s + " (refused: " + err.Error() + ")"
		}
		return s + " (trusted)"
	}
	return s
}

// revisionInfo is a revision as functions ls prints it with -o json or
// yaml (docs/cli.md).
type revisionInfo struct {
	Revision  uint64    `json:"revision"`
	Active    bool      `json:"active"`
	Created   time.Time `json:"created"`
	Author    string    `json:"author"`
	Signer    string    `json:"signer,omitempty"` // the signing key; absent when not signed
	Functions []string  `json:"functions"`
	Message   string    `json:"message,omitempty"`
	Error     string    `json:"error,omitempty"` // the revision could not be read
}

func listRevisions(ctx context.Context, st *bundle.Store, format outputFormat, out io.Writer) error {
	revs, err := st.Revisions(ctx)
	if err != nil {
		return err
	}
	active, err := st.Active(ctx)
	if err != nil {
		return err
	}
	if format != "table" {
		list := []revisionInfo{}
		for _, rev := range slices.Backward(revs) {
			r := revisionInfo{Revision: rev, Active: rev == active, Functions: []string{}}
			b, err := st.Fetch(ctx, rev)
			if err != nil {
				r.Error = err.Error()
				list = append(list, r)
				continue
			}
			m := b.Manifest
			r.Created, r.Author, r.Message = m.Created.UTC(), m.Author, m.Message
			if b.Signature != nil {
				r.Signer = b.Signature.Key
			}
			for _, f := range m.Functions {
				r.Functions = append(r.Functions, f.Ref)
			}
			list = append(list, r)
		}
		return encode(out, format, list)
	}
	if len(revs) == 0 {
		fmt.Fprintln(out, "no revisions")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tACTIVE\tCREATED\tAUTHOR\tSIGNED BY\tFUNCTIONS\tMESSAGE")
	for _, rev := range slices.Backward(revs) {
		mark := ""
		if rev == active {
			mark = "*"
		}
		b, err := st.Fetch(ctx, rev)
		if err != nil {
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\tunreadable: %v\n", rev, mark, err)
			continue
		}
		m := b.Manifest
		signer := "-"
		if b.Signature != nil {
			signer = b.Signature.Key
		}
		refs := make([]string, len(m.Functions))
		for i, f := range m.Functions {
			refs[i] = f.Ref
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", rev, mark, m.Created.UTC().Format(time.RFC3339), orDash(m.Author), signer,
			orDash(strings.Join(refs, ",")), orDash(strings.Join(strings.Fields(m.Message), " ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if active == 0 {
		fmt.Fprintln(out, "no revision is active")
	}
	return nil
}

func printFunctions(b *bundle.Bundle, out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tKIND\tTYPE\tOPTIONS\tPRIORITY\tPOLICY\tSCHEDULE\tSOURCE")
	for _, f := range b.Manifest.Functions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", f.Ref, f.Kind, f.TriggerType, strings.Join(f.TriggerOptions, ","),
			f.Priority, orDash(f.Policy), orDash(f.Schedule), f.Source)
	}
	_ = tw.Flush() // the writers of out report their own errors
}

// revisionShown is a revision as functions show prints it with -o json or
// yaml (docs/cli.md): its manifest as stored, and its state here.
type revisionShown struct {
	Active    bool              `json:"active"`
	Signature *bundle.Signature `json:"signature,omitempty"`
	Trusted   *bool             `json:"trusted,omitempty"` // with bundle.trusted_keys: whether they accept it
	Manifest  bundle.Manifest   `json:"manifest"`
}

func showManifest(b *bundle.Bundle, active uint64, trusted []string, format outputFormat, out io.Writer) error {
	m := b.Manifest
	if format != "table" {
		r := revisionShown{Active: m.Revision == active, Signature: b.Signature, Manifest: m}
		if len(trusted) > 0 {
			ok := bundle.Verify(b, trusted) == nil
			r.Trusted = &ok
		}
		return encode(out, format, r)
	}
	state := ""
	if m.Revision == active {
		state = " (active)"
	}
	fmt.Fprintf(out, "revision: %d%s\ncreated: %s\nauthor: %s\nmessage: %s\nsignature: %s\n\nfunctions:\n",
		m.Revision, state, m.Created.UTC().Format(time.RFC3339Nano), orDash(m.Author), orDash(m.Message), signedText(b, trusted))
	printFunctions(b, out)
	fmt.Fprintln(out, "\nfiles:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, f := range m.Files {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", f.SHA256, f.Size, f.Path)
	}
	_ = tw.Flush()
	if len(m.Commands) > 0 {
		fmt.Fprintln(out, "\ncommands (paths on each worker's host, not in the bundle):")
		for _, c := range m.Commands {
			fmt.Fprintf(out, "  %s\n", c)
		}
	}
	return nil
}

func showFile(b *bundle.Bundle, name string, out io.Writer) error {
	if name == bundle.ManifestFile {
		raw, err := b.ManifestJSON()
		if err != nil {
			return err
		}
		_, err = out.Write(raw)
		return err
	}
	data, ok := b.Files[name]
	if !ok {
		var names []string
		for _, f := range b.Manifest.Files {
			names = append(names, f.Path)
		}
		return usagef("revision %d has no file %q; its files: %s, %s", b.Manifest.Revision, name, bundle.ManifestFile, strings.Join(names, ", "))
	}
	_, err := out.Write(data)
	return err
}

// functionLine is how diff shows a function.
func functionLine(f bundle.Function) string {
	s := fmt.Sprintf("%s %s %s priority %d", f.Kind, f.TriggerType, strings.Join(f.TriggerOptions, ","), f.Priority)
	if f.Policy != "" {
		s += " " + f.Policy
	}
	if f.Schedule != "" {
		s += " schedule " + f.Schedule
	}
	return s
}

// diffBundles prints what changed from a to b: the manifest's facts, the
// functions, the files, and a unified diff of every file that changed.
func diffBundles(a, b *bundle.Bundle, out io.Writer) {
	ma, mb := a.Manifest, b.Manifest
	fmt.Fprintf(out, "--- revision %d  %s  %s  %s\n", ma.Revision, ma.Created.UTC().Format(time.RFC3339), orDash(ma.Author), orDash(ma.Message))
	fmt.Fprintf(out, "+++ revision %d  %s  %s  %s\n", mb.Revision, mb.Created.UTC().Format(time.RFC3339), orDash(mb.Author), orDash(mb.Message))
	if sa, sb := signedText(a, nil), signedText(b, nil); sa != sb {
		fmt.Fprintf(out, "signature: %s -> %s\n", sa, sb)
	}

	fa, fb := map[string]bundle.Function{}, map[string]bundle.Function{}
	var refs []string
	for _, f := range ma.Functions {
		fa[f.Ref] = f
		refs = append(refs, f.Ref)
	}
	for _, f := range mb.Functions {
		fb[f.Ref] = f
		if _, ok := fa[f.Ref]; !ok {
			refs = append(refs, f.Ref)
		}
	}
	slices.Sort(refs)
	var lines []string
	for _, ref := range refs {
		x, inA := fa[ref]
		y, inB := fb[ref]
		switch {
		case !inA:
			lines = append(lines, fmt.Sprintf("+ %s: %s", ref, functionLine(y)))
		case !inB:
			lines = append(lines, fmt.Sprintf("- %s: %s", ref, functionLine(x)))
		case functionLine(x) != functionLine(y):
			lines = append(lines, fmt.Sprintf("~ %s: %s -> %s", ref, functionLine(x), functionLine(y)))
		}
	}
	printSection(out, "functions", lines)

	ha, hb := map[string]string{}, map[string]string{}
	var paths []string
	for _, f := range ma.Files {
		ha[f.Path] = f.SHA256
		paths = append(paths, f.Path)
	}
	for _, f := range mb.Files {
		hb[f.Path] = f.SHA256
		if _, ok := ha[f.Path]; !ok {
			paths = append(paths, f.Path)
		}
	}
	slices.Sort(paths)
	lines = lines[:0]
	var changed []string
	for _, p := range paths {
		x, inA := ha[p]
		y, inB := hb[p]
		switch {
		case !inA:
			lines = append(lines, "+ "+p)
		case !inB:
			lines = append(lines, "- "+p)
		case x != y:
			lines = append(lines, "~ "+p)
		default:
			continue
		}
		changed = append(changed, p)
	}
	printSection(out, "files", lines)
	if slices.Compare(ma.Commands, mb.Commands) != 0 {
		fmt.Fprintf(out, "\ncommands: %s -> %s\n", orDash(strings.Join(ma.Commands, " ")), orDash(strings.Join(mb.Commands, " ")))
	}
	for _, p := range changed {
		from, to := "a/"+p, "b/"+p
		if _, ok := a.Files[p]; !ok {
			from = "/dev/null"
		}
		if _, ok := b.Files[p]; !ok {
			to = "/dev/null"
		}
		fmt.Fprintln(out)
		fmt.Fprint(out, udiff.Unified(from, to, string(a.Files[p]), string(b.Files[p])))
	}
}

func printSection(out io.Writer, name string, lines []string) {
	if len(lines) == 0 {
		fmt.Fprintf(out, "\n%s: unchanged\n", name)
		return
	}
	fmt.Fprintf(out, "\n%s:\n", name)
	for _, l := range lines {
		fmt.Fprintf(out, "  %s\n", l)
	}
}
