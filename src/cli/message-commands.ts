import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { loadCertificate, loadSigningIdentity, type CertificateInfo, type SigningIdentity } from '../pki/index.ts';
import {
  buildUnsignedMessage, parseMessageXml, signMessage, verifySignedMessage,
  type Attachment, type SeosMessage, type VerifiedMessage,
} from '../seos/index.ts';
import { validateWithXmllint } from '../seos/schema-validation.ts';
import { parseXml } from '../xml/index.ts';
import { DSIG_NS, signXmlDocument, type SignatureProfileName } from '../xmldsig/index.ts';
import { messageFromJson } from './message-input.ts';

/**
 * `seos-gateway message build|sign|verify|validate|inspect`: what a municipal IT person needs to debug an
 * exchange with another administration by hand. Reports are in Bulgarian with the English term in parentheses;
 * every failure exits non-zero with the coded reason (printed by main.ts).
 */
const MAX_INPUT_BYTES = 1024 * 1024 * 1024;

interface KeyOptions { p12?: string; passwordEnv: string; key?: string; cert?: string; profile: string; keyinfo: string }

export function registerMessageCommands(program: Command): void {
  const message = program.command('message').description('build, sign, verify, validate and inspect SEOS messages (съобщения по СЕОС)');

  const withKeyOptions = (cmd: Command) => cmd
    .option('--p12 <file>', 'PKCS#12 file with the signing key and certificate')
    .option('--password-env <name>', 'environment variable holding the PKCS#12 password', 'SIGNING_PASSWORD')
    .option('--key <file>', 'PEM private key (instead of --p12)')
    .option('--cert <file>', 'PEM certificate (with --key)')
    .option('--profile <name>', 'rsa-sha256 (default) or rsa-sha1 for legacy peers', 'rsa-sha256')
    .option('--keyinfo <style>', 'standard (certificate once) or dotnet (certificate twice, as the .NET reference)', 'standard');

  withKeyOptions(message.command('build')
    .description('build a message from a JSON description; signed when a key is given (--p12 or --key/--cert)')
    .argument('<input.json>')
    .option('-o, --output <file>', 'write the XML here instead of standard output'))
    .action((input: string, opts: KeyOptions & { output?: string }) => {
      const msg = messageFromJson(readJson(input), path.dirname(path.resolve(input)));
      const signing = opts.p12 || opts.key;
      const xml = signing ? signMessage(msg, identityFrom(opts), signOptions(opts)) : buildUnsignedMessage(msg);
      emit(xml, opts.output, signing ? 'Съобщението е създадено и подписано (built and signed)' : 'Съобщението е създадено, без подпис (built, unsigned)');
    });

  withKeyOptions(message.command('sign')
    .description('sign an unsigned message: XML as it is (bytes kept), or a JSON description')
    .argument('<input>')
    .option('-o, --output <file>', 'write the signed XML here instead of standard output'))
    .action((input: string, opts: KeyOptions & { output?: string }) => {
      if (!opts.p12 && !opts.key) throw new GatewayError('GW_ERR_CLI_USAGE', 'give --p12 <file> or --key <file> --cert <file>');
      const identity = identityFrom(opts);
      let signed: Buffer;
      if (input.endsWith('.json')) {
        signed = signMessage(messageFromJson(readJson(input), path.dirname(path.resolve(input))), identity, signOptions(opts));
      } else {
        const xml = readInput(input);
        parseMessageXml(xml); // refuse what is not a valid SEOS message before putting a signature on it
        const doc = parseXml(xml);
        if (doc.root.children.some((c) => c.type === 'element' && c.ns === DSIG_NS && c.local === 'Signature')) {
          throw new GatewayError('GW_ERR_SIG_EXTRA_SIGNATURE', 'the message is already signed');
        }
        signed = signXmlDocument(xml, identity, signOptions(opts));
      }
      emit(signed, opts.output, 'Съобщението е подписано (signed)');
    });

  message.command('verify')
    .description('verify the signature of a received message and show who signed it')
    .argument('<signed.xml>')
    .option('--expect-cert <file>', 'the certificate the sender is registered with (PEM or DER); another signer fails')
    .option('--expect-serial <hex>', 'the certificate serial registered for the sender (hex, any case/leading zeros)')
    .option('--no-sha1', 'refuse RSA-SHA1 and SHA-1 digests')
    .option('--at <time>', 'also require the certificate to be valid at this time (ISO 8601), e.g. now')
    .option('--json', 'print the result as JSON')
    .action((input: string, opts: { expectCert?: string; expectSerial?: string; sha1: boolean; at?: string; json?: boolean }) => {
      const trusted = opts.expectCert ? loadCertificate(readInput(opts.expectCert)) : undefined;
      const at = opts.at === undefined ? undefined : opts.at === 'now' ? new Date() : new Date(opts.at);
      if (at && Number.isNaN(at.getTime())) throw new GatewayError('GW_ERR_CLI_USAGE', `--at "${opts.at}" is not a date`);
      const verified = verifySignedMessage(readInput(input), { allowSha1: opts.sha1, trustedCertificate: trusted, validAt: at });
      if (opts.expectSerial && normalizeHex(opts.expectSerial) !== normalizeHex(verified.signature.signer.serialHex)) {
        throw new GatewayError('GW_ERR_SIG_CERT_NOT_TRUSTED', `signed by serial ${verified.signature.signer.serialHex}, expected ${opts.expectSerial}`);
      }
      print(opts.json ? JSON.stringify(verificationJson(verified), null, 2) : verificationReport(verified));
    });

  message.command('validate')
    .description('check a message against the SEOS schema: our parser, our XSD and the official XSD set (xmllint)')
    .argument('<message.xml>')
    .option('--schema <which>', 'ours, official or both', 'both')
    .option('--official-dir <dir>', 'folder of the official schema set (all.xsd); default ../shared/reference/seos')
    .action(async (input: string, opts: { schema: string; officialDir?: string }) => {
      if (!['ours', 'official', 'both'].includes(opts.schema)) throw new GatewayError('GW_ERR_CLI_USAGE', '--schema must be ours, official or both');
      const xml = readInput(input);
      const parsed = parseMessageXml(xml);
      const schemas = opts.schema === 'both' ? (['ours', 'official'] as const) : ([opts.schema] as Array<'ours' | 'official'>);
      for (const schema of schemas) await validateWithXmllint(xml, schema, { officialDir: opts.officialDir });
      print(`Съобщението отговаря на схемата (valid): ${parsed.header.messageType}, проверено с: парсер на шлюза, ${schemas.map((s) => (s === 'ours' ? 'нашата XSD' : 'официалната XSD')).join(', ')}`);
    });

  message.command('inspect')
    .description('show what a message contains, and whether its signature holds, without failing on a bad signature')
    .argument('<message.xml>')
    .option('--json', 'print as JSON')
    .action((input: string, opts: { json?: boolean }) => {
      const xml = readInput(input);
      const parsed = parseMessageXml(xml);
      let signature: string;
      let signer: CertificateInfo | undefined;
      try {
        const v = verifySignedMessage(xml);
        signer = v.signature.signer;
        signature = `валиден (valid), ${v.signature.signatureMethod.split('#').pop()}`;
      } catch (error) {
        if (!isGatewayError(error)) throw error;
        signature = `НЕВАЛИДЕН или липсва (${error.code}: ${error.descriptionBg})`;
      }
      if (opts.json) print(JSON.stringify({ message: messageJson(parsed), signature, signer: signer && certificateJson(signer) }, null, 2));
      else print([...messageReport(parsed), `Подпис (signature):     ${signature}`, ...(signer ? certificateReport(signer) : [])].join('\n'));
    });
}

function readInput(file: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new GatewayError('GW_ERR_CLI_INPUT', `${file}: no such file`);
  }
  if (!stat.isFile()) throw new GatewayError('GW_ERR_CLI_INPUT', `${file}: not a regular file`);
  if (stat.size > MAX_INPUT_BYTES) throw new GatewayError('GW_ERR_CLI_INPUT', `${file}: larger than ${MAX_INPUT_BYTES} bytes`);
  return fs.readFileSync(file);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readInput(file).toString('utf8'));
  } catch (error) {
    if (isGatewayError(error)) throw error;
    throw new GatewayError('GW_ERR_CLI_INPUT', `${file}: not valid JSON (${(error as Error).message.slice(0, 120)})`);
  }
}

function identityFrom(opts: KeyOptions): SigningIdentity {
  if (opts.p12) {
    const password = process.env[opts.passwordEnv];
    if (password === undefined) throw new GatewayError('GW_ERR_CLI_USAGE', `set the PKCS#12 password in the environment variable ${opts.passwordEnv}`);
    return loadSigningIdentity({ pkcs12Path: opts.p12, password });
  }
  if (!opts.key || !opts.cert) throw new GatewayError('GW_ERR_CLI_USAGE', 'give --p12 <file>, or both --key <file> and --cert <file>');
  return loadSigningIdentity({ keyPath: opts.key, certPath: opts.cert });
}

function signOptions(opts: KeyOptions): { profile: SignatureProfileName; keyInfo: 'standard' | 'dotnet' } {
  if (opts.profile !== 'rsa-sha256' && opts.profile !== 'rsa-sha1') throw new GatewayError('GW_ERR_CLI_USAGE', '--profile must be rsa-sha256 or rsa-sha1');
  if (opts.keyinfo !== 'standard' && opts.keyinfo !== 'dotnet') throw new GatewayError('GW_ERR_CLI_USAGE', '--keyinfo must be standard or dotnet');
  return { profile: opts.profile, keyInfo: opts.keyinfo };
}

function emit(xml: Buffer, output: string | undefined, doneBg: string): void {
  if (output) {
    fs.writeFileSync(output, xml);
    process.stderr.write(`${doneBg}: ${output} (${xml.length} байта)\n`);
  } else {
    process.stdout.write(xml);
  }
}

function print(text: string): void {
  process.stdout.write(text + '\n');
}

function normalizeHex(s: string): string {
  return s.replace(/[\s:-]/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}

function certificateReport(c: CertificateInfo): string[] {
  return [
    `Подписал (signer):      ${c.subject}`,
    `Издател (issuer):       ${c.issuer}`,
    `Сериен номер (serial):  ${c.serialHex}`,
    `Валиден (validity):     ${c.notBefore.toISOString()} – ${c.notAfter.toISOString()}`,
  ];
}

function certificateJson(c: CertificateInfo): object {
  return { subject: c.subject, issuer: c.issuer, serialHex: c.serialHex, serialDecimal: c.serialDecimal, notBefore: c.notBefore, notAfter: c.notAfter, sha256Fingerprint: c.sha256Fingerprint };
}

function verificationReport(v: VerifiedMessage): string {
  return [
    'Подписът е валиден (signature valid)',
    `Алгоритъм (algorithm):  ${v.signature.signatureMethod} / ${v.signature.digestMethod}`,
    ...certificateReport(v.signature.signer),
    ...messageReport(v.message),
  ].join('\n');
}

function verificationJson(v: VerifiedMessage): object {
  return {
    valid: true,
    signatureMethod: v.signature.signatureMethod,
    digestMethod: v.signature.digestMethod,
    signer: certificateJson(v.signature.signer),
    message: messageJson(v.message),
  };
}

function attachmentSize(a: Attachment): number {
  return a.content.source === 'base64' ? Buffer.byteLength(a.content.text.toString('latin1').replace(/\s+/g, ''), 'base64') : a.content.source === 'bytes' ? a.content.bytes.length : fs.statSync(a.content.path).size;
}

function messageReport(m: SeosMessage): string[] {
  const h = m.header;
  const lines = [
    `Вид (type):             ${h.messageType}`,
    `MessageGUID:            ${h.messageGuid}`,
    `Дата (date):            ${h.messageDate}`,
    `Подател (sender):       ${h.sender.administrativeBodyName} (ЕИК ${h.sender.identifier}, ${h.sender.guid})`,
    `Получател (recipient):  ${h.recipient.administrativeBodyName} (ЕИК ${h.recipient.identifier}, ${h.recipient.guid})`,
  ];
  const b = m.body;
  if (b.type === 'MSG_DocumentRegistrationRequest') {
    const d = b.document;
    lines.push(`DocumentGUID:           ${d.id.documentGuid}`, `Номер (number):         ${d.id.number ? `${d.id.number.docNumber} / ${d.id.number.docDate}` : '—'}`,
      `Вид документ (kind):    ${d.kind}`, `Относно (about):        ${d.about ?? '—'}`);
    for (const a of d.attachments ?? []) lines.push(`Файл (attachment):      ${a.fileName} (${a.mimeType}, ${attachmentSize(a)} байта)`);
  } else if (b.type === 'MSG_DocumentStatusRequest') {
    lines.push(`DocumentGUID:           ${b.docId.documentGuid}`);
  } else if (b.type === 'MSG_DocumentStatusResponse') {
    lines.push(`DocumentGUID:           ${b.docId.documentGuid}`, `Статус (status):        ${b.status}`);
    if (b.rejectionReason) lines.push(`Причина (reason):       ${b.rejectionReason}`);
  } else {
    lines.push(`Грешка (error):         ${b.errorType}: ${b.description}`);
  }
  return lines;
}

function messageJson(m: SeosMessage): object {
  return JSON.parse(JSON.stringify(m, (key, value) => {
    if (value && typeof value === 'object' && 'content' in value && 'fileName' in value) {
      const a = value as Attachment;
      return { fileName: a.fileName, mimeType: a.mimeType, comment: a.comment, size: attachmentSize(a) };
    }
    return value;
  }));
}
