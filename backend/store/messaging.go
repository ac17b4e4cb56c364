package store

import (
	"context"
	"fmt"
	"time"
)

// ThreadState is where a thread stands in the pharmacy's workflow:
// open → claimed → answered → closed, and back to open or claimed when the
// patient side writes again.
type ThreadState string

// Thread states.
const (
	ThreadOpen     ThreadState = "open"     // waiting for a pharmacist to pick it up
	ThreadClaimed  ThreadState = "claimed"  // a pharmacist (ClaimedBy) is on it
	ThreadAnswered ThreadState = "answered" // a pharmacist replied last
	ThreadClosed   ThreadState = "closed"   // done; a new patient message reopens it
)

// ThreadStates lists every state, in workflow order.
var ThreadStates = []ThreadState{ThreadOpen, ThreadClaimed, ThreadAnswered, ThreadClosed}

// Thread is a conversation about one patient between the patient side
// (the patient and caregivers with the message scope) and the pharmacists
// of the patient's pharmacy. Messages live beside it, ordered by Seq.
type Thread struct {
	ID         string
	PatientID  string
	PharmacyID string // routes the thread to this pharmacy's inbox
	Subject    string
	StartedBy  string // patient or account id
	State      ThreadState
	// StateSince is when the thread entered State; the inbox lists a state's
	// threads in this order.
	StateSince time.Time
	ClaimedBy  string // account id; "" while unclaimed
	// LastSeq is the Seq of the newest message (the store sets it).
	LastSeq int64
	// ReadThrough maps a participant (patient or account id) to the Seq
	// they have read through.
	ReadThrough map[string]int64
	// FirstResponseAt is when a pharmacist first wrote; zero until then.
	FirstResponseAt time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Version         int64
}

// Unread is how many messages participant has not read.
func (t Thread) Unread(participant string) int64 {
	return max(t.LastSeq-t.ReadThrough[participant], 0)
}

// Message is one message of a thread. (ThreadID, Seq) identifies it and
// orders the thread; (AuthorID, ClientMessageID) is its idempotency key.
type Message struct {
	ThreadID        string
	Seq             int64
	ClientMessageID string
	AuthorID        string // patient or account id
	AuthorRole      Role
	AuthorName      string
	Body            string // plain text
	SentAt          time.Time
}

// InboxChange is one entry of a pharmacy's inbox change feed: the thread as
// it is now, at the feed position of its latest change.
type InboxChange struct {
	Cursor int64
	Thread Thread
}

// ThreadIndexKey is the sortable key under which a listing holds a thread
// at time at: fixed-width nanoseconds, then the id. Backends use it for the
// patient index (at = CreatedAt) and the inbox (at = StateSince), and as
// the listing cursors.
func ThreadIndexKey(at time.Time, id string) string {
	return fmt.Sprintf("%020d:%s", at.UnixNano(), id)
}

// Messages stores threads, their messages, the per-patient thread list,
// the per-pharmacy inbox by state and the inbox change feed.
type Messages interface {
	// CreateThread stores t (Version 1, LastSeq 1) with first as its
	// message 1 (ThreadID and Seq set by the store), lists it under its
	// patient and in its pharmacy's inbox under t.State, and moves it to
	// the head of the inbox change feed, atomically. It is idempotent on
	// t.ID: when the thread exists it writes nothing and returns the stored
	// thread and its first message with created false.
	CreateThread(ctx context.Context, t Thread, first Message) (Thread, Message, bool, error)
	// GetThread returns the thread or ErrNotFound.
	GetThread(ctx context.Context, id string) (Thread, error)
	// AppendMessage adds m as the thread's next message (Seq = LastSeq+1)
	// and stores fn's result as the thread, with LastSeq and Version
	// advanced, atomically (fn may run more than once; it sees the thread
	// before the message). It is idempotent on (m.AuthorID,
	// m.ClientMessageID): when the thread already holds that message it
	// writes nothing, does not call fn, and returns the current thread and
	// the original message with created false. fn must not change ID,
	// PatientID or PharmacyID. Errors: ErrNotFound; fn's error (nothing
	// written); ErrConflict after too many concurrent writers.
	AppendMessage(ctx context.Context, threadID string, m Message, fn func(Thread) (Thread, error)) (Thread, Message, bool, error)
	// UpdateThread applies fn to the thread and stores the result with
	// Version incremented, keeping the inbox index and the change feed in
	// step, atomically (fn may run more than once). Same rules and errors
	// as AppendMessage.
	UpdateThread(ctx context.Context, id string, fn func(Thread) (Thread, error)) (Thread, error)
	// ListMessages returns up to limit of the thread's messages with Seq
	// greater than afterSeq, in Seq order. An unknown thread gives an
	// empty list.
	ListMessages(ctx context.Context, threadID string, afterSeq int64, limit int) ([]Message, error)
	// ListPatientThreads returns up to limit of the patient's threads,
	// newest first (by CreatedAt, then ID), whose ThreadIndexKey(CreatedAt,
	// ID) is below before ("" for the newest).
	ListPatientThreads(ctx context.Context, patientID, before string, limit int) ([]Thread, error)
	// ListInbox returns up to limit of the pharmacy's threads in state,
	// oldest first (by StateSince, then ID), whose
	// ThreadIndexKey(StateSince, ID) is above after ("" for the oldest).
	ListInbox(ctx context.Context, pharmacyID string, state ThreadState, after string, limit int) ([]Thread, error)
	// InboxChanges returns up to limit entries of the pharmacy's inbox
	// change feed with Cursor above after, oldest first. A thread appears
	// once, at its latest change. Every change made by CreateThread,
	// AppendMessage and UpdateThread moves the thread past every earlier
	// cursor.
	InboxChanges(ctx context.Context, pharmacyID string, after int64, limit int) ([]InboxChange, error)
	// InboxHead returns the newest cursor of the pharmacy's change feed
	// (0 when it is empty).
	InboxHead(ctx context.Context, pharmacyID string) (int64, error)
}
