package suite

import (
	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// The cost of sealing PHI at rest (Config.SealCost): the same store run
// twice in one mtmload run, sealed and with mtmd --no-seal.
const (
	// UnsealedSuffix marks the unsealed run of a store ("bolt unsealed").
	UnsealedSuffix = " unsealed"
	// FigureSealPML is the 20-medicine PML read rate sealed / unsealed,
	// each as a multiple of its run's bare-handler rate.
	FigureSealPML = "PHI sealing: 20-medicine PML read rate (vs bare handler), sealed / unsealed"
	// FigureSealBurst is the reminder burst drain rate sealed / unsealed,
	// each as a multiple of its run's raw SDK send rate.
	FigureSealBurst = "PHI sealing: reminder burst drain rate (vs raw SDK), sealed / unsealed"
	// The same without the yardsticks.
	FigureSealPMLRaw   = "PHI sealing: 20-medicine PML read calls/s, sealed / unsealed (raw)"
	FigureSealBurstRaw = "PHI sealing: reminder burst reminders/s, sealed / unsealed (raw)"
)

// sealFlags are mtmd's flags for the key-encryption key file and, for the
// unsealed run, --no-seal (allowed with the --bench-endpoints every load
// test mtmd has).
func sealFlags(kekFile string, noSeal bool) []string {
	flags := []string{"--kek-file", kekFile}
	if noSeal {
		flags = append(flags, "--no-seal")
	}
	return flags
}

// addSealCost adds to the sealed run its rates over the unsealed run's
// (1.00: sealing costs nothing; the target is ≥ 0.95). The two runs are
// minutes apart on a machine whose load drifts, so each rate is first
// taken relative to the yardstick measured in its own run (the PML read
// to the bare handler, the burst to the raw SDK send rate); the raw
// ratios are reported beside them.
func addSealCost(sealed *loadtest.StoreRun, unsealed loadtest.StoreRun) {
	if s, ok := findPhase(*sealed, scenario.PhasePML20); ok && len(s.Ops) > 0 {
		if u, ok := findPhase(unsealed, scenario.PhasePML20); ok && len(u.Ops) > 0 && u.Ops[0].PerSec > 0 {
			sealed.Figures[FigureSealPMLRaw] = s.Ops[0].PerSec / u.Ops[0].PerSec
			if u.Ops[0].RateVsFloor > 0 && s.Ops[0].RateVsFloor > 0 {
				sealed.Figures[FigureSealPML] = s.Ops[0].RateVsFloor / u.Ops[0].RateVsFloor
			}
		}
	}
	const drain = "reminder burst: drained reminders/s"
	if s, u := sealed.Figures[drain], unsealed.Figures[drain]; s > 0 && u > 0 {
		sealed.Figures[FigureSealBurstRaw] = s / u
	}
	if s, u := sealed.Figures[FigureBurstVsSDK], unsealed.Figures[FigureBurstVsSDK]; s > 0 && u > 0 {
		sealed.Figures[FigureSealBurst] = s / u
	}
}
