// The patient journey, as an app drives it, over each protocol.

import { test } from "node:test";
import assert from "node:assert/strict";
import { DevicePlatform, DoseOutcome, CaregiverScope, ExportFormat } from "../../../gen/ts/mtm/v1/patient_pb";
import { problemOf } from "../src";
import { enroll, kit, protocols, uniq, withTimeout } from "./env";

for (const p of protocols) {
  test(`patient journey over ${p}`, async (t) => {
    const { rph, patientId, code, medication, item } = await enroll(p);

    const app = kit(p);
    await t.test("activate", async () => {
      const res = await app.activatePatient({ activationCode: code, dateOfBirth: "1948-03-12", deviceName: "phone" });
      assert.equal(res.patientId, patientId);
    });

    await t.test("PML", async () => {
      const pml = (await app.patient.getMedicationList({ patientId })).medicationList!;
      assert.deepEqual(pml.medications.map((m) => m.name), ["Apixaban"]);
    });

    await t.test("MAP and progress", async () => {
      const plan = (await app.patient.getActionPlan({ patientId })).actionPlan!;
      assert.equal(plan.items[0]?.id, item.id);
      await app.patient.recordActionProgress({
        patientId,
        actionItemId: item.id,
        whatIDid: "Switched to acetaminophen",
        doneOn: new Date().toISOString().slice(0, 10),
      });
      const after = (await app.patient.getActionPlan({ patientId })).actionPlan!;
      assert.match(JSON.stringify(after.items[0], (_, v) => (typeof v === "bigint" ? String(v) : v)), /Switched to acetaminophen/);
    });

    await t.test("device", async () => {
      const res = await app.patient.registerDevice({
        patientId,
        fcmToken: `fcm-${uniq()}`,
        platform: DevicePlatform.ANDROID,
        appVersion: "1.0.0",
        locale: "en-US",
      });
      assert.ok(res.deviceId);
    });

    await t.test("schedule and dose", async () => {
      // Every two hours, so that an occurrence is due within a day.
      const times = Array.from({ length: 12 }, (_, i) => i * 120);
      const s = await app.patient.setDoseSchedule({ patientId, medicationId: medication.id, timesOfDay: times });
      assert.ok(s.schedule?.id);
      const up = await app.patient.listUpcomingReminders({ patientId });
      const next = up.reminders.find((r) => r.medicationId === medication.id);
      assert.ok(next, "an upcoming dose reminder");
      await app.patient.recordDose({ patientId, occurrenceId: next.occurrenceId, outcome: DoseOutcome.TAKEN });
    });

    await t.test("caregiver invite", async () => {
      const inv = await app.patient.inviteCaregiver({ patientId, scopes: [CaregiverScope.VIEW_MEDICINES] });
      const cg = kit(p);
      const res = await cg.signUpCaregiver({
        email: `cg-${uniq()}@example.org`,
        password: "correct horse battery staple",
        displayName: "Lee Chen",
        inviteCode: inv.inviteCode,
      });
      assert.equal(res.patientId, patientId);
      const pml = (await cg.patient.getMedicationList({ patientId })).medicationList!;
      assert.equal(pml.medications.length, 1);
      // The grant does not cover the plan: the server does not tell
      // "not yours" from "not there".
      const err = await cg.patient.getActionPlan({ patientId }).then(() => undefined, (e) => e);
      assert.equal(problemOf(err).kind, "notFound");
    });

    await t.test("thread with a live reply", async () => {
      const started = await app.messaging.startThread({
        patientId,
        subject: "Can I take ibuprofen?",
        clientMessageId: `cm-${uniq()}`,
        body: "My knee hurts.",
      });
      const threadId = started.thread!.id;
      const stop = new AbortController();
      const seen: string[] = [];
      const watching = (async () => {
        for await (const m of app.watchThread({ threadId, signal: stop.signal })) {
          seen.push(m.body);
          if (m.body.startsWith("Please use acetaminophen")) return;
        }
      })();
      // The pharmacist answers while the patient watches.
      await new Promise((r) => setTimeout(r, 200));
      await rph.messaging.sendMessage({ threadId, clientMessageId: `cm-${uniq()}`, body: "Please use acetaminophen instead." });
      await withTimeout(watching, 10_000, "the reply did not arrive on the watch");
      stop.abort();
      assert.deepEqual(seen, ["My knee hurts.", "Please use acetaminophen instead."]);
    });

    await t.test("refresh", async () => {
      const before = app.session.refreshes;
      const old = await app.session.accessToken();
      const fresh = await app.session.refresh(old);
      assert.notEqual(fresh.accessToken, old);
      assert.equal(app.session.refreshes, before + 1);
      await app.patient.getProfile({ patientId });
    });

    await t.test("export", async () => {
      const fhir = await app.patient.exportRecord({ patientId, format: ExportFormat.FHIR_R4_JSON });
      const bundle = JSON.parse(new TextDecoder().decode(fhir.content));
      assert.equal(bundle.resourceType, "Bundle");
      assert.match(new TextDecoder().decode(fhir.content), /Apixaban/);
    });

    await t.test("sign out", async () => {
      await app.signOut();
      const err = await app.patient.getProfile({ patientId }).then(() => undefined, (e) => e);
      assert.equal(problemOf(err).kind, "signedOut");
    });
  });
}
