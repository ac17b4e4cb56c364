// What the tests share: the server under test (started by kit_test.go)
// and kits over the four protocols.

import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createAppKit, memoryTokenStore, type AppKit, type AppKitOptions, type TokenStore } from "../src";

export const baseUrl = need("MTM_URL");
export const pharmacist = { email: need("MTM_PHARMACIST_EMAIL"), password: need("MTM_PHARMACIST_PASSWORD") };

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests with go test ./proto/appkit/ts (kit_test.go starts mtmd)`);
  return v;
}

export type Protocol = "connect-json-h1" | "connect-h2" | "grpc" | "grpc-web-h1";
export const protocols: Protocol[] = ["connect-json-h1", "connect-h2", "grpc", "grpc-web-h1"];

export function transportFor(p: Protocol, interceptors: Interceptor[], url = baseUrl): Transport {
  switch (p) {
    case "connect-json-h1":
      return createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: false, interceptors });
    case "connect-h2":
      return createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true, interceptors });
    case "grpc":
      return createGrpcTransport({ baseUrl: url, interceptors });
    case "grpc-web-h1":
      return createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors });
  }
}

export function kit(p: Protocol, extra: Partial<AppKitOptions> & { store?: TokenStore; url?: string } = {}): AppKit {
  return createAppKit({
    store: extra.store ?? memoryTokenStore(),
    transport: (interceptors) => transportFor(p, interceptors, extra.url),
    ...extra,
  });
}

let n = 0;
/** A unique suffix per call (names, idempotency keys). */
export function uniq(): string {
  return `${process.pid}-${Date.now().toString(36)}-${++n}`;
}

/** enroll signs a pharmacist in and enrolls a fresh patient with one medicine and one plan item. */
export async function enroll(p: Protocol) {
  const rph = kit(p);
  await rph.login(pharmacist);
  const care = rph.care;
  const e = await care.enrollPatient({
    givenName: "Margaret",
    familyName: `Chen ${uniq()}`.replace(/[^A-Za-z ]/g, "x"),
    dateOfBirth: "1948-03-12",
    timeZone: "America/Chicago",
  });
  const patientId = e.patient!.id;
  const med = await care.addMedication({
    patientId,
    medication: {
      name: "Apixaban",
      strength: "5 mg tablet",
      howIUseIt: "1 tablet twice a day",
      whyIUseIt: "Prevent stroke",
      prescriber: "Dr. Alvarez",
      startedOn: "2024-09-10",
    },
  });
  const item = await care.addActionItem({
    patientId,
    whatWeTalkedAbout: "Bleeding risk with ibuprofen",
    whatINeedToDo: "Use acetaminophen for pain",
  });
  return { rph, care, patientId, code: e.activationCode, medication: med.medication!, item: item.actionItem! };
}

/** withTimeout rejects with what when p takes longer than ms. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
