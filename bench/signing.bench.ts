/**
 * Signing benchmark: our build+sign and verify of SEOS messages against xmlsec1 and against the floor
 * (SHA-256 + base64 over the attachment bytes; RSA-2048 sign rate), for 10 KiB, 1 MiB, 20 MiB and 200 MiB
 * attachments, with peak-RSS growth measured in fresh child processes. See bench/README.md.
 *
 *   npx tsx bench/signing.bench.ts            # full run (a few minutes, ~1 GB of temp disk)
 *   npx tsx bench/signing.bench.ts --quick    # 10 KiB and 1 MiB only, few repetitions (smoke check)
 *   npx tsx bench/signing.bench.ts --sizes 10k,20m
 *
 * Markdown goes to stdout and to bench/out/signing.md; progress goes to stderr.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeTestPki, type TestPkiManifest } from '../certs/test-pki.ts';
import { loadPkcs12, type SigningIdentity } from '../src/pki/index.ts';
import {
  buildRegistrationRequest,
  signMessage,
  verifySignedMessage,
  writeSignedMessage,
  type AttachmentContent,
  type SeosMessage,
} from '../src/seos/index.ts';
import { machineInfo, machineMarkdown, toolVersion } from './lib/machine.ts';
import { fmtBytes, fmtMs, fmtRate, fmtRatio, fmtThroughput, markdownTable, passFail } from './lib/markdown.ts';
import { RssProbe, runRssProbe, type RssReport } from './lib/rss.ts';
import { median, summarize } from './lib/stats.ts';
import { forceGc, sampleAsync, sampleCommand, sampleSync, throughputSync, type Throughput } from './lib/timing.ts';
import { makeTempDir, parseSize, removeQuietly, removeTempDirs, sizeLabel, writeRandomFile } from './lib/files.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(THIS_FILE), '..');
const OUT_FILE = path.join(ROOT, 'bench', 'out', 'signing.md');

const KiB = 1024;
const MiB = 1024 * 1024;
/** Sizes signed in memory (signMessage with `{ source: 'bytes' }`) as well as streamed; above it, streaming only. */
const IN_MEMORY_MAX = 20 * MiB;
const DEFAULT_SIZES = [10 * KiB, 1 * MiB, 20 * MiB, 200 * MiB];
const QUICK_SIZES = [10 * KiB, 1 * MiB];

// ---------------------------------------------------------------------------------------------------------------
// The message under test

/** A registration request shaped like real traffic (Cyrillic names, one correspondent) with one attachment. */
function makeMessage(content: AttachmentContent): SeosMessage {
  return buildRegistrationRequest(
    {
      sender: { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: '{11111111-1111-1111-1111-111111111111}' },
      recipient: { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: '{22222222-2222-2222-2222-222222222222}' },
      messageGuid: '{aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee}',
      messageDate: '2024-05-06T10:20:30.123+03:00',
    },
    {
      id: { number: { docNumber: 'АБ-12-345', docDate: '2024-05-06' }, documentGuid: '{33333333-3333-3333-3333-333333333333}' },
      kind: 'Молба',
      about: 'Заявление за издаване на удостоверение',
      correspondents: [{ name: 'Иван Иванов', city: 'София', address: 'ул. „Витоша“ 1' }],
      attachments: [{ fileName: 'приложение.bin', mimeType: 'application/octet-stream', content }],
    },
  );
}

function loadIdentity(pkiDir: string): { manifest: TestPkiManifest; identity: SigningIdentity } {
  const manifest = JSON.parse(fs.readFileSync(path.join(pkiDir, 'manifest.json'), 'utf8')) as TestPkiManifest;
  const identity = loadPkcs12(fs.readFileSync(manifest.admins[0].p12Path), manifest.p12Password);
  return { manifest, identity };
}

async function signToFile(message: SeosMessage, identity: SigningIdentity, outPath: string): Promise<number> {
  const out = fs.createWriteStream(outPath);
  const { bytes } = await writeSignedMessage(message, identity, out);
  out.end();
  await finished(out);
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// xmlsec1 helpers

const SIGNATURE_START = Buffer.from('<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"', 'utf8');
const TAIL_BYTES = 64 * KiB;

/** The last TAIL_BYTES of a file (the Signature is the last child of Message, so it is in there). */
function readTail(file: string): { tail: Buffer; offset: number } {
  const size = fs.statSync(file).size;
  const offset = Math.max(0, size - TAIL_BYTES);
  const fd = fs.openSync(file, 'r');
  try {
    const tail = Buffer.alloc(size - offset);
    fs.readSync(fd, tail, 0, tail.length, offset);
    return { tail, offset };
  } finally {
    fs.closeSync(fd);
  }
}

function digestValueOf(file: string): string | undefined {
  const matches = [...readTail(file).tail.toString('latin1').matchAll(/<(?:\w+:)?DigestValue>([^<]*)<\/(?:\w+:)?DigestValue>/g)];
  return matches.at(-1)?.[1].trim();
}

/**
 * An xmlsec1 template from our signed output: DigestValue and SignatureValue emptied, KeyInfo replaced by an
 * empty X509Certificate for xmlsec1 to fill. Works on the tail only (copy, truncate, append), so a 270 MB file is
 * never held in memory or scanned by a regex.
 */
function makeTemplate(signedPath: string, templatePath: string): void {
  const { tail, offset } = readTail(signedPath);
  const at = tail.lastIndexOf(SIGNATURE_START);
  if (at < 0) throw new Error(`no <Signature> in the last ${TAIL_BYTES} bytes of ${signedPath}`);
  const signature = tail.subarray(at).toString('utf8')
    .replace(/<DigestValue>[^<]*<\/DigestValue>/, '<DigestValue></DigestValue>')
    .replace(/<SignatureValue>[^<]*<\/SignatureValue>/, '<SignatureValue></SignatureValue>')
    .replace(/<KeyInfo>[\s\S]*<\/KeyInfo>/, '<KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo>');
  fs.copyFileSync(signedPath, templatePath);
  fs.truncateSync(templatePath, offset + at);
  fs.appendFileSync(templatePath, signature);
}

function xmlsecSignArgs(manifest: TestPkiManifest, template: string, out: string): string[] {
  const admin = manifest.admins[0];
  return ['--sign', '--privkey-pem', `${admin.keyPath},${admin.certPath}`, '--output', out, template];
}

function xmlsecVerifyArgs(manifest: TestPkiManifest, signed: string): string[] {
  return ['--verify', '--trusted-pem', manifest.ca.certPath, signed];
}

// ---------------------------------------------------------------------------------------------------------------
// Child-process probes (peak RSS)

type ProbeKind = 'sign-stream' | 'sign-mem' | 'verify';

/**
 * Runs one case in this (fresh) process and prints an RssReport. The baseline is taken after the modules and the
 * identity are loaded and a tiny message was signed and verified once (so compiled code is not counted);
 * sign-stream reads the attachment from its file during the measured part; sign-mem has the attachment bytes
 * loaded before the baseline (the model already holds them); verify reads the signed file after the baseline.
 */
async function probeMain(kind: ProbeKind, pkiDir: string, input: string, output: string | undefined): Promise<void> {
  const { identity } = loadIdentity(pkiDir);
  const tiny = signMessage(makeMessage({ source: 'bytes', bytes: Buffer.from('warm-up') }), identity);
  verifySignedMessage(tiny);
  if (kind === 'sign-stream') {
    const message = makeMessage({ source: 'file', path: input });
    const probe = RssProbe.start();
    const t0 = performance.now();
    const bytes = await signToFile(message, identity, output!);
    probe.finish({ ms: performance.now() - t0, bytes });
  } else if (kind === 'sign-mem') {
    const message = makeMessage({ source: 'bytes', bytes: fs.readFileSync(input) });
    const probe = RssProbe.start();
    const t0 = performance.now();
    const signed = signMessage(message, identity);
    probe.finish({ ms: performance.now() - t0, bytes: signed.length });
  } else {
    const probe = RssProbe.start();
    const t0 = performance.now();
    const buffer = fs.readFileSync(input);
    const verified = verifySignedMessage(buffer);
    const ms = performance.now() - t0;
    probe.finish({ ms, bytes: buffer.length, type: verified.message.body.type });
  }
}

function probe(kind: ProbeKind, pkiDir: string, input: string, output?: string): RssReport {
  const args = ['--probe', kind, '--pki', pkiDir, '--input', input, ...(output ? ['--output', output] : [])];
  return runRssProbe(THIS_FILE, args, { cwd: ROOT });
}

// ---------------------------------------------------------------------------------------------------------------
// The benchmark

interface Plan {
  runs: number;
  warmup: number;
  xmlsecRuns: number;
}

function planFor(size: number, quick: boolean): Plan {
  if (quick) return size <= 64 * KiB ? { runs: 30, warmup: 5, xmlsecRuns: 10 } : { runs: 5, warmup: 1, xmlsecRuns: 3 };
  if (size <= 64 * KiB) return { runs: 200, warmup: 20, xmlsecRuns: 200 };
  if (size <= 4 * MiB) return { runs: 20, warmup: 3, xmlsecRuns: 20 };
  if (size <= 64 * MiB) return { runs: 7, warmup: 1, xmlsecRuns: 7 };
  return { runs: 3, warmup: 1, xmlsecRuns: 3 };
}

interface SizeResult {
  size: number;
  messageBytes: number;
  plan: Plan;
  floor: number[];
  signMem?: number[];
  signStream: number[];
  verify: number[];
  xmlsecSign: number[];
  xmlsecVerify: number[];
  ourDigest?: string;
  xmlsecDigest?: string;
  xmlsecVerifiesOurs: boolean;
  oursVerifiesXmlsec: boolean;
  streamEqualsMem?: boolean;
  rssSignMem?: RssReport;
  rssSignStream: RssReport;
  rssVerify: RssReport;
}

interface Baselines {
  rsa: Throughput;
  rsaVerify: Throughput;
  xmlsecStartupSign: number[];
  xmlsecStartupVerify: number[];
  tinyMessageBytes: number;
  signRate?: Throughput;
  verifyRate?: Throughput;
}

const log = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

let sink: unknown;

function sha256(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

async function benchSize(size: number, quick: boolean, tmp: string, manifest: TestPkiManifest, identity: SigningIdentity): Promise<SizeResult> {
  const label = sizeLabel(size);
  const plan = planFor(size, quick);
  const dir = path.join(tmp, `size-${size}`);
  fs.mkdirSync(dir);
  const attachmentPath = path.join(dir, 'attachment.bin');
  const memPath = path.join(dir, 'signed-mem.xml');
  const streamPath = path.join(dir, 'signed-stream.xml');
  const templatePath = path.join(dir, 'template.xml');
  const xmlsecPath = path.join(dir, 'signed-xmlsec1.xml');
  const probePath = path.join(dir, 'probe-out.xml');
  log(`\n== ${label}: writing the attachment (${plan.runs} runs, ${plan.warmup} warm-up)`);
  writeRandomFile(attachmentPath, size);

  // Floor and in-memory signing need the bytes in memory.
  let bytes: Buffer | undefined = fs.readFileSync(attachmentPath);
  log(`${label}: floor (sha256 + base64 of the raw bytes)`);
  const raw = bytes;
  const floor = sampleSync(() => {
    sink = crypto.createHash('sha256').update(raw).digest();
    sink = raw.toString('base64');
  }, plan);
  sink = undefined;

  let signMem: number[] | undefined;
  let memSha: string | undefined;
  if (size <= IN_MEMORY_MAX) {
    log(`${label}: ours, in-memory signMessage`);
    const message = makeMessage({ source: 'bytes', bytes });
    let signed: Buffer = Buffer.alloc(0);
    signMem = sampleSync(() => {
      signed = signMessage(message, identity);
    }, plan);
    fs.writeFileSync(memPath, signed);
    memSha = sha256(signed);
    signed = Buffer.alloc(0);
  }
  bytes = undefined;
  await forceGc();

  log(`${label}: ours, streaming writeSignedMessage (file -> file)`);
  const fileMessage = makeMessage({ source: 'file', path: attachmentPath });
  const signStream = await sampleAsync(() => signToFile(fileMessage, identity, streamPath), { ...plan, before: () => removeQuietly(streamPath) });
  const messageBytes = fs.statSync(streamPath).size;
  let streamEqualsMem: boolean | undefined;
  if (memSha) {
    const hash = crypto.createHash('sha256');
    for await (const chunk of fs.createReadStream(streamPath)) hash.update(chunk as Buffer);
    streamEqualsMem = hash.digest('hex') === memSha;
  }
  const signedPath = memSha ? memPath : streamPath;
  if (memSha) removeQuietly(streamPath);

  log(`${label}: ours, readFileSync + verifySignedMessage`);
  const check = verifySignedMessage(fs.readFileSync(signedPath));
  if (check.message.body.type !== 'MSG_DocumentRegistrationRequest') throw new Error('verify returned an unexpected message');
  const verify = sampleSync(() => {
    sink = verifySignedMessage(fs.readFileSync(signedPath));
  }, plan);
  sink = undefined;
  await forceGc();

  log(`${label}: xmlsec1 --sign (${plan.xmlsecRuns} runs)`);
  makeTemplate(signedPath, templatePath);
  const xmlsecSign = sampleCommand('xmlsec1', xmlsecSignArgs(manifest, templatePath, xmlsecPath), {
    runs: plan.xmlsecRuns,
    warmup: 1,
    before: () => removeQuietly(xmlsecPath),
  });
  const ourDigest = digestValueOf(signedPath);
  const xmlsecDigest = digestValueOf(xmlsecPath);
  removeQuietly(templatePath);

  log(`${label}: xmlsec1 --verify of our signed file (${plan.xmlsecRuns} runs)`);
  const xmlsecVerify = sampleCommand('xmlsec1', xmlsecVerifyArgs(manifest, signedPath), { runs: plan.xmlsecRuns, warmup: 1 });
  const xmlsecVerifiesOurs = true; // sampleCommand throws on a non-zero exit

  let oursVerifiesXmlsec = false;
  try {
    verifySignedMessage(fs.readFileSync(xmlsecPath));
    oursVerifiesXmlsec = true;
  } catch (err) {
    log(`${label}: our verifier refused xmlsec1's output: ${(err as Error).message}`);
  }
  removeQuietly(xmlsecPath);
  await forceGc();

  log(`${label}: peak RSS probes (fresh child processes)`);
  const rssSignStream = probe('sign-stream', path.join(tmp, 'pki'), attachmentPath, probePath);
  removeQuietly(probePath);
  const rssSignMem = size <= IN_MEMORY_MAX ? probe('sign-mem', path.join(tmp, 'pki'), attachmentPath) : undefined;
  const rssVerify = probe('verify', path.join(tmp, 'pki'), signedPath);

  fs.rmSync(dir, { recursive: true, force: true });
  return {
    size, messageBytes, plan, floor, signMem, signStream, verify, xmlsecSign, xmlsecVerify, ourDigest, xmlsecDigest,
    xmlsecVerifiesOurs, oursVerifiesXmlsec, streamEqualsMem, rssSignMem, rssSignStream, rssVerify,
  };
}

async function baselines(
  sizes: number[], quick: boolean, tmp: string, manifest: TestPkiManifest, identity: SigningIdentity,
): Promise<Baselines> {
  const seconds = quick ? 0.5 : 2;
  log(`RSA-2048 PKCS#1 v1.5 SHA-256 sign rate over 100 bytes (${seconds} s)`);
  const hundred = crypto.randomBytes(100);
  const rsa = throughputSync(() => crypto.sign('sha256', hundred, identity.privateKey), seconds);
  const publicKey = crypto.createPublicKey(identity.privateKey);
  const rsaSignature = crypto.sign('sha256', hundred, identity.privateKey);
  const rsaVerify = throughputSync(() => crypto.verify('sha256', hundred, publicKey, rsaSignature), seconds);

  log('xmlsec1 start-up: sign and verify of a tiny message');
  const tinyPath = path.join(tmp, 'tiny.xml');
  const tinyTemplate = path.join(tmp, 'tiny-template.xml');
  const tinyXmlsec = path.join(tmp, 'tiny-xmlsec1.xml');
  fs.writeFileSync(tinyPath, signMessage(makeMessage({ source: 'bytes', bytes: Buffer.from('x') }), identity));
  makeTemplate(tinyPath, tinyTemplate);
  const runs = quick ? 10 : 50;
  const xmlsecStartupSign = sampleCommand('xmlsec1', xmlsecSignArgs(manifest, tinyTemplate, tinyXmlsec), { runs, warmup: 2, before: () => removeQuietly(tinyXmlsec) });
  const xmlsecStartupVerify = sampleCommand('xmlsec1', xmlsecVerifyArgs(manifest, tinyPath), { runs, warmup: 2 });
  const tinyMessageBytes = fs.statSync(tinyPath).size;

  let signRate: Throughput | undefined;
  let verifyRate: Throughput | undefined;
  if (sizes.includes(10 * KiB)) {
    // The endpoint verifies the bytes it received over HTTP, already in memory: that is what is timed here.
    log(`10 KiB throughput: signMessage and verifySignedMessage (bytes in memory) loops (${seconds} s each)`);
    const bytes = crypto.randomBytes(10 * KiB);
    const message = makeMessage({ source: 'bytes', bytes });
    const signed = signMessage(message, identity);
    signRate = throughputSync(() => {
      sink = signMessage(message, identity);
    }, seconds);
    verifyRate = throughputSync(() => {
      sink = verifySignedMessage(signed);
    }, seconds);
    sink = undefined;
  }
  return { rsa, rsaVerify, xmlsecStartupSign, xmlsecStartupVerify, tinyMessageBytes, signRate, verifyRate };
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const med = (xs: number[] | undefined): number | undefined => (xs && xs.length ? median(xs) : undefined);
const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;
const rssCell = (r: RssReport | undefined): string => (r ? fmtBytes(r.growth) : 'n/a');

/** Our build+sign time for ratios: in-memory where measured, streaming otherwise. */
function oursSign(r: SizeResult): { ms: number | undefined; note: string } {
  return r.signMem ? { ms: med(r.signMem), note: '' } : { ms: med(r.signStream), note: ' (stream)' };
}

function render(results: SizeResult[], base: Baselines, header: string, quick: boolean): string {
  const out: string[] = [];
  out.push(`# SEOS signing benchmark${quick ? ' (--quick: few repetitions, smoke check only)' : ''}`, '', header, '');

  out.push('## Results (medians)', '');
  const rows = results.map((r) => {
    const ours = oursSign(r);
    const xsSign = med(r.xmlsecSign);
    const floor = med(r.floor);
    const verify = med(r.verify);
    const xsVerify = med(r.xmlsecVerify);
    const digestOk = r.ourDigest !== undefined && r.ourDigest === r.xmlsecDigest;
    return [
      sizeLabel(r.size),
      fmtBytes(r.messageBytes),
      r.signMem ? fmtMs(med(r.signMem)) : 'not run',
      fmtMs(med(r.signStream)),
      fmtMs(xsSign),
      fmtRatio(div(xsSign, ours.ms)) + ours.note,
      fmtMs(floor),
      fmtRatio(div(ours.ms, floor)) + ours.note,
      fmtMs(verify),
      fmtMs(xsVerify),
      fmtRatio(div(verify, xsVerify)),
      rssCell(r.rssSignMem),
      rssCell(r.rssSignStream),
      rssCell(r.rssVerify),
      digestOk ? 'yes' : 'NO',
    ];
  });
  out.push(markdownTable(
    ['attachment', 'message', 'ours sign (mem)', 'ours sign (stream)', 'xmlsec1 sign', 'xmlsec1/ours', 'floor', 'ours/floor',
      'ours verify', 'xmlsec1 verify', 'ours/xmlsec1', 'RSS Δ sign (mem)', 'RSS Δ sign (stream)', 'RSS Δ verify', 'digest equal'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'center'],
  ));
  out.push(
    '',
    '- ours sign (mem): `signMessage` with the attachment as `{ source: \'bytes\' }`, from the model to the signed Buffer.',
    '- ours sign (stream): `writeSignedMessage` from the attachment file to an output file (stream closed); the only variant run for sizes above 20 MiB. Ratios marked (stream) use it.',
    '- ours verify: `fs.readFileSync` + `verifySignedMessage` (the read is included).',
    '- xmlsec1 sign / verify: whole-process wall time of `xmlsec1` (spawnSync), so they include its start-up: ' +
      `sign ${fmtMs(med(base.xmlsecStartupSign))}, verify ${fmtMs(med(base.xmlsecStartupVerify))} on a ${fmtBytes(base.tinyMessageBytes)} message (subtract to compare the work alone).`,
    '- floor: SHA-256 + base64 over the raw attachment bytes (our signer hashes the base64 text, 4/3 as many bytes, so ~1.3x of the hash part is inherent).',
    '- RSS Δ: peak RSS minus the RSS at the start of the case, each case in a fresh child process. sign (mem) starts with the attachment bytes already loaded; sign (stream) reads them from the file; verify starts before reading the file.',
    '- digest equal: xmlsec1 signing a template made from our output computes the same DigestValue as we do.',
    '',
  );

  out.push('## Baselines', '');
  const r10 = results.find((r) => r.size === 10 * KiB);
  const rsaMs = 1000 / base.rsa.opsPerSecond;
  const baseRows: string[][] = [
    ['RSA-2048 PKCS#1 v1.5 SHA-256 sign (crypto.sign, 100 bytes)', fmtRate(base.rsa.opsPerSecond, 'signs/s'), fmtMs(rsaMs) + ' each'],
    ['RSA-2048 PKCS#1 v1.5 SHA-256 verify (crypto.verify, 100 bytes)', fmtRate(base.rsaVerify.opsPerSecond, 'verifies/s'), fmtMs(1000 / base.rsaVerify.opsPerSecond) + ' each'],
    ['xmlsec1 start-up: sign a tiny message', fmtMs(med(base.xmlsecStartupSign)), `n=${base.xmlsecStartupSign.length}`],
    ['xmlsec1 start-up: verify a tiny message', fmtMs(med(base.xmlsecStartupVerify)), `n=${base.xmlsecStartupVerify.length}`],
  ];
  if (base.signRate) {
    baseRows.push(['10 KiB: signMessage loop, one thread', fmtRate(base.signRate.opsPerSecond, 'signs/s'),
      `${fmtRatio(base.signRate.opsPerSecond / base.rsa.opsPerSecond)} of the RSA sign rate${r10?.signMem ? `; 1 / median of the timed runs: ${fmtRate(1000 / median(r10.signMem), 'signs/s')}` : ''}`]);
  }
  if (base.verifyRate) {
    baseRows.push(['10 KiB: verifySignedMessage loop on bytes in memory, one thread', fmtRate(base.verifyRate.opsPerSecond, 'verifies/s'),
      r10 ? `1 / median of the timed runs: ${fmtRate(1000 / median(r10.verify), 'verifies/s')}` : '']);
  }
  out.push(markdownTable(['measure', 'value', 'note'], baseRows, ['left', 'right', 'left']), '');

  out.push('## Targets', '');
  const r20 = results.find((r) => r.size === 20 * MiB);
  const r200 = results.find((r) => r.size === 200 * MiB);
  const targets: string[][] = [];
  const target = (name: string, measured: string, ok: boolean | undefined): void => {
    targets.push([name, measured, passFail(ok)]);
  };
  if (r20) {
    const ours = med(r20.signMem);
    const stream = med(r20.signStream);
    const floor = med(r20.floor);
    const x = div(ours, floor);
    target('20 MiB build+sign ≤ 3x the floor', `${fmtRatio(x)} (${fmtMs(ours)} vs ${fmtMs(floor)}; stream ${fmtRatio(div(stream, floor))})`, x === undefined ? undefined : x <= 3);
    const y = div(med(r20.xmlsecSign), ours);
    target('20 MiB build+sign ≥ 4x faster than xmlsec1', `${fmtRatio(y)} (xmlsec1 ${fmtMs(med(r20.xmlsecSign))}; stream ${fmtRatio(div(med(r20.xmlsecSign), stream))})`, y === undefined ? undefined : y >= 4);
    const v = div(med(r20.verify), med(r20.xmlsecVerify));
    target('20 MiB verify ≤ 2x xmlsec1', `${fmtRatio(v)} (${fmtMs(med(r20.verify))} vs ${fmtMs(med(r20.xmlsecVerify))})`, v === undefined ? undefined : v <= 2);
    const m = r20.rssVerify.growth / r20.messageBytes;
    target('20 MiB verify peak RSS growth < 5x the message', `${fmtBytes(r20.rssVerify.growth)} = ${fmtRatio(m)} of ${fmtBytes(r20.messageBytes)} (absolute peak ${fmtBytes(r20.rssVerify.peak)})`, m < 5);
  } else {
    for (const t of ['20 MiB build+sign ≤ 3x the floor', '20 MiB build+sign ≥ 4x faster than xmlsec1', '20 MiB verify ≤ 2x xmlsec1', '20 MiB verify peak RSS growth < 5x the message']) {
      target(t, 'not run', undefined);
    }
  }
  if (r200) {
    target('200 MiB streaming sign peak RSS growth < 64 MiB', `${fmtBytes(r200.rssSignStream.growth)} (file → file)`, r200.rssSignStream.growth < 64 * MiB);
  } else {
    target('200 MiB streaming sign peak RSS growth < 64 MiB', 'not run', undefined);
  }
  target('10 KiB ≥ 1,000 signs/s on one core', base.signRate ? fmtRate(base.signRate.opsPerSecond, 'signs/s') : 'not run',
    base.signRate ? base.signRate.opsPerSecond >= 1000 : undefined);
  target('10 KiB ≥ 2,000 verifies/s on one core', base.verifyRate ? fmtRate(base.verifyRate.opsPerSecond, 'verifies/s') : 'not run',
    base.verifyRate ? base.verifyRate.opsPerSecond >= 2000 : undefined);
  out.push(markdownTable(['target', 'measured', 'result'], targets, ['left', 'left', 'center']), '');

  out.push('## Correctness', '');
  out.push(markdownTable(
    ['attachment', 'our DigestValue', 'xmlsec1 DigestValue', 'equal', 'xmlsec1 verifies ours', 'ours verifies xmlsec1\'s', 'stream bytes = mem bytes'],
    results.map((r) => [
      sizeLabel(r.size), r.ourDigest ?? '?', r.xmlsecDigest ?? '?', r.ourDigest !== undefined && r.ourDigest === r.xmlsecDigest ? 'yes' : 'NO',
      r.xmlsecVerifiesOurs ? 'yes' : 'NO', r.oursVerifiesXmlsec ? 'yes' : 'NO',
      r.streamEqualsMem === undefined ? 'n/a' : r.streamEqualsMem ? 'yes' : 'NO',
    ]),
    ['left', 'left', 'left', 'center', 'center', 'center', 'center'],
  ), '');

  out.push('## Spread (ms)', '');
  const spread: string[][] = [];
  for (const r of results) {
    const cases: [string, number[] | undefined, number][] = [
      ['floor', r.floor, r.size],
      ['ours sign (mem)', r.signMem, r.messageBytes],
      ['ours sign (stream)', r.signStream, r.messageBytes],
      ['xmlsec1 sign', r.xmlsecSign, r.messageBytes],
      ['ours verify', r.verify, r.messageBytes],
      ['xmlsec1 verify', r.xmlsecVerify, r.messageBytes],
    ];
    for (const [name, xs, bytes] of cases) {
      if (!xs) continue;
      const s = summarize(xs);
      spread.push([sizeLabel(r.size), name, String(s.n), fmtMs(s.min), fmtMs(s.median), fmtMs(s.p90), fmtMs(s.max), fmtThroughput(bytes, s.median)]);
    }
  }
  out.push(markdownTable(['attachment', 'case', 'n', 'min', 'median', 'p90', 'max', 'median rate'], spread, ['left', 'left']), '');
  out.push('Rates are over the message bytes (the attachment bytes for the floor). The machine may be shared and noisy: trust the ratios, measured minutes apart in one run, over the absolute times.', '');

  out.push('## Peak RSS (child processes)', '');
  const rssRows: string[][] = [];
  for (const r of results) {
    for (const [name, rep] of [['sign (mem)', r.rssSignMem], ['sign (stream)', r.rssSignStream], ['verify', r.rssVerify]] as const) {
      if (!rep) continue;
      rssRows.push([sizeLabel(r.size), name, fmtBytes(rep.baseline), fmtBytes(rep.peak), fmtBytes(rep.growth), fmtRatio(rep.growth / r.messageBytes), rep.peakSource, fmtMs(rep.extra.ms as number)]);
    }
  }
  out.push(markdownTable(['attachment', 'case', 'baseline', 'peak', 'growth', 'growth / message', 'peak from', 'time'], rssRows, ['left', 'left']), '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      strict: { type: 'boolean', default: false },
      probe: { type: 'string' },
      pki: { type: 'string' },
      input: { type: 'string' },
      output: { type: 'string' },
    },
    strict: true,
  });

  if (values.probe) {
    await probeMain(values.probe as ProbeKind, values.pki!, values.input!, values.output);
    return;
  }

  const xmlsecVersion = toolVersion('xmlsec1', ['--version']);
  if (!xmlsecVersion) {
    process.stderr.write('xmlsec1 is not installed or does not run; install it with: apt-get install xmlsec1\n');
    process.exit(2);
  }
  const quick = values.quick ?? false;
  const sizes = values.sizes ? values.sizes.split(',').map(parseSize) : quick ? QUICK_SIZES : DEFAULT_SIZES;

  const header = machineMarkdown(machineInfo(), { xmlsec1: xmlsecVersion });
  log(`${header}\n`);

  const tmp = makeTempDir('seos-bench-');
  try {
    log(`temp dir ${tmp}; making a test PKI`);
    makeTestPki({ out: path.join(tmp, 'pki') });
    const { manifest, identity } = loadIdentity(path.join(tmp, 'pki'));

    const base = await baselines(sizes, quick, tmp, manifest, identity);
    const results: SizeResult[] = [];
    for (const size of sizes) results.push(await benchSize(size, quick, tmp, manifest, identity));

    const markdown = render(results, base, header, quick);
    process.stdout.write(`${markdown}\n`);
    fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
    fs.writeFileSync(OUT_FILE, `${markdown}\n`);
    log(`\nwritten to ${path.relative(ROOT, OUT_FILE)}`);
    if (values.strict && /\| +FAIL +\|/.test(markdown)) process.exitCode = 1;
  } finally {
    removeTempDirs();
  }
}

await main();
