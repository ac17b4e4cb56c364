// The kit: typed clients for the four services over one transport, with
// the session and retry interceptors in front.

import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { AuthService } from "../../../gen/ts/mtm/v1/auth_pb";
import type {
  ActivatePatientRequest,
  ActivatePatientResponse,
  LoginRequest,
  LoginResponse,
  SignUpCaregiverRequest,
  SignUpCaregiverResponse,
} from "../../../gen/ts/mtm/v1/auth_pb";
import { CareService } from "../../../gen/ts/mtm/v1/care_pb";
import { MessagingService } from "../../../gen/ts/mtm/v1/messaging_pb";
import type { Message } from "../../../gen/ts/mtm/v1/messaging_pb";
import { PatientService } from "../../../gen/ts/mtm/v1/patient_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { retryInterceptor, type RetryOptions } from "./retry";
import { Session, type SessionOptions } from "./session";
import { watchThread, type WatchThreadOptions } from "./watch";

type Init<T extends import("@bufbuild/protobuf").Message> = MessageInitShape<GenMessage<T>>;

export interface AppKitOptions extends SessionOptions {
  /**
   * Makes the transport with the kit's interceptors, e.g. with
   * @connectrpc/connect-web:
   * `(interceptors) => createConnectTransport({ baseUrl, interceptors, fetch })`.
   * It is called twice: with the interceptors for the API, and with the
   * retry interceptor alone for AuthService.Refresh.
   */
  transport: (interceptors: Interceptor[]) => Transport;
  /** Retries of `unavailable` (unary calls). */
  retry?: RetryOptions;
}

/** AppKit is what an app holds: clients, the session, watchThread. */
export interface AppKit {
  session: Session;
  auth: Client<typeof AuthService>;
  patient: Client<typeof PatientService>;
  care: Client<typeof CareService>;
  messaging: Client<typeof MessagingService>;
  /** ActivatePatient, keeping the session it opens. */
  activatePatient(req: Init<ActivatePatientRequest>): Promise<ActivatePatientResponse>;
  /** Login (staff, caregivers), keeping the session it opens. */
  login(req: Init<LoginRequest>): Promise<LoginResponse>;
  /** SignUpCaregiver, keeping the session it opens. */
  signUpCaregiver(req: Init<SignUpCaregiverRequest>): Promise<SignUpCaregiverResponse>;
  /** Logout on the server (best effort) and forget the session here. */
  signOut(): Promise<void>;
  /** A thread's messages after afterSeq, resuming across drops; see watchThread. */
  watchThread(opts: WatchThreadOptions): AsyncGenerator<Message, void, undefined>;
}

/** createAppKit builds the kit. Nothing in it needs Node: it runs in React Native, Expo and browsers. */
export function createAppKit(opts: AppKitOptions): AppKit {
  const session = new Session(opts);
  const retry = retryInterceptor(opts.retry);
  session.bind(opts.transport([retry]));
  const transport = opts.transport([session.interceptor(), retry]);
  const auth = createClient(AuthService, transport);
  const messaging = createClient(MessagingService, transport);
  return {
    session,
    auth,
    patient: createClient(PatientService, transport),
    care: createClient(CareService, transport),
    messaging,
    async activatePatient(req) {
      const res = await auth.activatePatient(req);
      await session.signedIn(res.tokens);
      return res;
    },
    async login(req) {
      const res = await auth.login(req);
      await session.signedIn(res.tokens);
      return res;
    },
    async signUpCaregiver(req) {
      const res = await auth.signUpCaregiver(req);
      await session.signedIn(res.tokens);
      return res;
    },
    async signOut() {
      const t = await opts.store.get();
      try {
        if (t) await auth.logout({ refreshToken: t.refreshToken });
      } finally {
        await session.forget();
      }
    },
    watchThread: (w) => watchThread(messaging, session, w),
  };
}
