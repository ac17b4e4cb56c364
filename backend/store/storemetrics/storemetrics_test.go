package storemetrics

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
)

// TestEveryOperationIsMeasured fails when store.Store gains a method that
// operations.go does not wrap (it would pass through unmeasured).
func TestEveryOperationIsMeasured(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "operations.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wrapped []string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil {
			wrapped = append(wrapped, fn.Name.Name)
		}
	}
	st := reflect.TypeFor[store.Store]()
	ctxType := reflect.TypeFor[context.Context]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		if m.Type.NumIn() == 0 || m.Type.In(0) != ctxType {
			continue // not a store operation (Close, ReminderShards)
		}
		if name := m.Name; !slices.Contains(wrapped, name) {
			t.Errorf("store.Store.%s is not measured: add its wrapper to operations.go", name)
		}
	}
}

// smallDisk mounts a tmpfs of size bytes (root only; the test is skipped
// otherwise) and unmounts it when the test ends.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestWhatCountsAsAFailure fills a real disk under bbolt: the write that
// does not fit fails with an error that names the cause and counts as a
// disk failure of that operation; contract answers such as not found
// count as nothing; a refused sign-in attempt counts under its throttle's
// name only.
func TestWhatCountsAsAFailure(t *testing.T) {
	dir := smallDisk(t, 256<<10)
	db, err := bolt.Open(filepath.Join(dir, "mtm.db"), bolt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := prometheus.NewRegistry()
	s, err := Wrap(db, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var full error
	for i := range 1000 {
		if full = s.CreatePharmacy(ctx, store.Pharmacy{ID: fmt.Sprint("ph-", i), Name: strings.Repeat("x", 4000), CreatedAt: time.Now()}); full != nil {
			break
		}
	}
	if !errors.Is(full, store.ErrUnavailable) || !errors.Is(full, syscall.ENOSPC) || !strings.Contains(full.Error(), "no space left on device") {
		t.Fatalf("write on a full disk: %v, want store.ErrUnavailable naming ENOSPC", full)
	}
	if got := counterValue(t, s.errors.WithLabelValues("CreatePharmacy", "disk")); got != 1 {
		t.Errorf(`%s{operation="CreatePharmacy",kind="disk"} = %v, want 1`, MetricErrors, got)
	}

	if _, err := s.GetPharmacy(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPharmacy(unknown) = %v", err)
	}
	if err := s.CreatePharmacy(ctx, store.Pharmacy{ID: "ph-0", Name: "again"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("CreatePharmacy(existing) = %v", err)
	}
	if g := gathered(t, s.errors); strings.Count(g, "label:") != 2 {
		t.Errorf("%s holds more than the disk failure: %s", MetricErrors, g)
	}
	if c := histogramCount(t, reg, "GetPharmacy"); c != 1 {
		t.Errorf("%s{operation=GetPharmacy} count = %d, want 1", MetricDuration, c)
	}

	db2Dir := t.TempDir()
	db2, err := bolt.Open(filepath.Join(db2Dir, "mtm.db"), bolt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	s2, err := Wrap(db2, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := "login:account:3f9a0c1bd2"
	now := time.Now()
	for range 3 {
		if _, _, err := s2.Allow(ctx, key, 2, time.Minute, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := counterValue(t, s2.throttleRefusals.WithLabelValues("login:account")); got != 1 {
		t.Errorf(`%s{throttle="login:account"} = %v, want 1 (third of a limit of 2)`, MetricThrottleRefusals, got)
	}
	if strings.Contains(gathered(t, s2.throttleRefusals), "3f9a0c1bd2") {
		t.Error("a throttle key became a label value")
	}
}

func TestThrottleName(t *testing.T) {
	for key, want := range map[string]string{
		"login:account:abc":      "login:account",
		"login:addr:2001:db8::1": "login:addr",
		"activate:code:ZZZ":      "activate:code",
		"signup:ana@example.org": "other",
		"k":                      "other",
		"Login:Addr:1.2.3.4":     "other",
	} {
		if got := throttleName(key); got != want {
			t.Errorf("throttleName(%q) = %q, want %q", key, got, want)
		}
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, op string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != MetricDuration {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func gathered(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(mfs)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
