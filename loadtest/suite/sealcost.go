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
	// FigureSealPML is the 20-medicine PML read rate sealed / unsealed.
	FigureSealPML = "PHI sealing: 20-medicine PML read rate, sealed / unsealed"
	// FigureSealBurst is the reminder burst drain rate sealed / unsealed.
	FigureSealBurst = "PHI sealing: reminder burst drain rate, sealed / unsealed"
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
// (1.00: sealing costs nothing; the target is ≥ 0.95).
func addSealCost(sealed *loadtest.StoreRun, unsealed loadtest.StoreRun) {
	if s, ok := findPhase(*sealed, scenario.PhasePML20); ok && len(s.Ops) > 0 {
		if u, ok := findPhase(unsealed, scenario.PhasePML20); ok && len(u.Ops) > 0 && u.Ops[0].PerSec > 0 {
			sealed.Figures[FigureSealPML] = s.Ops[0].PerSec / u.Ops[0].PerSec
		}
	}
	const drain = "reminder burst: drained reminders/s"
	if s, u := sealed.Figures[drain], unsealed.Figures[drain]; s > 0 && u > 0 {
		sealed.Figures[FigureSealBurst] = s / u
	}
}
