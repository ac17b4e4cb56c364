// Retries of `unavailable` (storage briefly down, server draining).

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { retryAfterSeconds } from "./errors";

export interface RetryOptions {
  /** Attempts in all, the first included (default 3; 1 disables retries). */
  attempts?: number;
  /** First backoff without Retry-After (default 250 ms; doubles, with jitter). */
  baseDelayMs?: number;
  /** Longest wait before one retry, Retry-After included (default 10 s). */
  maxDelayMs?: number;
  /** The sleep (tests). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** sleep waits ms, or rejects when signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** backoffMs is the wait before retry n (0-based) without Retry-After. */
export function backoffMs(n: number, base: number, max: number): number {
  const d = Math.min(max, base * 2 ** n);
  return d / 2 + Math.random() * (d / 2);
}

/**
 * retryInterceptor repeats a unary call that failed with `unavailable`,
 * waiting as long as the answer's Retry-After says (at most maxDelayMs;
 * a longer Retry-After is not waited for: the error goes to the app) or
 * else backing off. Streams are not repeated here (watchThread resumes).
 *
 * `unavailable` is the server's "retry later", but one case is not a
 * clean refusal: with --redis-replica-acks a write the replicas did not
 * confirm in time was applied on the primary. A repeat of such a write is
 * harmless when it carries expected_version (refused as a stale version)
 * or an idempotency key (SendMessage's client_message_id); an add without
 * either (AddMedication) can land twice. Apps that cannot accept that
 * pass attempts: 1.
 */
export function retryInterceptor(opts: RetryOptions = {}): Interceptor {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const base = opts.baseDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 10_000;
  const wait = opts.sleep ?? sleep;
  return (next) => async (req) => {
    if (req.stream) return next(req);
    for (let n = 0; ; n++) {
      try {
        return await next(req);
      } catch (e) {
        const err = ConnectError.from(e);
        if (err.code !== Code.Unavailable || n + 1 >= attempts || req.signal.aborted) throw e;
        const ra = retryAfterSeconds(err.metadata);
        const d = ra !== undefined ? ra * 1000 : backoffMs(n, base, max);
        if (d > max) throw e;
        await wait(d, req.signal);
      }
    }
  };
}
