// Many calls at once with an expired access token: one refresh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryTokenStore, problemOf, type Tokens } from "../src";
import { enroll, kit, protocols } from "./env";

for (const p of protocols) {
  test(`refresh race over ${p}`, async (t) => {
    const { patientId, code } = await enroll(p);
    const store = memoryTokenStore();
    const app = kit(p, { store });
    await app.activatePatient({ activationCode: code, dateOfBirth: "1948-03-12", deviceName: "phone" });
    const signedIn = (await store.get()) as Tokens;

    await t.test("expired by the clock: 25 calls, one refresh", async () => {
      await store.set({ ...signedIn, accessTokenExpiresAt: Date.now() - 1000 });
      const before = app.session.refreshes;
      const res = await Promise.all(Array.from({ length: 25 }, () => app.patient.getProfile({ patientId })));
      assert.equal(res.length, 25);
      assert.equal(app.session.refreshes - before, 1);
      assert.notEqual((await store.get())?.accessToken, signedIn.accessToken);
    });

    await t.test("refused by the server: 25 calls, one refresh", async () => {
      // The app thinks the token is good; the server refuses it (as an
      // expired one): every call is refused, one refreshes, all repeat.
      const now = (await store.get()) as Tokens;
      const bad = now.accessToken.slice(0, -4) + (now.accessToken.endsWith("AAAA") ? "BBBB" : "AAAA");
      await store.set({ ...now, accessToken: bad, accessTokenExpiresAt: Date.now() + 3600_000 });
      const before = app.session.refreshes;
      await Promise.all(Array.from({ length: 25 }, () => app.patient.getMedicationList({ patientId })));
      assert.equal(app.session.refreshes - before, 1);
    });

    await t.test("a refused refresh signs out, once", async () => {
      let signedOut = 0;
      const store2 = memoryTokenStore({ accessToken: "x", accessTokenExpiresAt: 1, refreshToken: "not-a-refresh-token-of-this-server" });
      const other = kit(p, { store: store2, onSignedOut: () => signedOut++ });
      const errs = await Promise.all(
        Array.from({ length: 10 }, () => other.patient.getProfile({ patientId }).then(() => undefined, (e) => e)),
      );
      assert.equal(other.session.refreshes, 1);
      assert.deepEqual(new Set(errs.map((e) => (e ? problemOf(e).kind : "ok"))), new Set(["signedOut"]));
      assert.equal(signedOut, 1);
      assert.equal(await store2.get(), undefined);
    });
  });
}
