import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { DEFAULT_EJOURNAL_FIELDS, type EjournalFieldMap } from '../config/ejournal-defaults.ts';

/**
 * A stand-in for eJournal and the central RNU (ORN) service, for tests, benchmarks and the demo, speaking the
 * contract the gateway assumes (docs/ejournal-contract.md): an OAuth2 client-credentials token endpoint with
 * expiring tokens, `POST /v1/events` with a bearer token (JSON, idempotent on RNU + status + time), and the ORN
 * GET. It records every event, checks that the events of each RNU arrive in the order they happened, and can be
 * told to fail, to be slow, to reject, to go down and to refuse tokens.
 *
 * Run alone: `npx tsx src/simulators/ejournal-simulator.ts [--port N] [--token-ttl S] [--delay MS]`; it prints its
 * base URL and serves `GET /_simulator/report` (counts and order violations), `GET /_simulator/events` and
 * `POST /_simulator/reset` for other processes (loopback only: it is a test tool).
 */
export interface ReceivedEvent {
  /** eJournal's id for it. */
  readonly id: string;
  readonly eventId?: string;
  readonly rnu: string;
  readonly status: string;
  readonly occurredAt: string;
  readonly administration?: string;
  readonly serviceCode?: string;
  readonly documentRegNumber?: string;
  readonly description?: string;
  readonly channel?: string;
  readonly idempotencyKey?: string;
  /** Date.now() when it was accepted. */
  readonly receivedAt: number;
}

export interface OrderViolation {
  readonly rnu: string;
  /** The event that arrived after a later one. */
  readonly event: ReceivedEvent;
  readonly after: ReceivedEvent;
}

export type SimulatorFailure = 'http500' | 'http503' | 'reset' | 'hang';

export interface EjournalSimulatorOptions {
  readonly port?: number;
  readonly host?: string;
  /** Lifetime of the tokens it issues (default 3600 s; tests use 1 s). */
  readonly tokenTtlSeconds?: number;
  /** Accepted client credentials (default { gateway: 'gateway-secret' }). */
  readonly clients?: Readonly<Record<string, string>>;
  /** May contain {rnu}. */
  readonly eventsPath?: string;
  /** The batch form (docs/ejournal-contract.md §4.1): `{ events: [...] }` in, `{ results: [{ status, id, error, message }] }` out. */
  readonly batchPath?: string;
  readonly tokenPath?: string;
  readonly ornPath?: string;
  /** Where it reads the fields of an event (the same map as the gateway's configuration). */
  readonly fields?: Partial<EjournalFieldMap>;
  /** When given, other statuses are refused with 422 UNKNOWN_STATUS. */
  readonly statuses?: readonly string[];
  /** How a repeat is answered: 409 (default) or 200 with result DUPLICATE. */
  readonly duplicateStatus?: 409 | 200;
  /** A delay before every answer: ms, or [min, max] at random. */
  readonly delayMs?: number | readonly [number, number];
}

export interface EjournalSimulatorStats {
  posts: number;
  /** Batch requests (each also counts its events in `posts`). */
  batches: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  invalid: number;
  unauthorized: number;
  injectedFailures: number;
  tokensIssued: number;
  tokensRefused: number;
  ornIssued: number;
}

export interface EjournalSimulator {
  /** Base URL (the eJournal endpoint URL of the configuration), e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly tokenUrl: string;
  readonly ornUrl: string;
  readonly port: number;
  readonly stats: EjournalSimulatorStats;
  /** Accepted events in arrival order, all or of one RNU. */
  events(rnu?: string): ReceivedEvent[];
  /** Events that arrived after an event of the same RNU that happened later. */
  orderViolations(): OrderViolation[];
  /** The next `n` event requests fail this way. */
  failNext(n: number, kind?: SimulatorFailure): void;
  /** Every event request matching fails this way until cleared with null. */
  failWhen(predicate: ((event: ReceivedEvent) => boolean) | null, kind?: SimulatorFailure): void;
  /** Events matching are refused (422 by default) until cleared with null. */
  rejectWhen(predicate: ((event: ReceivedEvent) => boolean) | null, answer?: { status?: number; error?: string; message?: string }): void;
  setDelay(ms: number | readonly [number, number]): void;
  /** Stops listening (connections are refused) until comeBack(). */
  goDown(): Promise<void>;
  comeBack(): Promise<void>;
  /** Every token issued so far stops working (the next request with one gets 401). */
  revokeTokens(): void;
  /** While true, event requests get 401 even with a fresh token. */
  refuseAllTokens(refuse: boolean): void;
  /** The next `n` ORN requests answer with this return code (not "0"). */
  ornFailNext(n: number, returnCode?: string): void;
  /** Records an event as if it had been received (to test duplicate answers). */
  seed(event: Omit<ReceivedEvent, 'id' | 'receivedAt'>): void;
  reset(): void;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

export async function startEjournalSimulator(options: EjournalSimulatorOptions = {}): Promise<EjournalSimulator> {
  const host = options.host ?? '127.0.0.1';
  const fields: EjournalFieldMap = { ...DEFAULT_EJOURNAL_FIELDS, ...options.fields };
  const clients = options.clients ?? { gateway: 'gateway-secret' };
  const eventsPath = options.eventsPath ?? '/v1/events';
  const batchPath = options.batchPath ?? '/v1/events/batch';
  const tokenPath = options.tokenPath ?? '/oauth2/token';
  const ornPath = options.ornPath ?? '/orn/connector/v1/WebServiceUniqueNumber';
  const statusSet = options.statuses ? new Set(options.statuses) : undefined;
  const eventsRe = new RegExp(`^${eventsPath.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace('\\{rnu\\}', '([^/]+)').replace('{rnu}', '([^/]+)')}$`);

  const stats: EjournalSimulatorStats = {
    posts: 0, batches: 0, accepted: 0, duplicates: 0, rejected: 0, invalid: 0, unauthorized: 0, injectedFailures: 0, tokensIssued: 0, tokensRefused: 0, ornIssued: 0,
  };
  const received: ReceivedEvent[] = [];
  const byKey = new Map<string, ReceivedEvent>();
  const latest = new Map<string, ReceivedEvent>();
  const violations: OrderViolation[] = [];
  const tokens = new Map<string, number>();
  let failQueue: SimulatorFailure[] = [];
  let failPredicate: { test: (e: ReceivedEvent) => boolean; kind: SimulatorFailure } | null = null;
  let rejectPredicate: { test: (e: ReceivedEvent) => boolean; status: number; error: string; message: string } | null = null;
  let delay: number | readonly [number, number] = options.delayMs ?? 0;
  let refuseTokens = false;
  let ornFailures: string[] = [];
  let counter = 0;
  let orn = 0;
  const sockets = new Set<Socket>();
  const hanging = new Set<http.ServerResponse>();

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const wait = () => {
    const ms = typeof delay === 'number' ? delay : delay[0] + Math.random() * (delay[1] - delay[0]);
    return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
  };
  const readBody = (req: http.IncomingMessage) => new Promise<Buffer | undefined>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { resolve(undefined); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
  });
  const bearer = (req: http.IncomingMessage): boolean => {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!m || refuseTokens) return false;
    const expires = tokens.get(m[1]);
    return expires !== undefined && expires > Date.now();
  };
  const fail = (res: http.ServerResponse, kind: SimulatorFailure) => {
    stats.injectedFailures++;
    if (kind === 'reset') { res.socket?.destroy(); return; }
    if (kind === 'hang') { hanging.add(res); return; }
    json(res, kind === 'http500' ? 500 : 503, { error: kind === 'http500' ? 'INTERNAL' : 'UNAVAILABLE' });
  };
  const text = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
  const get = (o: Record<string, unknown>, path: string | null) => {
    if (path === null) return undefined;
    let v: unknown = o;
    for (const p of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
    return text(v);
  };

  async function token(req: http.IncomingMessage, res: http.ServerResponse) {
    const body = await readBody(req);
    const form = new URLSearchParams(body?.toString('utf8') ?? '');
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, i));
      secret = decodeURIComponent(decoded.slice(i + 1));
    }
    if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' });
    if (!id || clients[id] === undefined || clients[id] !== secret) {
      stats.tokensRefused++;
      return json(res, 401, { error: 'invalid_client' });
    }
    const ttl = options.tokenTtlSeconds ?? 3600;
    const value = randomBytes(24).toString('base64url');
    tokens.set(value, Date.now() + ttl * 1000);
    stats.tokensIssued++;
    json(res, 200, { access_token: value, token_type: 'Bearer', expires_in: ttl, ...(form.get('scope') ? { scope: form.get('scope') } : {}) });
  }

  type Answer = { status: number; body: Record<string, unknown>; failure?: SimulatorFailure };

  async function event(req: http.IncomingMessage, res: http.ServerResponse, pathRnu: string | undefined) {
    stats.posts++;
    const body = await readBody(req);
    await wait();
    if (!bearer(req)) {
      stats.unauthorized++;
      return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body?.toString('utf8') ?? '') as Record<string, unknown>;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    } catch {
      stats.invalid++;
      return json(res, 400, { error: 'INVALID_JSON', message: 'the body is not a JSON object' });
    }
    const answer = one(parsed, pathRnu, text(req.headers['idempotency-key']), () => failQueue.shift());
    if (answer.failure) return fail(res, answer.failure);
    json(res, answer.status, answer.body);
  }

  /** The batch form: every event answered in order; a queued failure (failNext) fails the whole request. */
  async function batch(req: http.IncomingMessage, res: http.ServerResponse) {
    stats.batches++;
    const body = await readBody(req);
    await wait();
    if (!bearer(req)) {
      stats.unauthorized++;
      return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    let items: unknown;
    try {
      items = (JSON.parse(body?.toString('utf8') ?? '') as { events?: unknown }).events;
    } catch {
      items = undefined;
    }
    if (!Array.isArray(items) || items.length === 0) {
      stats.invalid++;
      return json(res, 400, { error: 'INVALID_JSON', message: 'expected { "events": [ ... ] }' });
    }
    const queued = failQueue.shift();
    if (queued) return fail(res, queued);
    const results = items.map((item) => {
      stats.posts++;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        stats.invalid++;
        return { status: 400, error: 'INVALID_EVENT', message: 'not an object' };
      }
      const answer = one(item as Record<string, unknown>, undefined, undefined, () => undefined);
      // An injected failure of one event in a batch: that event is answered 503 (a reset or hang cannot be per event).
      if (answer.failure) { stats.injectedFailures++; return { status: 503, error: 'UNAVAILABLE' }; }
      return { status: answer.status, ...answer.body };
    });
    json(res, 200, { results });
  }

  function one(parsed: Record<string, unknown>, pathRnu: string | undefined, idempotencyKey: string | undefined, takeQueued: () => SimulatorFailure | undefined): Answer {
    const incoming: ReceivedEvent = {
      id: '', receivedAt: 0,
      rnu: get(parsed, fields.rnu) ?? pathRnu ?? '', status: get(parsed, fields.status) ?? '', occurredAt: get(parsed, fields.occurredAt) ?? '',
      eventId: get(parsed, fields.eventId), administration: get(parsed, fields.administration), serviceCode: get(parsed, fields.serviceCode),
      documentRegNumber: get(parsed, fields.documentRegNumber), description: get(parsed, fields.description), channel: get(parsed, fields.channel),
      idempotencyKey,
    };
    const missing = (['rnu', 'status', 'occurredAt'] as const).filter((f) => !incoming[f]);
    if (fields.administration && !incoming.administration) missing.push('administration' as never);
    if (fields.serviceCode && !incoming.serviceCode) missing.push('serviceCode' as never);
    const time = Date.parse(incoming.occurredAt);
    if (missing.length > 0 || Number.isNaN(time)) {
      stats.invalid++;
      return { status: 400, body: { error: 'INVALID_EVENT', message: missing.length ? `missing ${missing.join(', ')}` : 'occurredAt is not a date-time' } };
    }
    const queued = takeQueued();
    if (queued) return { status: 0, body: {}, failure: queued };
    if (failPredicate?.test(incoming)) return { status: 0, body: {}, failure: failPredicate.kind };
    if (statusSet && !statusSet.has(incoming.status)) {
      stats.rejected++;
      return { status: 422, body: { error: 'UNKNOWN_STATUS', message: 'the status is not in the eJournal vocabulary' } };
    }
    if (rejectPredicate?.test(incoming)) {
      stats.rejected++;
      return { status: rejectPredicate.status, body: { error: rejectPredicate.error, message: rejectPredicate.message } };
    }
    const key = `${incoming.rnu}\u0000${incoming.status}\u0000${time}`;
    const known = byKey.get(key);
    if (known) {
      stats.duplicates++;
      return options.duplicateStatus === 200
        ? { status: 200, body: { id: known.id, result: 'DUPLICATE' } }
        : { status: 409, body: { id: known.id, error: 'DUPLICATE', message: 'already recorded' } };
    }
    accept(incoming, time);
    const stored = byKey.get(key)!;
    return { status: 201, body: { id: stored.id, result: 'ACCEPTED' } };
  }

  function accept(incoming: Omit<ReceivedEvent, 'id' | 'receivedAt'>, time: number) {
    const stored: ReceivedEvent = { ...incoming, id: `EJ-${++counter}`, receivedAt: Date.now() };
    byKey.set(`${stored.rnu}\u0000${stored.status}\u0000${time}`, stored);
    received.push(stored);
    stats.accepted++;
    const last = latest.get(stored.rnu);
    if (last && Date.parse(last.occurredAt) > time) violations.push({ rnu: stored.rnu, event: stored, after: last });
    else latest.set(stored.rnu, stored);
  }

  async function ornRequest(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    await wait();
    if (!bearer(req)) {
      stats.unauthorized++;
      return json(res, 401, { error: 'invalid_token' });
    }
    const failure = ornFailures.shift();
    if (failure !== undefined) return json(res, 200, { return_code: failure, description_code: 'ERROR', orn: null });
    if (!url.searchParams.get('bulstat') && !url.searchParams.get('type_service')) {
      return json(res, 200, { return_code: '2', description_code: 'MISSING_PARAMETERS', orn: null });
    }
    stats.ornIssued++;
    json(res, 200, { return_code: '0', description_code: 'OK', orn: `BGEJ${String(++orn).padStart(7, '0')}` });
  }

  function resetAll() {
    received.length = 0; byKey.clear(); latest.clear(); violations.length = 0; failQueue = []; ornFailures = [];
    failPredicate = null; rejectPredicate = null; refuseTokens = false;
    for (const k of Object.keys(stats) as Array<keyof EjournalSimulatorStats>) stats[k] = 0;
  }

  function report() {
    return {
      stats, events: received.length, rnus: latest.size, orderViolations: violations.length, cpuMicros: process.cpuUsage(),
      firstReceivedAt: received[0]?.receivedAt ?? null, lastReceivedAt: received[received.length - 1]?.receivedAt ?? null,
    };
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const route = async () => {
      if (req.method === 'POST' && url.pathname === tokenPath) return token(req, res);
      if (req.method === 'POST' && url.pathname === batchPath) return batch(req, res);
      const m = eventsRe.exec(url.pathname);
      if ((req.method === 'POST' || req.method === 'PUT') && m) return event(req, res, m[1] ? decodeURIComponent(m[1]) : undefined);
      if (req.method === 'GET' && url.pathname === ornPath) return ornRequest(req, res, url);
      if (req.method === 'GET' && url.pathname === '/_simulator/report') return json(res, 200, report());
      if (req.method === 'GET' && url.pathname === '/_simulator/events') return json(res, 200, received);
      if (req.method === 'POST' && url.pathname === '/_simulator/reset') { resetAll(); return json(res, 200, report()); }
      json(res, 404, { error: 'NOT_FOUND' });
    };
    route().catch(() => { if (!res.headersSent) json(res, 500, { error: 'SIMULATOR' }); });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)); });

  const listen = (port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve((server.address() as AddressInfo).port); });
  });
  const stopListening = () => new Promise<void>((resolve) => {
    for (const res of hanging) res.socket?.destroy();
    hanging.clear();
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  const port = await listen(options.port ?? 0);
  const base = `http://${host}:${port}`;

  return {
    url: base, tokenUrl: `${base}${tokenPath}`, ornUrl: `${base}${ornPath}`, port, stats,
    events: (rnu) => (rnu === undefined ? [...received] : received.filter((e) => e.rnu === rnu)),
    orderViolations: () => [...violations],
    failNext: (n, kind = 'http503') => { for (let i = 0; i < n; i++) failQueue.push(kind); },
    failWhen: (predicate, kind = 'http503') => { failPredicate = predicate ? { test: predicate, kind } : null; },
    rejectWhen: (predicate, answer = {}) => {
      rejectPredicate = predicate ? { test: predicate, status: answer.status ?? 422, error: answer.error ?? 'REJECTED', message: answer.message ?? 'refused by the simulator' } : null;
    },
    setDelay: (ms) => { delay = ms; },
    goDown: stopListening,
    comeBack: async () => { await listen(port); },
    revokeTokens: () => tokens.clear(),
    refuseAllTokens: (refuse) => { refuseTokens = refuse; },
    ornFailNext: (n, returnCode = '5') => { for (let i = 0; i < n; i++) ornFailures.push(returnCode); },
    seed: (e) => accept(e, Date.parse(e.occurredAt)),
    reset: resetAll,
    close: async () => { if (server.listening) await stopListening(); },
  };
}

// Run alone (the benchmark starts it in its own process so it does not share the gateway's event loop).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
  const simulator = await startEjournalSimulator({
    port: Number(arg('--port') ?? 0), tokenTtlSeconds: Number(arg('--token-ttl') ?? 3600), delayMs: Number(arg('--delay') ?? 0),
  });
  process.stdout.write(`${JSON.stringify({ url: simulator.url, tokenUrl: simulator.tokenUrl, ornUrl: simulator.ornUrl })}\n`);
  const stop = () => { void simulator.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
