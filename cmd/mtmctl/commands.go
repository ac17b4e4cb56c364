package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// callTimeout bounds every RPC mtmctl makes.
const callTimeout = 30 * time.Second

func runLogin(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "login", "--server URL --email E [--password-file F] [--token-file F]")
	r := addRemoteFlags(sys, fs)
	email := fs.String("email", sys.getenv("MTM_EMAIL"), "your account's e-mail (MTM_EMAIL)")
	pwFile := fs.String("password-file", "", "read the password from this `file` (else MTM_PASSWORD or stdin)")
	totp := fs.String("totp-code", "", "the 6-digit `code` of your authenticator app, when your account has a second factor")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"server": *r.server, "email": *email}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	server, err := checkServerURL(*r.server)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	path, err := r.path(sys)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	pw, err := password(sys, *pwFile, false)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	authc := mtmv1connect.NewAuthServiceClient(sys.http, server)
	var device string
	if old, err := loadSession(path); err == nil && old.Server == server && old.Email == *email {
		device = old.DeviceToken
	}
	res, err := authc.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: *email, Password: pw, DeviceToken: device, TotpCode: *totp}))
	if connect.CodeOf(err) == connect.CodeUnauthenticated && *totp == "" && strings.Contains(err.Error(), "second factor") {
		return errors.New("login: your account signs in with a second factor: add --totp-code (enrol one in the console, Your account)")
	}
	if connect.CodeOf(err) == connect.CodeUnauthenticated && *totp != "" {
		return errors.New("login: wrong e-mail, password or code (a code works once)")
	}
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		return errors.New("login: wrong e-mail or password")
	}
	if err != nil {
		return explain("login", err)
	}
	s := session{
		Server: server, Email: *email, AccountID: res.Msg.GetAccountId(),
		Role: roleName(res.Msg.GetRole()), PharmacyID: res.Msg.GetPharmacyId(),
		DeviceToken: res.Msg.GetDeviceToken(),
	}
	s.setTokens(res.Msg.GetTokens())
	if err := saveSession(path, s); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	fmt.Fprintf(sys.stdout, "signed in to %s as %s (%s, pharmacy %s); session saved in %s\n",
		server, *email, s.Role, s.PharmacyID, path)
	return nil
}

func runLogout(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "logout", "[--token-file F]")
	r := addRemoteFlags(sys, fs)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	path, err := r.path(sys)
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	s, err := loadSession(path)
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	server := s.Server
	if *r.server != "" {
		server = *r.server
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	authc := mtmv1connect.NewAuthServiceClient(sys.http, server)
	_, err = authc.Logout(ctx, connect.NewRequest(&mtmv1.LogoutRequest{RefreshToken: s.RefreshToken}))
	if err != nil && connect.CodeOf(err) != connect.CodeUnauthenticated && connect.CodeOf(err) != connect.CodeNotFound {
		return explain("logout", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	fmt.Fprintln(sys.stdout, "signed out")
	return nil
}

func runEnroll(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "enroll", "--given G --family F --dob YYYY-MM-DD --tz ZONE")
	r := addRemoteFlags(sys, fs)
	given := fs.String("given", "", "given name")
	family := fs.String("family", "", "family name")
	dob := fs.String("dob", "", "date of birth, YYYY-MM-DD")
	tz := fs.String("tz", "", "IANA time zone, e.g. America/Chicago")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"given": *given, "family": *family, "dob": *dob, "tz": *tz}); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	if _, err := time.Parse(time.DateOnly, *dob); err != nil {
		return fmt.Errorf("enroll: --dob %q is not a date like 1948-03-12", *dob)
	}
	if _, err := time.LoadLocation(*tz); err != nil || *tz == "" || *tz == "Local" {
		return fmt.Errorf("enroll: --tz %q is not an IANA time zone like America/Chicago", *tz)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{
		GivenName: *given, FamilyName: *family, DateOfBirth: *dob, TimeZone: *tz,
	}))
	if err != nil {
		return explain("enroll", err)
	}
	fmt.Fprintf(sys.stdout, "patient id:      %s\nactivation code: %s\nvalid until:     %s\n",
		res.Msg.GetPatient().GetId(), res.Msg.GetActivationCode(),
		res.Msg.GetActivationCodeExpiresAt().AsTime().Local().Format(time.RFC1123))
	return nil
}

func runActivationCode(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "activation-code", "<patient-id>")
	r := addRemoteFlags(sys, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("activation-code: want exactly one patient id")
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("activation-code: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.IssueActivationCode(ctx, connect.NewRequest(&mtmv1.IssueActivationCodeRequest{PatientId: pos[0]}))
	if err != nil {
		return explain("activation-code", err)
	}
	fmt.Fprintf(sys.stdout, "activation code: %s\nvalid until:     %s\n", res.Msg.GetActivationCode(),
		res.Msg.GetActivationCodeExpiresAt().AsTime().Local().Format(time.RFC1123))
	return nil
}

func runCreatePharmacist(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "create-pharmacist", "--email E --name N [--admin] [--password-file F]")
	r := addRemoteFlags(sys, fs)
	email := fs.String("email", "", "the new pharmacist's e-mail")
	name := fs.String("name", "", "the new pharmacist's display `name`")
	admin := fs.Bool("admin", false, "make the account a pharmacy admin")
	pwFile := fs.String("password-file", "", "read the new account's password from this `file` (else MTM_PASSWORD or stdin)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"email": *email, "name": *name}); err != nil {
		return fmt.Errorf("create-pharmacist: %w", err)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("create-pharmacist: %w", err)
	}
	pw, err := password(sys, *pwFile, true)
	if err != nil {
		return fmt.Errorf("create-pharmacist: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.CreatePharmacist(ctx, connect.NewRequest(&mtmv1.CreatePharmacistRequest{
		Email: *email, Password: pw, DisplayName: *name, Admin: *admin,
	}))
	if connect.CodeOf(err) == connect.CodeAlreadyExists {
		return fmt.Errorf("create-pharmacist: an account with e-mail %s already exists", *email)
	}
	if err != nil {
		return explain("create-pharmacist", err)
	}
	fmt.Fprintf(sys.stdout, "account %s created for %s\n", res.Msg.GetAccountId(), *email)
	return nil
}

func runPatients(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "patients", "[--name PREFIX] [--dob YYYY-MM-DD] [--limit N]")
	r := addRemoteFlags(sys, fs)
	prefix := fs.String("name", "", "given- or family-name `prefix` (case-insensitive); with --dob, the whole family name")
	dob := fs.String("dob", "", "date of birth (YYYY-MM-DD): with --name an exact lookup by family name and birth date")
	limit := fs.Int("limit", 100, "show at most `N` patients")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return errors.New("patients: --limit must be at least 1")
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("patients: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var patients []*mtmv1.Patient
	token := ""
	for len(patients) < *limit {
		res, err := c.care.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{
			NamePrefix: *prefix, DateOfBirth: *dob, PageSize: int32(min(*limit-len(patients), 200)), PageToken: token,
		}))
		if err != nil {
			return explain("patients", err)
		}
		patients = append(patients, res.Msg.GetPatients()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(patients) == 0 {
		fmt.Fprintln(sys.stdout, "no patients found")
		return nil
	}
	tw := tabwriter.NewWriter(sys.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tBORN\tTIME ZONE\tACTIVATED")
	for _, p := range patients[:min(len(patients), *limit)] {
		activated := "no"
		if p.GetActivatedAt() != nil {
			activated = p.GetActivatedAt().AsTime().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s, %s\t%s\t%s\t%s\n", p.GetId(), p.GetFamilyName(), p.GetGivenName(),
			p.GetDateOfBirth(), p.GetTimeZone(), activated)
	}
	return tw.Flush()
}

func runRecord(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "record", "<patient-id>")
	r := addRemoteFlags(sys, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("record: want exactly one patient id")
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: pos[0]}))
	if err != nil {
		return explain("record", err)
	}
	return printRecord(sys.stdout, res.Msg)
}

// roleName is the role as people say it: "pharmacy admin".
func roleName(r mtmv1.Role) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_")), "_", " ")
}

// runDeletePatient erases a patient for good (CareService.DeletePatient,
// pharmacy admins): --confirm repeats the patient's family name.
func runDeletePatient(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "delete-patient", "<patient-id> --confirm FAMILY-NAME")
	r := addRemoteFlags(sys, fs)
	confirm := fs.String("confirm", "", "the patient's family `name`, typed again")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("delete-patient: want exactly one patient id")
	}
	if err := required(map[string]string{"confirm": *confirm}); err != nil {
		return fmt.Errorf("delete-patient: %w (the patient's family name, typed again)", err)
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("delete-patient: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.care.DeletePatient(ctx, connect.NewRequest(&mtmv1.DeletePatientRequest{PatientId: pos[0], ConfirmFamilyName: *confirm}))
	if err != nil {
		return explain("delete-patient", err)
	}
	kinds := make([]string, 0, len(res.Msg.GetErased()))
	for k, n := range res.Msg.GetErased() {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	fmt.Fprintf(sys.stdout, "patient %s erased (%s)\n", pos[0], strings.Join(kinds, ", "))
	return nil
}
