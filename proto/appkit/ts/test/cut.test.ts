// A watch whose connection is cut resumes from its cursor: no message
// lost, none delivered twice.

import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { ConnectError } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { baseUrl, enroll, kit, uniq, withTimeout, type Protocol } from "./env";

/** A TCP proxy to the server whose connections can be cut. */
async function cuttingProxy() {
  const target = new URL(baseUrl);
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    /**
     * cut drops every open connection: "reset" sends a TCP RST, "close" a
     * FIN (the client reads a clean end of the connection mid-stream).
     */
    cut(how: "reset" | "close") {
      const n = open.size;
      for (const s of open) (how === "reset" ? s.resetAndDestroy() : s.destroy());
      open.clear();
      return n;
    },
    close() {
      for (const s of open) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

for (const [p, how] of [
  ["connect-json-h1", "reset"],
  ["connect-json-h1", "close"],
  ["connect-h2", "reset"],
  ["connect-h2", "close"],
  ["grpc", "reset"],
  ["grpc-web-h1", "close"],
] as [Protocol, "reset" | "close"][]) {
  test(`watchThread resumes after a connection ${how} over ${p}`, async () => {
    const proxy = await cuttingProxy();
    try {
      const { rph, patientId, code } = await enroll(p);
      const app = kit(p, { url: proxy.url });
      await app.activatePatient({ activationCode: code, dateOfBirth: "1948-03-12", deviceName: "phone" });
      const started = await app.messaging.startThread({ patientId, subject: "Refill", clientMessageId: `cm-${uniq()}`, body: "m0" });
      const threadId = started.thread!.id;
      const send = (body: string) => rph.messaging.sendMessage({ threadId, clientMessageId: `cm-${uniq()}`, body });

      const stop = new AbortController();
      const seen: string[] = [];
      const drops: Code[] = [];
      let arrived: (() => void) | undefined;
      const next = () => new Promise<void>((r) => (arrived = r));
      let wait = next();
      const watching = (async () => {
        for await (const m of app.watchThread({ threadId, signal: stop.signal, onReconnect: (e: ConnectError) => drops.push(e.code) })) {
          seen.push(m.body);
          arrived?.();
          if (m.body === "m5") return;
        }
      })();
      await withTimeout(wait, 10_000, "m0 did not arrive");
      wait = next();
      await send("m1");
      await withTimeout(wait, 10_000, "m1 did not arrive");

      // Cut while messages keep coming: some are sent before the watch
      // reconnects, some after.
      assert.ok(proxy.cut(how) > 0, "the watch's connection went through the proxy");
      await send("m2");
      await send("m3");
      await new Promise((r) => setTimeout(r, 300));
      proxy.cut(how);
      await send("m4");
      await new Promise((r) => setTimeout(r, 300));
      await send("m5");
      await withTimeout(watching, 15_000, `the watch did not resume (saw ${seen.join(",")})`);
      stop.abort();
      assert.deepEqual(seen, ["m0", "m1", "m2", "m3", "m4", "m5"]);
      assert.ok(drops.length >= 1, "the cut was noticed");
      console.log(`${p}: a connection ${how} surfaced as ${[...new Set(drops.map((c) => Code[c]))].join(", ")}`);
    } finally {
      await proxy.close();
    }
  });
}
