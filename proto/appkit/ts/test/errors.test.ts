// Refusals the server sends today, as the reasons the UI switches on.

import { test } from "node:test";
import assert from "node:assert/strict";
import { problemOf } from "../src";
import { enroll, kit, uniq } from "./env";

const p = "connect-json-h1";

async function refusal(call: Promise<unknown>) {
  const err = await call.then(() => undefined, (e) => e);
  assert.ok(err, "the call was refused");
  return problemOf(err);
}

test("refusals map to reasons", async (t) => {
  const { care, patientId, code, medication } = await enroll(p);
  const app = kit(p);
  await t.test("invalidCredentials: wrong activation code", async () => {
    const pr = await refusal(app.activatePatient({ activationCode: "WRONGCODE1", dateOfBirth: "1948-03-12", deviceName: "phone" }));
    assert.equal(pr.kind, "invalidCredentials");
  });
  await app.activatePatient({ activationCode: code, dateOfBirth: "1948-03-12", deviceName: "phone" });

  await t.test("invalidField names the field", async () => {
    const pr = await refusal(app.patient.getMedicationList({ patientId: "not an id!" }));
    assert.equal(pr.kind, "invalidField");
    assert.equal(pr.kind === "invalidField" && pr.field, "patient_id");
  });
  await t.test("invalidField names a nested field", async () => {
    const pr = await refusal(care.addMedication({ patientId, medication: { name: "", strength: "5 mg" } }));
    assert.equal(pr.kind, "invalidField");
    assert.match(pr.kind === "invalidField" ? pr.field : "", /^medication\.name$/);
  });
  await t.test("notFound: another patient", async () => {
    const pr = await refusal(app.patient.getMedicationList({ patientId: "p_doesnotexist" }));
    assert.ok(pr.kind === "notFound" || pr.kind === "forbidden", pr.kind);
  });
  await t.test("staleVersion: a change based on an old version", async () => {
    const fields = { name: "Apixaban", howIUseIt: "1 tablet twice a day", whyIUseIt: "Prevent stroke", prescriber: "Dr. Alvarez", startedOn: "2024-09-10" };
    await care.changeMedication({ patientId, medicationId: medication.id, expectedVersion: medication.version, medication: { ...fields, strength: "2.5 mg tablet" }, reason: "dose reduced" });
    const pr = await refusal(
      care.changeMedication({ patientId, medicationId: medication.id, expectedVersion: medication.version, medication: { ...fields, strength: "5 mg tablet" }, reason: "back up" }),
    );
    assert.equal(pr.kind, "staleVersion");
  });
  await t.test("forbidden: a patient calling the pharmacy's service", async () => {
    const pr = await refusal(app.care.searchPatients({}));
    assert.equal(pr.kind, "forbidden");
  });
  await t.test("throttled, with Retry-After", async () => {
    const nobody = kit(p);
    const email = `nobody-${uniq()}@example.org`;
    let last;
    for (let i = 0; i < 12; i++) {
      last = await refusal(nobody.login({ email, password: "not the password" }));
      if (last.kind === "throttled") break;
      assert.equal(last.kind, "invalidCredentials");
    }
    assert.equal(last?.kind, "throttled");
    assert.ok(last?.kind === "throttled" && (last.retryAfterSeconds ?? 0) > 0, "Retry-After is read");
  });
});
