/**
 * `npm run demo`: two municipalities exchange a document over SEOS on this machine, end to end.
 *
 * Starts, on loopback and in this one process: a registry simulator that lists Община Алфа and Община Бета with
 * their demo certificates and endpoints, and two real gateways (each with its own SQLite file, spool, archive,
 * signing key and SEOS endpoint) that find each other through that registry. Redis is $REDIS_URL when set,
 * otherwise a private redis-server started for the run. Then Алфа sends a letter with an attachment to Бета by
 * ЕИК, Бета registers it, Алфа learns Бета's registration number, and the demo prints the journey (both sides'
 * status histories and delivery logs) and verifies both delivery logs with their evidence archives.
 *
 * Files go under ./data/demo (or $SEOS_DEMO_DIR): `certs/` (made on the first run, reused later, marked DEMO),
 * `alfa/` and `beta/` (data dirs, wiped at every start), the two config files and `gateway.log` (the gateways'
 * operational logs, kept out of the terminal). Exit code 0 when the whole journey held, 1 otherwise (or after 60 s).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createGateway, type Gateway } from '../src/app/gateway.ts';
import { queryDeliveryLog, verifyDeliveryLog, type LoggedEntry } from '../src/audit/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { freePort, startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import { isGatewayError } from '../src/errors/index.ts';
import { DOCUMENT_EXCHANGE_SERVICE_GUID, type RegistryEntity } from '../src/seos/registry/index.ts';
import { formatDate, newGuid } from '../src/seos/values.ts';
import { startRegistrySimulator, type RegistrySimulator } from '../src/simulators/registry-simulator.ts';
import { findDocument, getDocument, listAttachments, statusHistory, type DocumentRow, type StatusChange } from '../src/store/documents.ts';
import { makeTestPki, type TestPkiAdminEntry, type TestPkiManifest } from '../certs/test-pki.ts';

const TIMEOUT_MS = 60_000;
const ROOT = path.resolve(process.env.SEOS_DEMO_DIR ?? path.join('data', 'demo'));
const CERTS = path.join(ROOT, 'certs');
const LOG_FILE = path.join(ROOT, 'gateway.log');

interface Side {
  readonly key: 'alfa' | 'beta';
  readonly label: string;
  readonly title: string;
  readonly eik: string;
  readonly guid: string;
  readonly pki: TestPkiAdminEntry;
  readonly seosPort: number;
  readonly dataDir: string;
  readonly configPath: string;
  gateway?: Gateway;
}

const SIDES = {
  alfa: { label: 'Алфа', title: 'Община Алфа', eik: '000000001', guid: '{0a1f0000-0000-4000-8000-0000000000a1}', certName: 'obshtina-alfa' },
  beta: { label: 'Бета', title: 'Община Бета', eik: '000000002', guid: '{0b2e0000-0000-4000-8000-0000000000b2}', certName: 'obshtina-beta' },
} as const;

class DemoFailure extends Error {}

const out = (line = '') => process.stdout.write(`${line}\n`);
const rel = (p: string) => path.relative(process.cwd(), p) || '.';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const started = Date.now();
const deadline = started + TIMEOUT_MS;

async function main(): Promise<void> {
  let redis: RedisServer | undefined;
  let registry: RegistrySimulator | undefined;
  let logStream: fs.WriteStream | undefined;
  const sides: Side[] = [];
  let code = 1;
  try {
    await withinDeadline((async () => {
      const pki = demoCertificates();
      resetDemoData();
      logStream = fs.createWriteStream(LOG_FILE, { flags: 'w' });

      const redisUrl = process.env.REDIS_URL;
      if (redisUrl) await pingRedis(redisUrl);
      else redis = await startRedisServer();
      const ports = { alfa: await freePort(), beta: await freePort() };
      for (const key of ['alfa', 'beta'] as const) {
        const s = SIDES[key];
        const entry = pki.admins.find((a) => a.name === s.certName);
        if (!entry) throw new DemoFailure(`${rel(pki.manifestPath)} has no certificate for ${s.certName}; delete ${rel(CERTS)} to make new ones`);
        sides.push({
          key, label: s.label, title: s.title, eik: s.eik, guid: s.guid, pki: entry, seosPort: ports[key],
          dataDir: path.join(ROOT, key), configPath: path.join(ROOT, `${key}.json`),
        });
      }
      const [alfa, beta] = sides as [Side, Side];

      registry = await startRegistrySimulator({ entities: sides.map(registryEntity) });
      for (const side of sides) writeConfig(side, pki, registry.url, redisUrl ?? redis!.url);

      header(pki, registry.url, redisUrl ? `${redisAddress(redisUrl)} (REDIS_URL)` : `собствен redis-server (private) ${redis!.url}`);

      for (const side of sides) {
        side.gateway = await createGateway(loadConfig({ file: side.configPath, env: {} }), { mode: 'serve', logStream });
        await side.gateway.start();
      }
      // RegistrySync.start() runs its first sync on a timer; a full one now means both sides know each other
      // before anything is sent (what `seos-gateway registry sync --full` does).
      for (const side of sides) {
        const r = await side.gateway!.registrySync!.syncNow({ full: true });
        out(`   ${side.label}: регистърът е синхронизиран (registry synced, ${r.mode}): ${r.received} участници (participants)`);
      }
      out();

      await journey(alfa, beta);
      code = 0;
    })());
  } catch (error) {
    out();
    out(`ГРЕШКА (FAILED): ${describeError(error)}`);
    out(`  Журнал на шлюзовете (gateway log): ${rel(LOG_FILE)}`);
  } finally {
    // Everything stops even after a failure; each step bounded so a stuck one cannot hold the exit.
    for (const side of sides.reverse()) await bounded(side.gateway?.stop(), 5_000);
    await bounded(registry?.close(), 5_000);
    await bounded(redis?.stop(), 5_000);
    await bounded(logStream ? new Promise<void>((r) => logStream!.end(() => r())) : undefined, 2_000);
  }
  process.exit(code);
}

// ── the journey ──

async function journey(alfa: Side, beta: Side): Promise<void> {
  const A = alfa.gateway!;
  const B = beta.gateway!;
  const today = formatDate(new Date());
  const letter = [
    'ОБЩИНА АЛФА',
    '',
    'До кмета на Община Бета',
    '',
    'Уважаеми господин Кмет,',
    '',
    'Каним Ви на съвместно заседание за общия проект за почистване на река Искър,',
    `което ще се проведе на ${today} от 10:00 ч. в заседателната зала на Община Алфа.`,
    'Прилагаме проект на дневен ред.',
    '',
    'С уважение,',
    'Кмет на Община Алфа',
    '',
  ].join('\n');
  const attachment = Buffer.from(letter, 'utf8');
  const attachmentSha = sha256(attachment);
  const ourNumber = 'ОА-94-00-15';

  out(`1. ${alfa.label} изпраща документ (${alfa.label} sends a document) № ${ourNumber} / ${today} до ${beta.title} по ЕИК ${beta.eik} (to ${beta.title} by ЕИК)`);
  const sent = await A.outbound.sendDocument({
    recipient: beta.eik,
    externalId: `demo-${newGuid()}`,
    document: {
      id: { number: { docNumber: ourNumber, docDate: today } },
      kind: 'Писмо',
      about: 'Покана за съвместно заседание по проекта за река Искър',
      correspondents: [{ name: alfa.title, city: 'Алфа', bulstat: alfa.eik, kind: 'Corr_Other' }],
      attachments: [{ fileName: 'писмо.txt', mimeType: 'text/plain; charset=utf-8', content: { source: 'bytes', bytes: attachment } }],
    },
  });
  out(`   Приет от шлюза на ${alfa.label} (accepted): DocumentGUID ${sent.documentGuid}, MessageGUID ${sent.messageGuid}`);
  out(`   Файл (attachment): писмо.txt, ${attachment.length} байта (bytes), SHA-256 ${attachmentSha}`);

  const waiting = await until(() => {
    const d = getDocument(A.db, sent.documentId);
    if (d && (d.status === 'SENT_FAILED' || d.status === 'DS_REJECTED')) throw new DemoFailure(`${alfa.label}: the document ended ${d.status}`);
    return d?.status === 'DS_WAIT_REGISTRATION' ? d : undefined;
  }, `${alfa.label} to see DS_WAIT_REGISTRATION`);
  out(`2. ${alfa.label}: DS_WAIT_REGISTRATION - ${beta.label} прие документа и го даде за регистрация (${beta.label} accepted it, waiting for registration);` +
    ` входящ № при ${beta.label} (receipt number) ${waiting.theirNumber ?? '—'}`);

  const received = findDocument(B.db, 'in', sent.documentGuid, alfa.guid);
  if (!received) throw new DemoFailure(`${beta.label} has no incoming document ${sent.documentGuid}`);
  const files = listAttachments(B.db, received.id);
  out(`3. ${beta.label} получи (${beta.label} received): ${received.kind ?? '—'} „${received.about ?? ''}“ от ${received.counterpartyName} (ЕИК ${received.counterpartyEik})`);
  out(`   Номер при подателя (sender's number):  ${received.theirNumber ?? '—'} / ${received.theirDate ?? '—'}`);
  out(`   Входящ № в шлюза (receipt number):     ${received.ourNumber ?? '—'} / ${received.ourDate ?? '—'}`);
  out(`   Статус (status):                       ${received.status}`);
  if (files.length !== 1) throw new DemoFailure(`${beta.label} holds ${files.length} attachments, expected 1`);
  const [file] = files;
  const storedSha = sha256(B.spool.read(file.sha256));
  const same = storedSha === attachmentSha && file.sha256 === attachmentSha;
  out(`   Файл (attachment):                     ${file.fileName}, ${file.size} байта (bytes)`);
  out(`   SHA-256:                               ${storedSha} ${same ? '= изпратеното (equal to what was sent)' : '≠ ИЗПРАТЕНОТО (differs from what was sent)'}`);
  if (!same) throw new DemoFailure('the attachment Бета stored is not the one Алфа sent');

  const theirNumber = 'ОБ-94-00-1';
  out(`4. ${beta.label} регистрира документа (${beta.label} registers it): № ${theirNumber} / ${today}`);
  await B.outbound.reportStatus(received.id, { status: 'DS_REGISTERED', number: theirNumber, date: today });

  const registered = await until(() => {
    const d = getDocument(A.db, sent.documentId);
    return d?.status === 'DS_REGISTERED' && d.theirNumber === theirNumber ? d : undefined;
  }, `${alfa.label} to see DS_REGISTERED with ${beta.label}'s number`);
  out(`5. ${alfa.label}: DS_REGISTERED - регистриран при ${beta.label} под № ${registered.theirNumber} / ${registered.theirDate} (registered at ${beta.label} under this number)`);
  out();

  printTimeline([
    { side: alfa, document: registered },
    { side: beta, document: getDocument(B.db, received.id)! },
  ]);

  out('Проверка на доказателствата (evidence check): веригата на дневника, архивът и подписите (hash chain, archived messages, signatures)');
  let allOk = true;
  for (const side of [alfa, beta]) {
    const g = side.gateway!;
    const v = verifyDeliveryLog(g.db, { archive: g.archive, reverifySignatures: true });
    if (v.ok) {
      out(`   ${side.label}: наред (OK) - записи (entries): ${v.entries}, архивирани съобщения (archived messages): ${v.archiveChecked}, ` +
        `повторно проверени подписи (signatures re-verified): ${v.signaturesChecked}; последен запис (head) №${v.head?.seq} ${v.head?.hash.slice(0, 16)}…`);
    } else {
      allOk = false;
      out(`   ${side.label}: НАРУШЕНА (BROKEN) при запис №${v.firstBroken?.seq}: ${v.firstBroken?.code} ${v.firstBroken?.reasonBg} (${v.firstBroken?.reason})`);
    }
  }
  if (!allOk) throw new DemoFailure('the delivery-log verification failed');
  out('   Доказателствата са налице и проверими (the evidence holds): и двете страни пазят подписаните съобщения и отговорите им.');
  out();
  out(`Готово (done) за ${((Date.now() - started) / 1000).toFixed(1)} s. Данните са в ${rel(ROOT)} (data kept for inspection), журналът в ${rel(LOG_FILE)}.`);
  out(`Например (e.g.): npx tsx src/cli/main.ts audit verify --config ${rel(alfa.configPath)}`);
}

// ── the timeline ──

interface TimelineRow {
  at: string;
  side: string;
  order: number;
  what: string;
}

const STATUS_BG: Record<string, string> = {
  PENDING: 'чака изпращане (pending)',
  DS_WAIT_REGISTRATION: 'чака регистрация (waiting for registration)',
  DS_REGISTERED: 'регистриран (registered)',
  DS_REJECTED: 'отказан (rejected)',
  DS_STOPPED: 'спрян (stopped)',
  DS_CLOSED: 'приключен (closed)',
  DS_NOT_FOUND: 'не е намерен (not found)',
  DS_ALREADY_RECEIVED: 'вече получен (already received)',
  SENT_FAILED: 'неуспешно изпращане (sending failed)',
};

const SOURCE_BG: Record<string, string> = {
  gateway: 'шлюза (the gateway)',
  peer: 'другата страна (the peer)',
  'records-system': 'деловодната система (the records system)',
  operator: 'оператор (an operator)',
};

const MESSAGE_BG: Record<string, string> = {
  MSG_DocumentRegistrationRequest: 'искане за регистрация (registration request)',
  MSG_DocumentStatusResponse: 'статус (status response)',
  MSG_DocumentStatusRequest: 'запитване за статус (status request)',
  MSG_Error: 'грешка (error message)',
};

function statusText(status: string | undefined): string {
  return status ? `${status} ${STATUS_BG[status] ?? ''}`.trim() : '';
}

const DETAIL_BG: Record<string, string> = {
  accepted: 'приет от деловодната система (accepted from the records system)',
  received: 'получен по СЕОС (received over SEOS)',
  'retries exhausted': 'опитите са изчерпани (retries exhausted)',
};

function describeStatus(change: StatusChange, document: DocumentRow): string {
  const by = SOURCE_BG[change.source] ?? change.source;
  // The peer's own word for the status (or the message that carried it) adds nothing to the status itself.
  const shown = change.detail && change.detail !== change.status && !/^MSG_/.test(change.detail);
  const detail = shown ? `; ${DETAIL_BG[change.detail!] ?? change.detail}` : '';
  const doc = document.direction === 'out' ? 'изходящ (outgoing)' : 'входящ (incoming)';
  return `статус на ${doc} документ: ${statusText(change.status)} - от ${by}${detail}`;
}

function describeEntry(e: LoggedEntry): string {
  const msg = e.messageType ? MESSAGE_BG[e.messageType] ?? e.messageType : 'съобщение (message)';
  const peer = e.counterparty?.name ?? e.counterparty?.guid ?? '';
  const status = e.status ? ` [${e.status}]` : '';
  const evidence = [e.wireSha256 && `съобщение (wire) ${e.wireSha256.slice(0, 12)}…`, e.replySha256 && `отговор (reply) ${e.replySha256.slice(0, 12)}…`]
    .filter(Boolean).join(', ');
  const tail = evidence ? `; архив (archive): ${evidence}` : '';
  switch (e.type) {
    case 'message-queued':
      return `дневник №${e.seq}: ${msg} към ${peer} подписано и в опашката (signed and queued)${status}${tail}`;
    case 'attempt': {
      // An empty SubmitResult (the normal answer to a status push) carries no status, whatever the entry says.
      const answer = e.outcome === 'delivered' && !e.replySha256 ? ', празен отговор (empty reply)' : status;
      return `дневник №${e.seq}: опит за доставка до ${peer} (delivery attempt): ${e.outcome ?? '?'}${answer}${e.detail ? ` (${e.detail})` : ''}${tail}`;
    }
    case 'message-received':
      return `дневник №${e.seq}: получено (received) ${msg} от ${peer}: ${e.outcome ?? ''}${status}${tail}`;
    case 'message-sent':
      return `дневник №${e.seq}: изпратен подписан отговор (signed reply sent) ${msg} до ${peer}${status}${tail}`;
    case 'status-change':
      return `дневник №${e.seq}: промяна на статус от ${e.actor ? SOURCE_BG[e.actor] ?? e.actor : '?'} (status change)${status}; ${msg} към ${peer} в опашката (queued)${tail}`;
    default:
      return `дневник №${e.seq}: ${e.type} ${e.outcome ?? ''}${status}${tail}`;
  }
}

function printTimeline(parts: Array<{ side: Side; document: DocumentRow }>): void {
  const rows: TimelineRow[] = [];
  for (const { side, document } of parts) {
    const db = side.gateway!.db;
    for (const change of statusHistory(db, document.id)) rows.push({ at: change.at, side: side.label, order: 1, what: describeStatus(change, document) });
    for (const entry of queryDeliveryLog(db)) rows.push({ at: entry.at, side: side.label, order: 0, what: describeEntry(entry) });
  }
  rows.sort((a, b) => a.at.localeCompare(b.at) || a.order - b.order);
  const t0 = rows.length ? Date.parse(rows[0].at) : 0;
  out('Хронология (timeline): статусите на документа и дневникът на доставките от двете страни (status history and delivery log of both sides)');
  out('   час (time)     +ms   страна (side)');
  for (const r of rows) {
    const local = formatLocalTime(new Date(r.at));
    const offset = `+${Date.parse(r.at) - t0}`.padStart(6);
    out(`   ${local} ${offset}  ${r.side.padEnd(5)} ${r.what}`);
  }
  out();
}

function formatLocalTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// ── set-up ──

/** The demo certificates: made on the first run, reused while complete and valid, remade otherwise. */
function demoCertificates(): TestPkiManifest {
  const manifestPath = path.join(CERTS, 'manifest.json');
  if (fs.existsSync(manifestPath)) {
    try {
      const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as TestPkiManifest;
      const usable = manifest.demo && manifest.admins.length >= 2 &&
        manifest.admins.every((a) => fs.existsSync(a.p12Path) && Date.parse(a.notAfter) > Date.now() + 24 * 3600_000);
      if (usable) return manifest;
      out(`Демонстрационните сертификати в ${rel(CERTS)} са непълни или изтичат; създават се нови (incomplete or expiring demo certificates; making new ones)`);
    } catch {
      out(`${rel(manifestPath)} не се чете; създават се нови сертификати (unreadable manifest; making new certificates)`);
    }
  } else {
    out(`Създават се демонстрационни сертификати в ${rel(CERTS)} (making demo certificates, first run only)`);
  }
  return makeTestPki({ out: CERTS, demo: true });
}

/** Every run starts from empty gateways: their data dirs (database, spool, archive) go, the certificates stay. */
function resetDemoData(): void {
  fs.mkdirSync(ROOT, { recursive: true });
  for (const key of ['alfa', 'beta']) fs.rmSync(path.join(ROOT, key), { recursive: true, force: true });
  for (const name of fs.readdirSync(ROOT)) {
    if (/\.db(-wal|-shm)?$/.test(name)) fs.rmSync(path.join(ROOT, name), { force: true });
  }
}

function registryEntity(side: Side): RegistryEntity {
  return {
    entityIdentifier: side.eik, guid: side.guid, administrativeBodyName: side.title, contact: {},
    certificateSN: side.pki.serialHex,
    services: [{
      guid: DOCUMENT_EXCHANGE_SERVICE_GUID, name: 'Документооборот', uri: `http://127.0.0.1:${side.seosPort}/seos`,
      status: 'Active', type: 'SEOS', version: '1',
    }],
    lastChange: new Date().toISOString(), status: 'Active',
  };
}

function writeConfig(side: Side, pki: TestPkiManifest, registryUrl: string, redisUrl: string): void {
  fs.mkdirSync(side.dataDir, { recursive: true });
  const config = {
    host: '127.0.0.1', port: 0, dataDir: side.dataDir, redisUrl, logLevel: 'info',
    self: { eik: side.eik, name: side.title, guid: side.guid },
    signing: { pkcs12Path: side.pki.p12Path, password: pki.p12Password },
    seos: {
      endpoint: { host: '127.0.0.1', port: side.seosPort, path: '/seos' },
      // Plain HTTP on loopback for the demo only; SEOS between administrations is HTTPS with mutual TLS.
      client: { allowInsecureHttp: true, connectTimeoutMs: 2000, responseTimeoutMs: 20_000 },
    },
    registry: { url: registryUrl, allowInsecureHttp: true },
    delivery: { retry: { firstDelayMs: 500, factor: 2, maxAttempts: 5, jitter: 0 }, reconcileIntervalMs: 2000, probeIntervalMs: 1000 },
  };
  fs.writeFileSync(side.configPath, JSON.stringify(config, null, 2) + '\n');
}

function header(pki: TestPkiManifest, registryUrl: string, redis: string): void {
  out();
  out('СЕОС: демонстрация на обмен между две общини (SEOS demo: two municipalities on this machine)');
  out();
  out(`   ВНИМАНИЕ: ДЕМОНСТРАЦИОННИ сертификати от измислен удостоверител, не са за реална работа (DEMO certificates, NOT for production): ${rel(CERTS)}`);
  for (const key of ['alfa', 'beta'] as const) {
    const s = SIDES[key];
    const cert = pki.admins.find((a) => a.name === s.certName)!;
    const cn = /CN=([^,]+)/.exec(cert.subject)?.[1] ?? cert.subject;
    out(`   ${s.title}: ЕИК ${s.eik}, GUID ${s.guid}, сертификат (certificate) "${cn}", сериен № (serial) ${cert.serialHex}`);
  }
  out(`   Регистър (registry simulator): ${registryUrl}`);
  out(`   Redis: ${redis}`);
  out('   Транспорт (transport): HTTP на 127.0.0.1 само за демонстрацията; в реална среда СЕОС работи по HTTPS с взаимна TLS автентикация');
  out('                          (plain HTTP on loopback for the demo only; production uses HTTPS with mutual TLS)');
  out(`   Конфигурации (configs): ${rel(path.join(ROOT, 'alfa.json'))}, ${rel(path.join(ROOT, 'beta.json'))}; журнал (log): ${rel(LOG_FILE)}`);
  out();
}

// ── helpers ──

/** Polls `check` until it returns a value (real asynchronous delivery: no fixed sleeps), up to the run's deadline. */
async function until<T>(check: () => T | undefined, what: string): Promise<T> {
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new DemoFailure(`timed out after ${TIMEOUT_MS / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An operator's Redis must answer now: the delivery queues would otherwise wait for it silently until the deadline. */
async function pingRedis(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let cause: Error | undefined;
  client.on('error', (error: Error) => { cause = error; }); // the socket's own error says more than the rejected connect
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new DemoFailure(`Redis от REDIS_URL (${redisAddress(url)}) не отговаря (does not answer): ${(cause ?? error as Error).message}; ` +
      'махнете REDIS_URL, за да стартира демото собствен redis-server (unset REDIS_URL and the demo starts its own redis-server)');
  } finally {
    client.disconnect();
  }
}

/** host:port of a Redis URL, never its password. */
function redisAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 6379}${u.pathname.length > 1 ? u.pathname : ''}`;
}

/** The whole run, bounded: whatever hangs (Redis, a port, a peer) ends as a failure at the deadline. */
function withinDeadline<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DemoFailure(`the demo did not finish within ${TIMEOUT_MS / 1000} s`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function bounded(work: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!work) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch((error) => out(`   (при спиране / while stopping: ${describeError(error)})`)),
    new Promise((r) => { timer = setTimeout(r, ms); }),
  ]).finally(() => clearTimeout(timer));
}

function describeError(error: unknown): string {
  if (isGatewayError(error)) return `${error.code}: ${error.descriptionBg ?? ''} (${error.message})`;
  if (error instanceof Error) return error.message;
  return String(error);
}

await main();
