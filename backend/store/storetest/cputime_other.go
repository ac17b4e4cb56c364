//go:build !unix

package storetest

import (
	"testing"
	"time"
)

// ReportCPU reports nothing where getrusage is missing.
func ReportCPU(*testing.B) func() { return func() {} }

// ProcessCPU is 0 where getrusage is missing.
func ProcessCPU(testing.TB) time.Duration { return 0 }
