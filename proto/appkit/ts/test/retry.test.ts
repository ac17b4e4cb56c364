// Retries of `unavailable`, with and without Retry-After, through a proxy
// in front of mtmd that answers the first calls of a method itself.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { problemOf } from "../src";
import { baseUrl, enroll, kit } from "./env";

/** An HTTP/1.1 proxy to mtmd that refuses the next `n` GetProfile calls with `unavailable`. */
async function flakyProxy() {
  const target = new URL(baseUrl);
  let refuse = 0;
  let retryAfter: string | undefined;
  const seen: number[] = [];
  const server = http.createServer((req, res) => {
    if (req.url?.endsWith("/GetProfile")) seen.push(Date.now());
    if (req.url?.endsWith("/GetProfile") && refuse > 0) {
      refuse--;
      req.resume();
      const h: http.OutgoingHttpHeaders = { "Content-Type": "application/json" };
      if (retryAfter !== undefined) h["Retry-After"] = retryAfter;
      res.writeHead(503, h).end(JSON.stringify({ code: "unavailable", message: "storage unavailable, retry later" }));
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    refuseNext(n: number, ra?: string) {
      refuse = n;
      retryAfter = ra;
      seen.length = 0;
    },
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test("unavailable is retried as Retry-After says", async (t) => {
  const proxy = await flakyProxy();
  try {
    const { patientId, code } = await enroll("connect-json-h1");
    const app = kit("connect-json-h1", { url: proxy.url });
    await app.activatePatient({ activationCode: code, dateOfBirth: "1948-03-12", deviceName: "phone" });

    await t.test("Retry-After: 1 is waited for, then the call succeeds", async () => {
      proxy.refuseNext(1, "1");
      await app.patient.getProfile({ patientId });
      assert.equal(proxy.seen.length, 2);
      const waited = proxy.seen[1]! - proxy.seen[0]!;
      assert.ok(waited >= 950 && waited < 5000, `waited ${waited} ms`);
    });
    await t.test("without Retry-After: backoff, 3 attempts in all", async () => {
      proxy.refuseNext(5);
      const err = await app.patient.getProfile({ patientId }).then(() => undefined, (e) => e);
      assert.equal(problemOf(err).kind, "unavailable");
      assert.equal(proxy.seen.length, 3);
    });
    await t.test("a Retry-After beyond the bound goes to the app at once", async () => {
      proxy.refuseNext(1, "60");
      const start = Date.now();
      const err = await app.patient.getProfile({ patientId }).then(() => undefined, (e) => e);
      assert.equal(problemOf(err).kind, "unavailable");
      assert.equal(proxy.seen.length, 1);
      assert.ok(Date.now() - start < 2000);
    });
  } finally {
    await proxy.close();
  }
});
