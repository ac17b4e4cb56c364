// WatchThread that survives dropped connections and expired tokens.

import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { Message, MessagingService } from "../../../gen/ts/mtm/v1/messaging_pb";
import { isSignedOut, retryAfterSeconds, SignedOutError } from "./errors";
import { backoffMs, sleep } from "./retry";
import type { Session } from "./session";

export interface WatchThreadOptions {
  threadId: string;
  /** Deliver messages with a seq above this (0n: the whole thread). */
  afterSeq?: bigint;
  /** Ends the watch (the iteration returns). */
  signal?: AbortSignal;
  /** Longest wait between reconnections (default 15 s). */
  maxBackoffMs?: number;
  /** Told each time the stream dropped and the kit reconnects. */
  onReconnect?: (err: ConnectError, attempt: number) => void;
}

/** Codes after which reconnecting cannot help: the error goes to the app. */
const final = new Set<Code>([
  Code.NotFound,
  Code.PermissionDenied,
  Code.InvalidArgument,
  Code.FailedPrecondition,
  Code.Unimplemented,
  Code.OutOfRange,
]);

/**
 * watchThread yields a thread's messages after afterSeq, oldest first,
 * each once, until signal aborts. When the stream drops (a cut
 * connection: `aborted` over HTTP/1.1, `canceled` over HTTP/2; a server
 * draining: `unavailable`) it reconnects with backoff and resumes after
 * the last seq it delivered; when the stream ends `unauthenticated` (the
 * access token expired) it refreshes the session and resumes. It throws
 * SignedOutError when the session ended, and the ConnectError of a refusal
 * reconnecting cannot mend (not_found, permission_denied, ...).
 */
export async function* watchThread(
  messaging: Client<typeof MessagingService>,
  session: Session,
  opts: WatchThreadOptions,
): AsyncGenerator<Message, void, undefined> {
  let after = opts.afterSeq ?? 0n;
  const signal = opts.signal ?? new AbortController().signal;
  const maxBackoff = opts.maxBackoffMs ?? 15_000;
  let failures = 0;
  let refreshedFor: string | undefined;
  while (!signal.aborted) {
    let token: string;
    try {
      token = await session.accessToken();
    } catch (e) {
      throw isSignedOut(e) ? e : ConnectError.from(e);
    }
    try {
      for await (const res of messaging.watchThread({ threadId: opts.threadId, afterSeq: after }, { signal })) {
        failures = 0;
        refreshedFor = undefined;
        const m = res.message;
        if (!m || m.seq <= after) continue; // heartbeat, or already delivered
        after = m.seq;
        yield m;
      }
      // The server ended the stream cleanly: resume at once.
    } catch (e) {
      if (signal.aborted) return;
      const err = ConnectError.from(e);
      if (isSignedOut(err)) throw err;
      if (err.code === Code.Unauthenticated) {
        if (refreshedFor === token) throw new SignedOutError("session ended, sign in again", err);
        refreshedFor = token;
        await session.refresh(token); // SignedOutError when refused
        continue;
      }
      if (final.has(err.code)) throw err;
      opts.onReconnect?.(err, failures + 1);
      const ra = retryAfterSeconds(err.metadata);
      const d = ra !== undefined ? Math.min(ra * 1000, maxBackoff) : backoffMs(failures, 100, maxBackoff);
      failures++;
      try {
        await sleep(d, signal);
      } catch {
        return;
      }
    }
  }
}
