/**
 * @mtm/appkit: typed clients for the MTM API and the parts every app
 * otherwise writes by hand. The generated messages and services are in
 * proto/gen/ts (import them from there, or through `gen` below).
 */
export { createAppKit, type AppKit, type AppKitOptions } from "./kit";
export { Session, memoryTokenStore, tokensFrom, type Tokens, type TokenStore, type SessionOptions } from "./session";
export { retryInterceptor, type RetryOptions } from "./retry";
export { watchThread, type WatchThreadOptions } from "./watch";
export {
  problemOf,
  reasonOf,
  invalidFieldOf,
  retryAfterSeconds,
  isConnectionLost,
  SignedOutError,
  isSignedOut,
  Reason,
  errorDomain,
  type Problem,
} from "./errors";
