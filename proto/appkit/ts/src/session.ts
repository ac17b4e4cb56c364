// Sessions: the app's token storage, the Authorization header, and one
// refresh at a time however many calls find the access token expired.

import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuthService } from "../../../gen/ts/mtm/v1/auth_pb";
import type { TokenPair } from "../../../gen/ts/mtm/v1/records_pb";
import { isSignedOut, SignedOutError } from "./errors";

/** What the kit keeps of a sign-in. Store it as it is (JSON-safe). */
export interface Tokens {
  accessToken: string;
  /** Milliseconds since the epoch; 0 if unknown. */
  accessTokenExpiresAt: number;
  refreshToken: string;
}

/**
 * The app's storage for the session (expo-secure-store, the keychain,
 * localStorage...). get returns undefined when signed out; set(undefined)
 * forgets the session. Both may be async.
 */
export interface TokenStore {
  get(): Tokens | undefined | Promise<Tokens | undefined>;
  set(tokens: Tokens | undefined): void | Promise<void>;
}

/** An in-memory TokenStore (tests, or apps that sign in every start). */
export function memoryTokenStore(initial?: Tokens): TokenStore {
  let t = initial;
  return {
    get: () => t,
    set: (v) => {
      t = v;
    },
  };
}

/** tokensFrom converts the API's TokenPair into what the store keeps. */
export function tokensFrom(pair: TokenPair | undefined): Tokens {
  if (!pair?.accessToken || !pair.refreshToken) {
    throw new ConnectError("the server answered without tokens", Code.Internal);
  }
  return {
    accessToken: pair.accessToken,
    accessTokenExpiresAt: pair.accessTokenExpiresAt ? timestampDate(pair.accessTokenExpiresAt).getTime() : 0,
    refreshToken: pair.refreshToken,
  };
}

export interface SessionOptions {
  store: TokenStore;
  /** Refresh this long before the access token's expiry (default 30 s). */
  refreshEarlyMs?: number;
  /** Called once when the session ends (refresh refused or revoked). */
  onSignedOut?: () => void;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * Session holds the sign-in: it hands out a valid access token and
 * refreshes it with AuthService.Refresh, one refresh at a time.
 */
export class Session {
  private readonly store: TokenStore;
  private readonly early: number;
  private readonly now: () => number;
  private readonly onSignedOut?: () => void;
  private auth?: ReturnType<typeof createClient<typeof AuthService>>;
  private inflight?: Promise<Tokens>;
  /** How many Refresh calls this session made (tests, diagnostics). */
  refreshes = 0;

  constructor(opts: SessionOptions) {
    this.store = opts.store;
    this.early = opts.refreshEarlyMs ?? 30_000;
    this.now = opts.now ?? Date.now;
    this.onSignedOut = opts.onSignedOut;
  }

  /** Binds the transport Refresh is called on (without the auth interceptor). */
  bind(transport: Transport): void {
    this.auth = createClient(AuthService, transport);
  }

  /** Stores a new sign-in (after ActivatePatient, Login, SignUpCaregiver). */
  async signedIn(pair: TokenPair | undefined): Promise<void> {
    await this.store.set(tokensFrom(pair));
  }

  /** Forgets the session locally (Logout is the kit's signOut). */
  async forget(): Promise<void> {
    await this.store.set(undefined);
  }

  /**
   * A usable access token: the stored one, or a fresh one when it expires
   * within refreshEarlyMs. Throws SignedOutError without a session.
   */
  async accessToken(): Promise<string> {
    const t = await this.store.get();
    if (!t) throw new SignedOutError("not signed in");
    if (t.accessTokenExpiresAt > 0 && t.accessTokenExpiresAt - this.early <= this.now()) {
      return (await this.refresh(t.accessToken)).accessToken;
    }
    return t.accessToken;
  }

  /**
   * Refreshes the session because `stale` was refused or expired. Calls
   * arriving while a refresh runs wait for it; a call whose stale token was
   * already replaced gets the new one without another refresh. A refused
   * refresh (spent, expired or revoked refresh token) ends the session
   * with SignedOutError; a failure to reach the server keeps it.
   */
  refresh(stale: string): Promise<Tokens> {
    if (this.inflight) return this.inflight;
    const p = (async () => {
      const t = await this.store.get();
      if (!t) throw new SignedOutError("not signed in");
      if (t.accessToken !== stale && !(t.accessTokenExpiresAt > 0 && t.accessTokenExpiresAt - this.early <= this.now())) {
        return t; // someone refreshed already
      }
      if (!this.auth) throw new Error("appkit: Session.bind was not called");
      this.refreshes++;
      try {
        const res = await this.auth.refresh({ refreshToken: t.refreshToken });
        const next = tokensFrom(res.tokens);
        await this.store.set(next);
        return next;
      } catch (e) {
        const err = ConnectError.from(e);
        if (err.code === Code.Unauthenticated) {
          await this.store.set(undefined);
          this.onSignedOut?.();
          throw new SignedOutError("session ended, sign in again", err);
        }
        throw err;
      }
    })();
    this.inflight = p;
    const clear = () => {
      if (this.inflight === p) this.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /**
   * The interceptor that sends "Authorization: Bearer" on every call
   * except AuthService's, and on `unauthenticated` refreshes once and
   * repeats a unary call (streams refresh in watchThread).
   */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      if (req.service.typeName === AuthService.typeName) return next(req);
      const token = await this.accessToken();
      req.header.set("Authorization", `Bearer ${token}`);
      try {
        return await next(req);
      } catch (e) {
        const err = ConnectError.from(e);
        if (err.code !== Code.Unauthenticated || req.stream || isSignedOut(err)) throw e;
        const fresh = await this.refresh(token);
        req.header.set("Authorization", `Bearer ${fresh.accessToken}`);
        return await next(req);
      }
    };
  }
}
