// A token the server finds expired (mtmd runs with --access-ttl 1m here,
// and accepts a token 30 s past its expiry):
// a watch open across the expiry keeps delivering, a call after it
// refreshes and succeeds.

import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryTokenStore, type Tokens } from "../src";
import { enroll, kit, uniq, withTimeout } from "./env";

const ttlMs = Number(process.env.MTM_ACCESS_TTL_SECONDS ?? "0") * 1000;
// The server accepts a token this long past its expiry (clock skew).
const leewayMs = Number(process.env.MTM_TOKEN_LEEWAY_SECONDS ?? "0") * 1000;

test("an access token expiring under an open watch and before a call", { skip: ttlMs === 0 || ttlMs > 120_000 ? "MTM_ACCESS_TTL_SECONDS not set (or over 2 min)" : false }, async () => {
  const p = "connect-h2";
  const { rph, patientId, code } = await enroll(p);
  const store = memoryTokenStore();
  const app = kit(p, { store, refreshEarlyMs: 0 });
  await app.activatePatient({ activationCode: code, dateOfBirth: "1948-03-12", deviceName: "phone" });
  // The app does not know when the token expires: only the server does.
  const t = (await store.get()) as Tokens;
  await store.set({ ...t, accessTokenExpiresAt: 0 });

  const started = await app.messaging.startThread({ patientId, subject: "Late question", clientMessageId: `cm-${uniq()}`, body: "before" });
  const stop = new AbortController();
  const seen: string[] = [];
  const watching = (async () => {
    for await (const m of app.watchThread({ threadId: started.thread!.id, signal: stop.signal })) {
      seen.push(m.body);
      if (m.body === "after expiry") return;
    }
  })();
  await new Promise((r) => setTimeout(r, ttlMs + leewayMs + 3_000));
  await rph.messaging.sendMessage({ threadId: started.thread!.id, clientMessageId: `cm-${uniq()}`, body: "after expiry" });
  await withTimeout(watching, 15_000, "the reply after the expiry did not arrive");
  stop.abort();
  assert.deepEqual(seen, ["before", "after expiry"]);

  const before = app.session.refreshes;
  await app.patient.getProfile({ patientId });
  assert.ok(app.session.refreshes - before <= 1);
  assert.ok(app.session.refreshes >= 1, "the expired token was refreshed");
});
