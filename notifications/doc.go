// Package notifications is the reminder side of the backend: when to remind
// a patient (package schedule), how a push reaches a phone (package push,
// with an FCM sender over the Firebase Admin SDK and a log sender), and the
// durable dispatcher that claims due reminders from the store and sends
// them (package dispatch). Package fcmfake is a local FCM v1-compatible
// server for tests and the load test.
package notifications
