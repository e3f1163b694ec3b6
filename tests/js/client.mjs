// Drives the official websocket client nats.ws from Node for tests/websocket.rs.
// NATS_URL: the ws:// or wss:// URL; SCENARIO: basic | reconnect | origin.
// Prints one JSON line per step on stdout; exits non-zero on failure.
import WebSocket from "ws";
import { connect, headers, StringCodec } from "nats.ws";

const url = process.env.NATS_URL;
const scenario = process.env.SCENARIO || "basic";
const origin = process.env.WS_ORIGIN;
const sc = StringCodec();

// nats.ws uses the global WebSocket (Node 20 has none): the `ws` package, remembering the
// socket so the test can see what the handshake negotiated.
let last = null;
globalThis.WebSocket = class extends WebSocket {
  constructor(u, protocols) {
    super(u, protocols, origin ? { origin } : {});
    last = this;
  }
};

function out(o) {
  process.stdout.write(JSON.stringify(o) + "\n");
}

const iters = new Map();
async function next(sub, ms = 5000) {
  if (!iters.has(sub)) iters.set(sub, sub[Symbol.asyncIterator]());
  const it = iters.get(sub);
  const t = setTimeout(() => {
    out({ error: "timeout waiting for a message" });
    process.exit(1);
  }, ms);
  const r = await it.next();
  clearTimeout(t);
  return r.value;
}

async function basic() {
  const nc = await connect({ servers: url });
  const sub = nc.subscribe("js.foo");
  nc.publish("js.foo", sc.encode("hello"));
  const m = await next(sub);
  if (sc.decode(m.data) !== "hello") throw new Error("bad payload");
  // Headers.
  const h = headers();
  h.set("X-Test", "1");
  nc.publish("js.foo", sc.encode("with headers"), { headers: h });
  const mh = await next(sub);
  if (mh.headers?.get("X-Test") !== "1") throw new Error("no header");
  // Request/reply with a payload over many frames.
  const svc = nc.subscribe("js.svc");
  (async () => {
    for await (const r of svc) r.respond(r.data.slice().reverse());
  })();
  const big = new Uint8Array(200000).map((_, i) => i % 256);
  const rep = await nc.request("js.svc", big, { timeout: 10000 });
  const want = big.slice().reverse();
  if (rep.data.length !== want.length || rep.data.some((b, i) => b !== want[i]))
    throw new Error("bad reply");
  // Many messages keep their order.
  for (let i = 0; i < 1000; i++) nc.publish("js.foo", sc.encode(String(i)));
  for (let i = 0; i < 1000; i++) {
    const x = await next(sub);
    if (sc.decode(x.data) !== String(i)) throw new Error(`order at ${i}`);
  }
  await nc.flush();
  out({ ok: true, extensions: last?.extensions || "", server: nc.info?.server_name ? "named" : "" });
  await nc.close();
}

async function reconnect() {
  const nc = await connect({
    servers: url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
    waitOnFirstConnect: true,
  });
  const sub = nc.subscribe("js.r");
  await nc.flush();
  out({ ready: true });
  // The test restarts the server, then writes a line.
  await new Promise((res) => process.stdin.once("data", res));
  const deadline = Date.now() + 20000;
  const it = sub[Symbol.asyncIterator]();
  let got = null;
  const pending = it.next().then((r) => (got = r.value));
  while (!got && Date.now() < deadline) {
    try {
      nc.publish("js.r", sc.encode("again"));
    } catch (_) {}
    await new Promise((r) => setTimeout(r, 200));
  }
  await Promise.race([pending, new Promise((r) => setTimeout(r, 100))]);
  if (!got || sc.decode(got.data) !== "again") throw new Error("nothing after restart");
  out({ ok: true });
  await nc.close();
}

async function refusedOrigin() {
  try {
    const nc = await connect({ servers: url, maxReconnectAttempts: 0, timeout: 5000 });
    await nc.close();
    out({ refused: false });
  } catch (e) {
    out({ refused: true, error: String(e?.message || e) });
  }
}

const run = { basic, reconnect, origin: refusedOrigin }[scenario];
run()
  .then(() => process.exit(0))
  .catch((e) => {
    out({ error: String(e?.stack || e) });
    process.exit(1);
  });
