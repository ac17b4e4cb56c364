// Errors as reasons an app's UI can switch on.

import { Code, ConnectError } from "@connectrpc/connect";
import { ViolationsSchema } from "../../../gen/ts/buf/validate/validate_pb";
import { ErrorInfoSchema } from "../../../gen/ts/google/rpc/error_details_pb";

/** The domain of the server's google.rpc.ErrorInfo details. */
export const errorDomain = "mtm.app";

/**
 * The reasons (google.rpc.ErrorInfo.reason, domain "mtm.app") the kit
 * knows: INVALID_CREDENTIALS, SESSION_REVOKED, and STALE_VERSION (a
 * write's expected_version no longer holds; metadata current_version).
 * The server's other `aborted` ("busy; retry": too many writers on one
 * record) carries no reason and is worth a retry; an `aborted` made up by
 * the client for a dropped connection is told apart by having no answer
 * headers.
 */
export const Reason = {
  invalidCredentials: "INVALID_CREDENTIALS",
  sessionRevoked: "SESSION_REVOKED",
  staleVersion: "STALE_VERSION",
} as const;

/** What went wrong, as the UI needs to know it. */
export type Problem =
  /** No session, or it ended (refresh refused, revoked): show sign-in. */
  | { kind: "signedOut"; message: string }
  /** Wrong activation code, date of birth, e-mail or password. */
  | { kind: "invalidCredentials"; message: string }
  /** Too many attempts; try again after retryAfterSeconds (if known). */
  | { kind: "throttled"; retryAfterSeconds?: number; message: string }
  /** The record changed since the app read it: read again, then retry. */
  | { kind: "staleVersion"; message: string }
  /** Not there, or not this caller's (the server does not say which). */
  | { kind: "notFound"; message: string }
  /** A field of the request was refused; field is its path ("medication.name"). */
  | { kind: "invalidField"; field: string; message: string }
  /** Signed in, but this caller may not do this (scope, role, grant). */
  | { kind: "forbidden"; message: string }
  /** The server could not serve it now (after the kit's retries): try later. */
  | { kind: "unavailable"; message: string }
  /** The connection dropped (no answer from the server). */
  | { kind: "connectionLost"; message: string }
  /** Anything else: a bug on one side; show a generic error. */
  | { kind: "other"; code: Code; message: string };

const signedOutMark = Symbol.for("@mtm/appkit/signedOut");

/**
 * A ConnectError (unauthenticated) the kit made when there is no session
 * or it could not be refreshed. Test for it with isSignedOut: ConnectError
 * overrides instanceof, so every ConnectError is "instanceof" this class.
 */
export class SignedOutError extends ConnectError {
  readonly [signedOutMark] = true;
  constructor(message = "signed out", cause?: unknown) {
    // The name stays "ConnectError": connect-es recognises its errors by
    // it and would wrap this one as unknown otherwise.
    super(message, Code.Unauthenticated, undefined, undefined, cause);
  }
}

/** isSignedOut reports whether e is a SignedOutError. */
export function isSignedOut(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [signedOutMark]?: boolean })[signedOutMark] === true) return true;
  return isSignedOut((e as { cause?: unknown }).cause);
}

/** The ErrorInfo reason of err (domain mtm.app), if it carries one. */
export function reasonOf(err: ConnectError): string | undefined {
  for (const info of err.findDetails(ErrorInfoSchema)) {
    if (info.domain === errorDomain && info.reason) return info.reason;
  }
  return undefined;
}

/**
 * The first refused field of an invalid_argument, from its
 * buf.validate.Violations detail ("intervention_details[3].description").
 */
export function invalidFieldOf(err: ConnectError): { field: string; message: string } | undefined {
  for (const vs of err.findDetails(ViolationsSchema)) {
    for (const v of vs.violations) {
      const field = (v.field?.elements ?? [])
        .map((el) => {
          const s = el.subscript;
          switch (s.case) {
            case "index":
              return `${el.fieldName}[${s.value}]`;
            case "stringKey":
              return `${el.fieldName}[${JSON.stringify(s.value)}]`;
            case "intKey":
            case "uintKey":
            case "boolKey":
              return `${el.fieldName}[${String(s.value)}]`;
            default:
              return el.fieldName;
          }
        })
        .join(".");
      return { field, message: v.message };
    }
  }
  return undefined;
}

/** Retry-After (whole seconds) of an answer, if present. */
export function retryAfterSeconds(headers: Headers): number | undefined {
  const v = headers.get("Retry-After");
  if (v === null) return undefined;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return n;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/**
 * Whether err was made by the client for a dropped connection rather than
 * sent by the server: no answer headers arrived with it.
 */
export function isConnectionLost(err: ConnectError): boolean {
  if (isSignedOut(err)) return false;
  if (err.code !== Code.Aborted && err.code !== Code.Canceled && err.code !== Code.Unavailable && err.code !== Code.Unknown) {
    return false;
  }
  return !hasAnswerHeaders(err.metadata);
}

function hasAnswerHeaders(h: Headers): boolean {
  let any = false;
  h.forEach(() => {
    any = true;
  });
  return any;
}

/** problemOf maps any error a kit call throws to a Problem. */
export function problemOf(e: unknown): Problem {
  const err = ConnectError.from(e);
  const message = err.rawMessage;
  if (isSignedOut(err)) return { kind: "signedOut", message };
  if (isConnectionLost(err)) return { kind: "connectionLost", message };
  const reason = reasonOf(err);
  switch (err.code) {
    case Code.Unauthenticated:
      return reason === Reason.invalidCredentials
        ? { kind: "invalidCredentials", message }
        : { kind: "signedOut", message };
    case Code.ResourceExhausted:
      return { kind: "throttled", retryAfterSeconds: retryAfterSeconds(err.metadata), message };
    case Code.Aborted:
      // STALE_VERSION; any other aborted from the server is "busy; retry".
      return reason === Reason.staleVersion ? { kind: "staleVersion", message } : { kind: "unavailable", message };
    case Code.NotFound:
      return { kind: "notFound", message };
    case Code.InvalidArgument: {
      const f = invalidFieldOf(err);
      return { kind: "invalidField", field: f?.field ?? "", message: f?.message ?? message };
    }
    case Code.PermissionDenied:
      return { kind: "forbidden", message };
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return { kind: "unavailable", message };
    default:
      return { kind: "other", code: err.code, message };
  }
}
