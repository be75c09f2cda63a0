// A triggerbus publisher for Node.js, following the wire contract
// (docs/asyncapi.yaml) exactly as the Go SDK (pkg/client) does:
//
//   - publish(): a POST or SCHEDULED event on <prefix>.<TYPE>.<OPTION>, with
//     its id as Nats-Msg-Id.
//   - decide(): a PRE request with Trigger-Deadline (Unix milliseconds); a
//     SHUTTING_DOWN answer is asked again (3 more times at most); after "no
//     responders" the PRE registry (the key-value bucket <PREFIX>_REGISTRY)
//     is read with BOTH keys <TYPE>.<OPTION> and <TYPE>.ANY: either present
//     means NO_WORKER (refused unless the caller's policy allows), neither
//     NO_TRIGGER (allowed). Whatever cannot be known fails closed.
//
// It checks that the option is a valid subject token; the type and option
// are checked against the catalogue by the worker (BAD_REQUEST), which this
// example does not embed.
"use strict";

const crypto = require("node:crypto");
const { ErrorCode, headers: natsHeaders, StringCodec } = require("nats");

const sc = StringCodec();

// The header names and codes of the contract (docs/asyncapi.yaml).
const HEADER_MSG_ID = "Nats-Msg-Id";
const HEADER_DEADLINE = "Trigger-Deadline";
const ANY = "ANY";
const Code = Object.freeze({
  TIMEOUT: "TIMEOUT",
  BAD_REQUEST: "BAD_REQUEST",
  NO_WORKER: "NO_WORKER",
  NO_TRIGGER: "NO_TRIGGER",
  SHUTTING_DOWN: "SHUTTING_DOWN",
  BAD_REPLY: "BAD_REPLY",
});

// What decide() answers when it cannot get a decision.
const Policy = Object.freeze({ REFUSE: "refuse", ALLOW: "allow" });

const MAX_TOKEN_BYTES = 128;
const SHUTTING_DOWN_RETRIES = 3;
// JetStream's error code of a stream that does not exist.
const STREAM_NOT_FOUND = 10059;

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// newID returns an event id as the Go SDK makes them: 26 characters of
// Crockford base32, a 48-bit millisecond timestamp then 80 random bits.
function newID() {
  const b = Buffer.alloc(16);
  b.writeUIntBE(Date.now(), 0, 6);
  crypto.randomFillSync(b, 6, 10);
  let n = (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
  let out = "";
  for (let i = 0; i < 26; i++) {
    out = CROCKFORD[Number(n & 31n)] + out;
    n >>= 5n;
  }
  return out;
}

// checkToken throws unless s is a valid subject token.
function checkToken(what, s) {
  if (typeof s !== "string" || s === "") {
    throw new Error(`triggerbus: empty ${what}`);
  }
  if (Buffer.byteLength(s) > MAX_TOKEN_BYTES) {
    throw new Error(`triggerbus: ${what} ${JSON.stringify(s)} is longer than ${MAX_TOKEN_BYTES} bytes`);
  }
  if (/[.*>\s\u0000-\u001f\u007f-\u009f]/u.test(s)) {
    throw new Error(`triggerbus: ${what} ${JSON.stringify(s)} has '.', '*', '>', white space or a control character`);
  }
}

// registryBucket is the PRE registry bucket of a prefix: upper case, '_'
// for '.', then _REGISTRY (TRIGGER_REGISTRY for the default prefix).
function registryBucket(prefix) {
  return prefix.replaceAll(".", "_").toUpperCase() + "_REGISTRY";
}

class Client {
  // nc is a connection of the nats package; opts.prefix defaults to
  // "trigger", opts.decideTimeoutMs to 5000, opts.noWorker and
  // opts.onTimeout to Policy.REFUSE.
  constructor(nc, opts = {}) {
    this.nc = nc;
    this.prefix = opts.prefix || "trigger";
    for (const tok of this.prefix.split(".")) {
      checkToken("prefix token", tok);
    }
    this.decideTimeoutMs = opts.decideTimeoutMs || 5000;
    this.noWorker = opts.noWorker || Policy.REFUSE;
    this.onTimeout = opts.onTimeout || Policy.REFUSE;
  }

  // prepare fills the event's id, timeStamp, triggerType and
  // triggerOption, and returns the subject, the event, its JSON and the
  // headers.
  prepare(type, option, event) {
    checkToken("trigger type", type);
    checkToken("option", option);
    const ev = { ...(event || {}) };
    for (const [field, want] of [["triggerType", type], ["triggerOption", option]]) {
      if (ev[field] !== undefined && ev[field] !== want) {
        throw new Error(`triggerbus: event ${field} ${JSON.stringify(ev[field])} is not ${JSON.stringify(want)}`);
      }
      ev[field] = want;
    }
    ev.id = ev.id || newID();
    ev.timeStamp = ev.timeStamp || Date.now();
    const h = natsHeaders();
    h.set(HEADER_MSG_ID, ev.id);
    return { subject: `${this.prefix}.${type}.${option}`, event: ev, data: sc.encode(JSON.stringify(ev)), headers: h };
  }

  // publish sends a POST (or SCHEDULED) event and returns its id.
  async publish(type, option, event) {
    const m = this.prepare(type, option, event);
    this.nc.publish(m.subject, m.data, { headers: m.headers });
    await this.nc.flush();
    return m.event.id;
  }

  // decide asks the worker fleet for the decision on a PRE event. It
  // throws only for a bad type, option or event; every other outcome is a
  // decision, and only decision.allowed === true lets the action go on.
  async decide(type, option, event, opts = {}) {
    const m = this.prepare(type, option, event);
    const id = m.event.id;
    const deadline = Date.now() + (opts.timeoutMs || this.decideTimeoutMs);
    m.headers.set(HEADER_DEADLINE, String(deadline));
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left < 1) {
        return this.policy(this.onTimeout, id, Code.TIMEOUT, "no decision before the deadline");
      }
      let reply;
      try {
        reply = await this.nc.request(m.subject, m.data, { timeout: left, headers: m.headers });
      } catch (err) {
        switch (err.code) {
          case ErrorCode.NoResponders:
            return this.noResponders(type, option, id);
          case ErrorCode.Timeout:
            return this.policy(this.onTimeout, id, Code.TIMEOUT, "no decision before the deadline");
          case ErrorCode.MaxPayloadExceeded:
            return refused(id, Code.BAD_REQUEST, `the request is larger than the NATS max payload: ${err.message}`);
          default:
            return this.policy(this.noWorker, id, Code.NO_WORKER, `request failed: ${err.message}`);
        }
      }
      const d = decodeDecision(reply.data);
      if (d === null) {
        // Something answered, and not with a decision: refused whatever
        // the policies say, since a reply is not "no worker".
        return refused(id, Code.BAD_REPLY, `unreadable reply: ${JSON.stringify(sc.decode(reply.data).slice(0, 256))}`);
      }
      if (d.code === Code.SHUTTING_DOWN && attempt < SHUTTING_DOWN_RETRIES) {
        continue; // a worker that was stopping asks us to try another one
      }
      return d;
    }
  }

  // noResponders tells "no trigger registered" from "no worker answering".
  async noResponders(type, option, id) {
    let registered;
    try {
      registered = await this.registered(type, option);
    } catch (err) {
      return this.policy(this.noWorker, id, Code.NO_WORKER,
        `no worker answered and the trigger registry cannot be read: ${err.message}`);
    }
    if (!registered) {
      return { id, allowed: true, code: Code.NO_TRIGGER, message: `no trigger function is registered for ${type}.${option}`, modified: false, functions: [] };
    }
    return this.policy(this.noWorker, id, Code.NO_WORKER, `trigger functions are registered for ${type}.${option} but no worker answered`);
  }

  // registered reads the registry keys <TYPE>.<OPTION> and <TYPE>.ANY: a
  // key that exists means registered, whatever its value. A bucket that
  // does not exist means no worker with a registry ever ran here.
  async registered(type, option) {
    const bucket = registryBucket(this.prefix);
    // checkAPI false: no $JS.API.INFO request, which a publisher's
    // permissions (deploy/nats) do not grant; the reads below are what
    // they grant, as for the Go SDK.
    const jsm = await this.nc.jetstreamManager({ checkAPI: false });
    let info;
    try {
      info = await jsm.streams.info(`KV_${bucket}`);
    } catch (err) {
      if (err.api_error && err.api_error.err_code === STREAM_NOT_FOUND) {
        return false;
      }
      throw err;
    }
    const kv = await this.nc.jetstream({ checkAPI: false }).views.kv(bucket, { bindOnly: true, allow_direct: info.config.allow_direct });
    for (const o of [option, ANY]) {
      const e = await kv.get(`${type}.${o}`);
      if (e !== null && e.operation !== "DEL" && e.operation !== "PURGE") {
        return true;
      }
    }
    return false;
  }

  policy(p, id, code, message) {
    return { id, allowed: p === Policy.ALLOW, code, message, modified: false, functions: [] };
  }
}

// refused is a refusal the client makes itself, whatever the policies.
function refused(id, code, message) {
  return { id, allowed: false, code, message, modified: false, functions: [] };
}

// decodeDecision parses a PRE reply as the Go SDK does, or returns null:
// a JSON object whose allowed, when present, is a boolean and whose id,
// code, message and function are strings, with at least one of id,
// allowed true, code.
function decodeDecision(data) {
  let d;
  try {
    d = JSON.parse(sc.decode(data));
  } catch {
    return null;
  }
  if (d === null || typeof d !== "object" || Array.isArray(d)) {
    return null;
  }
  if (d.allowed !== undefined && typeof d.allowed !== "boolean") {
    return null;
  }
  for (const f of ["id", "code", "message", "function"]) {
    if (d[f] !== undefined && d[f] !== null && typeof d[f] !== "string") {
      return null;
    }
  }
  d.allowed = d.allowed === true;
  if (!d.id && !d.code && !d.allowed) {
    return null;
  }
  d.functions = d.functions || [];
  return d;
}

module.exports = { Client, Policy, Code, newID, registryBucket, HEADER_DEADLINE, HEADER_MSG_ID };
