// Package scenario holds the load test's user journeys, each a
// loadtest.Phase built on an Env: the empty-RPC baseline, reading a
// 20-medicine Personal Medication List, the morning app open (refresh,
// PML, MAP, threads), dose confirmations, caregiver questions answered by
// pharmacists while both watch live streams, and the 8:00 reminder burst.
// Every call goes through the generated Connect clients.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/seed"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// Clients are the generated clients of one device.
type Clients struct {
	Auth    mtmv1connect.AuthServiceClient
	Patient mtmv1connect.PatientServiceClient
	Care    mtmv1connect.CareServiceClient
	Msg     mtmv1connect.MessagingServiceClient
	Bench   mtmv1connect.BenchServiceClient
}

// NewClients builds the clients of every device for one server.
func NewClients(d *loadtest.Devices) []Clients {
	out := make([]Clients, d.Len())
	for i := range out {
		h, u, o := d.HTTP(i), d.URL(), d.Options()
		out[i] = Clients{
			Auth:    mtmv1connect.NewAuthServiceClient(h, u, o...),
			Patient: mtmv1connect.NewPatientServiceClient(h, u, o...),
			Care:    mtmv1connect.NewCareServiceClient(h, u, o...),
			Msg:     mtmv1connect.NewMessagingServiceClient(h, u, o...),
			Bench:   mtmv1connect.NewBenchServiceClient(h, u, o...),
		}
	}
	return out
}

// session is one principal's current tokens. A session is used by one
// worker at a time (scenarios partition principals among workers), except
// that the access token may be read concurrently.
type session struct {
	mu      sync.Mutex
	refresh string
	access  string
}

func (s *session) get() (refresh, access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh, s.access
}

func (s *session) set(refresh, access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh, s.access = refresh, access
}

// Env is a seeded population on one or more servers (instances of one
// deployment) and the devices that talk to them.
type Env struct {
	Pop seed.Population
	// servers[k][i] are device i's clients for server k.
	servers [][]Clients

	patients    []session
	pharmacists []session
	caregivers  []session
	// rr hands out devices round robin for calls that are not tied to a
	// principal's phone.
	rr atomic.Uint64
}

// NewEnv builds an Env for pop on the servers the device pools point at
// (one pool per mtmd instance). Sessions start from the population's
// refresh tokens; call SignIn before scenarios that need access tokens.
func NewEnv(pop seed.Population, pools ...*loadtest.Devices) (*Env, error) {
	if len(pools) == 0 {
		return nil, errors.New("scenario.NewEnv: no server")
	}
	e := &Env{Pop: pop,
		patients:    make([]session, len(pop.Patients)),
		pharmacists: make([]session, len(pop.Pharmacists)),
		caregivers:  make([]session, len(pop.Caregivers)),
	}
	for _, d := range pools {
		e.servers = append(e.servers, NewClients(d))
	}
	for i, p := range pop.Patients {
		e.patients[i].refresh = p.Refresh
	}
	for i, a := range pop.Pharmacists {
		e.pharmacists[i].refresh = a.Refresh
	}
	for i, a := range pop.Caregivers {
		e.caregivers[i].refresh = a.Refresh
	}
	return e, nil
}

// Servers is how many instances the Env talks to.
func (e *Env) Servers() int { return len(e.servers) }

// device returns the clients of the phone of principal number i on server k.
func (e *Env) device(k, i int) Clients {
	s := e.servers[k%len(e.servers)]
	return s[i%len(s)]
}

// refresh spends s's refresh token on server k through device dev and
// stores the new pair.
func (e *Env) refresh(ctx context.Context, k, dev int, s *session) error {
	rt, _ := s.get()
	ctx, cancel := loadtest.WithDeadline(ctx)
	defer cancel()
	res, err := e.device(k, dev).Auth.Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: rt}))
	if err != nil {
		return err
	}
	t := res.Msg.GetTokens()
	s.set(t.GetRefreshToken(), t.GetAccessToken())
	return nil
}

// SignIn refreshes the sessions of the given patients, of every
// pharmacist and of the first `caregivers` caregivers (those Conversation
// uses), with `workers` concurrent calls, so that they hold access tokens.
// Calls are not measured (ctx carries no Recorder).
func (e *Env) SignIn(ctx context.Context, patients []int, caregivers, workers int) error {
	type job struct {
		dev int
		s   *session
	}
	var jobs []job
	for _, i := range patients {
		jobs = append(jobs, job{i, &e.patients[i]})
	}
	for i := range e.pharmacists {
		jobs = append(jobs, job{i, &e.pharmacists[i]})
	}
	for i := range min(caregivers, len(e.caregivers)) {
		jobs = append(jobs, job{i, &e.caregivers[i]})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, max(workers, 1))
	for w := range errs {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= len(jobs) || ctx.Err() != nil {
					return
				}
				if err := e.refresh(ctx, 0, jobs[n].dev, jobs[n].s); err != nil {
					errs[w] = fmt.Errorf("scenario.SignIn: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// Spread returns n members of set evenly spaced across it (all of set when
// n ≤ 0 or n ≥ len(set)), in set's order.
func Spread(set []int, n int) []int {
	if n <= 0 || n >= len(set) {
		return set
	}
	out := make([]int, n)
	for k := range out {
		out[k] = set[k*len(set)/n]
	}
	return out
}

// PatientsWithMedicines returns the indexes of patients with n medicines.
func (e *Env) PatientsWithMedicines(n int) []int {
	var out []int
	for i, p := range e.Pop.Patients {
		if p.Medicines == n {
			out = append(out, i)
		}
	}
	return out
}

// ErrNotServed means the server answers a feature's RPCs with
// unimplemented: that scenario cannot run against this build, and the run
// fails (RequireServed) rather than leave it out.
var ErrNotServed = errors.New("not served by this server")

// Probe calls one RPC of a feature ("messaging", "doses") once, unmeasured,
// as the first signed-in patient, and returns ErrNotServed when the server
// answers unimplemented. Other errors are returned as they are.
func (e *Env) Probe(ctx context.Context, feature string) error {
	i := -1
	for k := range e.patients {
		if _, a := e.patients[k].get(); a != "" && len(e.Pop.Patients[k].DoseSchedules) > 0 {
			i = k
			break
		}
	}
	if i < 0 {
		return errors.New("scenario.Probe: no signed-in patient")
	}
	_, access := e.patients[i].get()
	pt := e.Pop.Patients[i]
	c := e.device(0, i)
	ctx, cancel := loadtest.WithDeadline(ctx)
	defer cancel()
	var err error
	switch feature {
	case "messaging":
		_, err = c.Msg.ListThreads(ctx, loadtest.Authed(&mtmv1.ListThreadsRequest{PatientId: pt.ID}, access))
	case "doses":
		_, err = c.Patient.RecordDose(ctx, loadtest.Authed(&mtmv1.RecordDoseRequest{
			PatientId: pt.ID, OccurrenceId: DoseOccurrenceID(pt.DoseSchedules[0], time.Now(), time.UTC),
			Outcome: mtmv1.DoseOutcome_DOSE_OUTCOME_TAKEN,
		}, access))
	default:
		return fmt.Errorf("scenario.Probe: unknown feature %q", feature)
	}
	if connect.CodeOf(err) == connect.CodeUnimplemented {
		return fmt.Errorf("%s: %w", feature, ErrNotServed)
	}
	return err
}

// Features are the features Probe knows, each measured by a phase.
var Features = []string{"messaging", "doses"}

// RequireServed probes every feature and fails when the server answers
// any of them with unimplemented: a phase that cannot run is a failed
// run, not a row left out of the report.
func (e *Env) RequireServed(ctx context.Context) error {
	var errs []error
	for _, f := range Features {
		if err := e.Probe(ctx, f); errors.Is(err, ErrNotServed) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scenario.RequireServed: %w", err)
	}
	return nil
}

// OpSendToWatcher is the derived operation the messaging phase records:
// from SendMessage's start on one instance to the message's arrival on a
// WatchThread stream opened on another.
const OpSendToWatcher = "send→watcher"

// OpAnswerToWatcher is the part of OpSendToWatcher after SendMessage
// answered, for the messages that had not reached their watcher by then.
const OpAnswerToWatcher = "answer→watcher"
