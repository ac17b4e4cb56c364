package push

import (
	"encoding/json"
	"errors"
	"io"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
)

// FCM error codes as Result.Code and metric labels report them. The set is
// closed (every other error is CodeOther) so that labels stay few.
const (
	CodeOK               = "OK"
	CodeUnregistered     = "UNREGISTERED"
	CodeSenderIDMismatch = "SENDER_ID_MISMATCH"
	CodeInvalidArgument  = "INVALID_ARGUMENT"
	CodeQuotaExceeded    = "QUOTA_EXCEEDED"
	CodeUnavailable      = "UNAVAILABLE"
	CodeInternal         = "INTERNAL"
	CodeThirdPartyAuth   = "THIRD_PARTY_AUTH_ERROR"
	CodeDeadlineExceeded = "DEADLINE_EXCEEDED"
	CodeUnknown          = "UNKNOWN"
	CodeOther            = "OTHER"
	// CodeNotSent: the message never got an answer (ctx ended, or the
	// sender was paused until the end).
	CodeNotSent = "NOT_SENT"
)

// fcmCode names err's FCM error code: FCM's own code (the FcmError
// detail) where it has one, else the transport's or the platform's.
func fcmCode(err error) string {
	switch {
	case err == nil:
		return CodeOK
	case messaging.IsUnregistered(err):
		return CodeUnregistered
	case messaging.IsSenderIDMismatch(err):
		return CodeSenderIDMismatch
	case messaging.IsInvalidArgument(err):
		return CodeInvalidArgument
	case messaging.IsQuotaExceeded(err):
		return CodeQuotaExceeded
	case messaging.IsThirdPartyAuthError(err):
		return CodeThirdPartyAuth
	case messaging.IsUnavailable(err), errorutils.IsUnavailable(err):
		return CodeUnavailable
	case messaging.IsInternal(err), errorutils.IsInternal(err):
		return CodeInternal
	case errorutils.IsDeadlineExceeded(err):
		return CodeDeadlineExceeded
	case errorutils.IsUnknown(err):
		return CodeUnknown
	}
	return CodeOther
}

// namesToken reports whether an INVALID_ARGUMENT answer blames the
// registration token: FCM v1 then adds a google.rpc.BadRequest detail with
// a field violation on "message.token". Any other INVALID_ARGUMENT is a
// bad message (payload, TTL, APNs header...), which says nothing about the
// device.
func namesToken(err error) bool {
	resp := errorutils.HTTPResponse(err)
	if resp == nil || resp.Body == nil {
		return false
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return false
	}
	var status struct {
		Error struct {
			Details []struct {
				Type            string `json:"@type"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &status) != nil {
		return false
	}
	for _, d := range status.Error.Details {
		if d.Type != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return false
}
