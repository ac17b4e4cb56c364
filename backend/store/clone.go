package store

import (
	"slices"
	"time"
)

// Clone returns a deep copy of p: no slice of the copy shares memory with
// p, so either can be changed in place without the other seeing it.
// Strings and times are shared (they are immutable). The slices nested in
// a list's elements (each medicine's History, ...) share one new array per
// list, each with its capacity cut to its length, so that appending to one
// reallocates it instead of overwriting its neighbour.
func (p Patient) Clone() Patient {
	c := p
	c.Medications = slices.Clone(p.Medications)
	cloneInner(c.Medications, func(m *Medication) *[]MedicationChange { return &m.History })
	c.Allergies = slices.Clone(p.Allergies)
	c.Fills = slices.Clone(p.Fills)
	c.ActionItems = slices.Clone(p.ActionItems)
	cloneInner(c.ActionItems, func(a *ActionItem) *[]Progress { return &a.Progress })
	c.Grants = slices.Clone(p.Grants)
	cloneInner(c.Grants, func(g *Grant) *[]Scope { return &g.Scopes })
	c.Devices = slices.Clone(p.Devices)
	c.DoseSchedules = slices.Clone(p.DoseSchedules)
	cloneInner(c.DoseSchedules, func(d *DoseSchedule) *[]int { return &d.TimesOfDay })
	cloneInner(c.DoseSchedules, func(d *DoseSchedule) *[]time.Weekday { return &d.DaysOfWeek })
	c.FollowUps = slices.Clone(p.FollowUps)
	c.Reviews = slices.Clone(p.Reviews)
	cloneInner(c.Reviews, func(r *Review) *[]string { return &r.Problems })
	cloneInner(c.Reviews, func(r *Review) *[]CodedProblem { return &r.CodedProblems })
	cloneInner(c.Reviews, func(r *Review) *[]Intervention { return &r.Interventions })
	c.SelfReports = slices.Clone(p.SelfReports)
	c.Conditions = slices.Clone(p.Conditions)
	return c
}

// cloneInner replaces the slice inner(&s[i]) of every element of s with a
// copy, all copies in one new array; nil stays nil and empty stays empty.
func cloneInner[T, E any](s []T, inner func(*T) *[]E) {
	n := 0
	for i := range s {
		n += len(*inner(&s[i]))
	}
	var buf []E
	for i := range s {
		in := inner(&s[i])
		if *in == nil {
			continue
		}
		if buf == nil {
			buf = make([]E, 0, n)
		}
		start := len(buf)
		buf = append(buf, *in...)
		*in = buf[start:len(buf):len(buf)]
	}
}
