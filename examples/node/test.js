// The example's test: run against a worker fleet set up as
// examples/node/node_test.go sets it up, with NATS_URL its NATS server.
//
//   node test.js up     the fleet runs: POST, PRE allowed and denied,
//                       NO_TRIGGER, a SHUTTING_DOWN retried, a bad reply
//   node test.js down   the fleet is down, its registrations stay:
//                       NO_WORKER refused (by the <TYPE>.<OPTION> key and
//                       by the <TYPE>.ANY key), NO_TRIGGER where none is
//
// Each outcome is printed as one JSON line {"case": ..., ...}; any
// outcome that is not the expected one exits 1.
"use strict";

const assert = require("node:assert/strict");
const { connect } = require("nats");
const { Client, Policy, Code } = require("./client");

function report(name, fields) {
  process.stdout.write(JSON.stringify({ case: name, ...fields }) + "\n");
}

async function expectDecision(client, name, type, option, event, want, opts) {
  const d = await client.decide(type, option, event, opts);
  report(name, { decision: d });
  assert.equal(d.allowed, want.allowed, `${name}: allowed ${d.allowed} (${d.code}: ${d.message})`);
  assert.equal(d.code || "", want.code, `${name}: code ${d.code} (${d.message})`);
  return d;
}

async function up(client) {
  const id = await client.publish("POST_CREATE", "SERVER", { beUUID: "be-1", input: { name: "web-1" } });
  report("post", { id });

  const ok = await expectDecision(client, "allowed", "PRE_CREATE", "SERVER", { input: { name: "web-1", cpu: 4 } }, { allowed: true, code: "" });
  assert.equal(ok.modified, true, "allowed: the quota function marks the input");
  assert.equal(ok.input.checked, true, "allowed: the modified input is returned");
  await expectDecision(client, "denied", "PRE_CREATE", "SERVER", { input: { name: "big-1", cpu: 64 } }, { allowed: false, code: "QUOTA_EXCEEDED" });
  await expectDecision(client, "any-function", "PRE_MODIFY", "DISK", { input: { size: 10 } }, { allowed: true, code: "" });
  await expectDecision(client, "no-trigger", "PRE_DELETE", "SERVER", { input: {} }, { allowed: true, code: Code.NO_TRIGGER });
  await expectDecision(client, "shutting-down-retried", "PRE_DELETE", "DISK", {}, { allowed: true, code: "" });
  await expectDecision(client, "bad-reply", "PRE_DELETE", "NIC", {}, { allowed: false, code: Code.BAD_REPLY });
  assert.throws(() => client.prepare("PRE_CREATE", "SER.VER", {}), /option/);
  assert.throws(() => client.prepare("PRE_CREATE", "SERVER", { triggerType: "PRE_DELETE" }), /triggerType/);
  report("bad-input-throws", {});
}

async function down(client, nc) {
  await expectDecision(client, "no-worker", "PRE_CREATE", "SERVER", { input: { cpu: 4 } }, { allowed: false, code: Code.NO_WORKER });
  await expectDecision(client, "no-worker-any", "PRE_MODIFY", "DISK", { input: { size: 10 } }, { allowed: false, code: Code.NO_WORKER });
  await expectDecision(client, "no-trigger-down", "PRE_DELETE", "SERVER", {}, { allowed: true, code: Code.NO_TRIGGER });
  const lenient = new Client(nc, { noWorker: Policy.ALLOW });
  await expectDecision(lenient, "no-worker-allow-policy", "PRE_CREATE", "SERVER", {}, { allowed: true, code: Code.NO_WORKER });
}

async function main() {
  const phase = process.argv[2];
  if (phase !== "up" && phase !== "down") {
    throw new Error("usage: node test.js up|down (with NATS_URL set)");
  }
  const nc = await connect({ servers: process.env.NATS_URL || "nats://127.0.0.1:4222" });
  try {
    const client = new Client(nc, { decideTimeoutMs: 10000 });
    await (phase === "up" ? up(client) : down(client, nc));
    report("done", { phase });
  } finally {
    await nc.close();
  }
}

main().catch((err) => {
  process.stderr.write(`FAIL: ${err.stack || err}\n`);
  process.exit(1);
});
