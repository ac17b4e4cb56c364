package store

import "slices"

// Clone returns a deep copy of p: no slice of the copy shares memory with
// p, so either can be changed in place without the other seeing it.
// Strings and times are shared (they are immutable).
func (p Patient) Clone() Patient {
	c := p
	c.Medications = cloneEach(p.Medications, func(m Medication) Medication {
		m.History = slices.Clone(m.History)
		return m
	})
	c.Allergies = slices.Clone(p.Allergies)
	c.Fills = slices.Clone(p.Fills)
	c.ActionItems = cloneEach(p.ActionItems, func(a ActionItem) ActionItem {
		a.Progress = slices.Clone(a.Progress)
		return a
	})
	c.Grants = cloneEach(p.Grants, func(g Grant) Grant {
		g.Scopes = slices.Clone(g.Scopes)
		return g
	})
	c.Devices = slices.Clone(p.Devices)
	c.DoseSchedules = cloneEach(p.DoseSchedules, func(d DoseSchedule) DoseSchedule {
		d.TimesOfDay = slices.Clone(d.TimesOfDay)
		d.DaysOfWeek = slices.Clone(d.DaysOfWeek)
		return d
	})
	c.FollowUps = slices.Clone(p.FollowUps)
	c.Reviews = cloneEach(p.Reviews, func(r Review) Review {
		r.Problems = slices.Clone(r.Problems)
		r.CodedProblems = slices.Clone(r.CodedProblems)
		r.Interventions = slices.Clone(r.Interventions)
		return r
	})
	c.SelfReports = slices.Clone(p.SelfReports)
	c.Conditions = slices.Clone(p.Conditions)
	return c
}

// cloneEach copies s with f applied to every element; nil stays nil and
// empty stays empty.
func cloneEach[T any](s []T, f func(T) T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}
