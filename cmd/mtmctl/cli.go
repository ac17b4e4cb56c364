package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// system is everything mtmctl takes from its process, injected so tests
// run commands in-process.
type system struct {
	getenv        func(string) string
	stdin         io.Reader
	stdout        io.Writer
	stderr        io.Writer
	userConfigDir func() (string, error)
	now           func() time.Time
	http          *http.Client
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments
	summary string
	run     func(ctx context.Context, sys system, args []string) error
}

func commands() []command {
	return []command{
		{"bootstrap", "--data-dir DIR --pharmacy NAME --email E --name N [--password-file F]",
			"create a pharmacy and its first pharmacy admin directly in the store (mtmd must be stopped)", runBootstrap},
		{"login", "--server URL --email E [--token-file F]",
			"sign in as staff; password from MTM_PASSWORD, --password-file or stdin", runLogin},
		{"logout", "[--token-file F]", "end the saved session and delete its tokens", runLogout},
		{"enroll", "--given G --family F --dob YYYY-MM-DD --tz ZONE",
			"enroll a patient; prints the patient id and a one-time activation code", runEnroll},
		{"activation-code", "<patient-id>", "issue a new activation code (the old one stops working)", runActivationCode},
		{"create-pharmacist", "--email E --name N [--admin] [--password-file F]",
			"create a pharmacist account in your pharmacy (pharmacy admins only)", runCreatePharmacist},
		{"patients", "[--name PREFIX] [--dob YYYY-MM-DD] [--limit N]", "search your pharmacy's patients", runPatients},
		{"delete-patient", "<patient-id> --confirm FAMILY-NAME", "erase a patient for good: record, messages, reminders, grants, data key (pharmacy admins)", runDeletePatient},
		{"record", "<patient-id>", "print a patient's medication list (PML) and action plan (MAP)", runRecord},
		{"inbox", "[--state open|claimed|answered|closed] [--limit N]", "list your pharmacy's message threads", runInbox},
		{"thread", "<thread-id>", "print a thread's messages and mark them read", runThread},
		{"claim", "<thread-id>", "take an open thread", runClaim},
		{"reply", "<thread-id> [--body TEXT]", "reply to a thread (body from --body or stdin)", runReply},
		{"close", "<thread-id>", "close a thread", runClose},
		{"call", "<Service/Method> [JSON|-]",
			"call any unary method of the API as the signed-in user, request and answer in JSON (e.g. CareService/AddMedication)", runCall},
		{"export", "<patient-id> --format pdf|fhir --out FILE",
			"write a patient's CMS standardized-format PDF (the written CMR summary) or FHIR Bundle to a file", runExport},
		{"worklist", "cmr|below|followups [--due-by YYYY-MM-DD] [--limit N]",
			"list your pharmacy's patients due for a CMR, below 80% PDC, or with an overdue follow-up", runWorklist},
		{"condition", "<patient-id> --kind hospice|esrd|inpatient|snf --from YYYY-MM-DD [--through YYYY-MM-DD] [--note TEXT]",
			"record hospice, end-stage renal disease or a hospital/skilled-nursing stay (the adherence measures read them)", runCondition},
		{"end-condition", "<patient-id> <condition-id> --through YYYY-MM-DD", "set the end (discharge) of an ongoing condition", runEndCondition},
		{"remove-condition", "<patient-id> <condition-id>", "remove a condition entered in error", runRemoveCondition},
		{"reindex", "--data-dir DIR|--redis-url URL --pharmacy ID",
			"recompute the pharmacy's work-list index from the records (after an upgrade; with bbolt, mtmd must be stopped)", runReindex},
		{"reencrypt", "--redis-url URL --kek-file F|--kek-uri URI | --data-dir DIR [--rotate] [--batch N] [--resume CURSOR]",
			"seal the PHI at rest under the current keys (after an upgrade or a KEK rotation; --rotate: new data keys), step by step, resumable", runReencrypt},
		{"keys", "list|rotate|retire [--kid KID] --redis-url URL --signing-key-wrap-file F | --signing-key-dir DIR", "list, rotate or retire the access-token signing keys, in the store or a directory (running servers reload them)", runKeys},
	}
}

// run dispatches args (without the program name) to a subcommand.
func run(ctx context.Context, args []string, sys system) error {
	if len(args) == 0 || slices.Contains([]string{"help", "-h", "--help", "-help"}, args[0]) {
		usage(sys.stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, sys, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(sys.stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: mtmctl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-18s %s\n  %-18s   %s\n", c.name, c.summary, "", c.args)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands that talk to a server take --server URL (or MTM_SERVER; default: the server")
	fmt.Fprintln(w, "of the saved session) and --token-file F (or MTM_TOKEN_FILE; default: mtmctl/session.json")
	fmt.Fprintln(w, "under your user config directory). Run `mtmctl <command> -h` for its flags.")
}

// newFlags returns a flag set for a subcommand that prints its help to
// sys.stderr.
func newFlags(sys system, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(sys.stderr)
	fs.Usage = func() {
		fmt.Fprintf(sys.stderr, "Usage: mtmctl %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags that may come before or after the positional
// arguments, and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// required lists every required flag left empty, together.
func required(fields map[string]string) error {
	var missing []string
	for name, v := range fields {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("missing %s", strings.Join(missing, ", "))
}
