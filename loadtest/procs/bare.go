package procs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// BareFlag is the flag that makes the load generator's binary serve the
// bare handler instead of running a load test (see ServeBare).
const BareFlag = "--bare-server"

// BareCompressMinBytes is the bare server's compression threshold: mtmd's.
const BareCompressMinBytes = 8 << 10

// bareBench is BenchService with nothing in front of it: no interceptors,
// no authentication, no telemetry.
type bareBench struct {
	mtmv1connect.UnimplementedBenchServiceHandler
}

func (bareBench) Empty(context.Context, *connect.Request[mtmv1.EmptyRequest]) (*connect.Response[mtmv1.EmptyResponse], error) {
	return connect.NewResponse(&mtmv1.EmptyResponse{}), nil
}

// ReadAnswers reads the answers StartBare wrote for the bare server.
func ReadAnswers(file string) (Answers, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("procs.ReadAnswers: %w", err)
	}
	var a Answers
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("procs.ReadAnswers: %s: %w", file, err)
	}
	return a, nil
}

// ServeBare serves the bare connect-go BenchService (empty handler, no
// interceptors, default options but the compression threshold) on addr, over h2c and HTTP/1.1 like mtmd,
// until ctx ends. It is the floor every phase of the load test is compared
// with: what Connect itself costs per call on this machine.
//
// It also replays answers: for each procedure in answers, a connect-go
// handler with nothing in front answers every call with the recorded
// bytes of the set the request's ReplayHeader names. That is the floor of
// a call that carries an answer (a 20-medicine PML is 5–6 KB where Empty's
// is none): what Connect costs to deliver those bytes, without
// authentication, store, audit or encoding.
func ServeBare(ctx context.Context, addr string, answers Answers) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("procs.ServeBare: %w", err)
	}
	mux := http.NewServeMux()
	// Default options but one: responses under 8 KiB are not compressed, as
	// mtmd does (cmd/mtmd compressMinBytes). With connect-go's default every
	// response, even an empty one, is gzipped for a client that accepts it,
	// and the floor would pay for work mtmd skips.
	mux.Handle(mtmv1connect.NewBenchServiceHandler(bareBench{}, connect.WithCompressMinBytes(BareCompressMinBytes)))
	for procedure, sets := range answers.byProcedure() {
		mux.Handle(procedure, connect.NewUnaryHandler(procedure,
			func(_ context.Context, req *connect.Request[Answer]) (*connect.Response[Answer], error) { // the request body is not read
				a, ok := sets[req.Header().Get(ReplayHeader)]
				if !ok {
					return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no %s answer recorded for %s %q", procedure, ReplayHeader, req.Header().Get(ReplayHeader)))
				}
				return connect.NewResponse(&a), nil
			},
			connect.WithCodec(replayCodec{"proto"}), connect.WithCodec(replayCodec{"json"}),
			connect.WithCompressMinBytes(BareCompressMinBytes)))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("procs.ServeBare: %w", err)
	}
	return nil
}

// ReplayHeader names the recorded set a replayed call answers from (the
// same procedure is recorded for several patients: a 20-medicine patient's
// PML read, a median patient's app open).
const ReplayHeader = "Mtm-Replay"

// Answers are recorded answers for the bare server to replay, keyed by
// set (ReplayHeader) and procedure ("/mtm.v1.PatientService/GetMedicationList").
type Answers map[string]map[string]Answer

// Answer is one response message as each codec writes it.
type Answer struct {
	Proto []byte `json:"proto"`
	JSON  []byte `json:"json"`
}

// Add records the answer of procedure in set.
func (a Answers) Add(set, procedure string, ans Answer) {
	if a[set] == nil {
		a[set] = map[string]Answer{}
	}
	a[set][procedure] = ans
}

// byProcedure turns the sets inside out: procedure → set → answer.
func (a Answers) byProcedure() map[string]map[string]Answer {
	out := map[string]map[string]Answer{}
	for set, procs := range a {
		for procedure, ans := range procs {
			if out[procedure] == nil {
				out[procedure] = map[string]Answer{}
			}
			out[procedure][set] = ans
		}
	}
	return out
}

// replayCodec hands connect-go the recorded bytes of an answer as they
// are, under the name of the codec that wrote them, and reads nothing
// from a request.
type replayCodec struct{ name string }

func (c replayCodec) Name() string { return c.name }

func (c replayCodec) Marshal(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

// MarshalAppend copies the answer into Connect's pooled buffer, as mtmd's
// codecs do with a kept answer. (Connect returns the slice Marshal gives
// it to its pool, so handing it the recorded slice itself would let later
// calls write over the recording.)
func (c replayCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	a, ok := v.(*Answer)
	if !ok {
		return nil, fmt.Errorf("replay codec: cannot marshal %T", v)
	}
	if c.name == "json" {
		return append(dst, a.JSON...), nil
	}
	return append(dst, a.Proto...), nil
}

func (replayCodec) Unmarshal([]byte, any) error { return nil }

// Bare is a running bare server.
type Bare struct {
	*Process
	URL string
}

// StartBare runs `bin --bare-server ADDR [ANSWERS]` (bin is a binary that
// calls ServeBare for that flag: mtmload itself) on a free loopback port in
// dir, with answers to replay written to dir/answers.json, and returns once
// it answers.
func StartBare(ctx context.Context, bin, dir string, answers Answers) (*Bare, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("procs.StartBare: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{BareFlag, addr}
	if len(answers) > 0 {
		file := filepath.Join(dir, "answers.json")
		b, err := json.Marshal(answers)
		if err == nil {
			err = os.WriteFile(file, b, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("procs.StartBare: %w", err)
		}
		args = append(args, file)
	}
	p, err := start("bare", bin, dir, args, nil)
	if err != nil {
		return nil, err
	}
	b := &Bare{Process: p, URL: "http://" + addr}
	client := mtmv1connect.NewBenchServiceClient(&http.Client{Timeout: time.Second}, b.URL)
	err = p.waitUntil(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := client.Empty(ctx, connect.NewRequest(&mtmv1.EmptyRequest{}))
		return err
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return b, nil
}
