import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { ERRORS, GatewayError } from '../src/errors/index.ts';
import { schemaPath, validateWithXmllint } from '../src/seos/schema-validation.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const VALID_DIR = join(REPO, 'fixtures', 'messages', 'valid');
const BAD_DIR = join(REPO, 'fixtures', 'bad');
const OFFICIAL_DIR = join(REPO, '..', 'shared', 'reference', 'seos');

const validFiles = readdirSync(VALID_DIR).filter((f) => f.endsWith('.xml')).sort();
const readValid = (name: string): Buffer => readFileSync(join(VALID_DIR, name));
const readBad = (name: string): Buffer => readFileSync(join(BAD_DIR, name));
const minimal = (): string => readValid('01-registration-minimal.xml').toString('utf8');

const scratch = mkdtempSync(join(tmpdir(), 'schemas-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Await a promise that must reject with a GatewayError and return that error. */
async function gatewayError(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a GatewayError, but the promise resolved');
}

/** Replace exactly one occurrence of `from` in `text`. */
function edit(text: string, from: string, to: string): string {
  expect(text.split(from).length - 1, `"${from}" must occur exactly once`).toBe(1);
  return text.replace(from, to);
}

describe('schema locations', () => {
  it('names our schema in schemas/seos and the official entry point in ../shared/reference/seos', () => {
    expect(schemaPath('ours')).toBe(join(REPO, 'schemas', 'seos', 'seos-message.xsd'));
    expect(schemaPath('official')).toBe(join(OFFICIAL_DIR, 'all.xsd'));
    expect(existsSync(schemaPath('ours'))).toBe(true);
    expect(existsSync(schemaPath('official'))).toBe(true);
    expect(schemaPath('official', { officialDir: '/opt/seos' })).toBe('/opt/seos/all.xsd');
  });

  it('keeps the official schema files out of the repository (ours is written independently)', () => {
    const ours = readdirSync(join(REPO, 'schemas', 'seos'));
    expect(ours).toEqual(expect.arrayContaining(['seos-message.xsd', 'document-uri.xsd', 'README.md']));
    for (const official of ['EGovMessaging.xsd', 'xmldsig-core-schema.xsd', '0009-000001_DocumentURI.xsd', 'all.xsd']) {
      expect(ours).not.toContain(official);
    }
    const text = readFileSync(schemaPath('ours'), 'utf8') + readFileSync(join(REPO, 'schemas', 'seos', 'document-uri.xsd'), 'utf8');
    expect(text).not.toMatch(/[\u0400-\u04FF]/); // English annotations only, no copied Bulgarian documentation
    expect(text).not.toContain('xmldsig-core-schema');
  });
});

describe('valid fixtures pass both schema sets', () => {
  it('has the eight hand-written fixtures', () => {
    expect(validFiles.length).toBeGreaterThanOrEqual(8);
    for (const f of validFiles) expect(f).toMatch(/^\d\d-[a-z0-9-]+\.xml$/);
  });

  for (const file of validFiles) {
    for (const schema of ['ours', 'official'] as const) {
      it(`${file} is valid against ${schema}`, async () => {
        await expect(validateWithXmllint(readValid(file), schema)).resolves.toEqual({ valid: true });
      });
    }
  }

  it('accepts a string (written as UTF-8) as well as a Buffer', async () => {
    await expect(validateWithXmllint(minimal(), 'ours')).resolves.toEqual({ valid: true });
  });
});

describe('bad fixtures are rejected by both schema sets', () => {
  const cases: Array<{ file: string; mentions: RegExp }> = [
    { file: 'missing-comment.xml', mentions: /DocumentRegistrationRequest.*Missing child element.*Comment/ },
    { file: 'guid-no-braces.xml', mentions: /MessageGUID.*pattern/ },
    { file: 'guid-wrong-length.xml', mentions: /DocumentGUID.*pattern/ },
    { file: 'guid-non-hex.xml', mentions: /GUID.*pattern/ },
    { file: 'out-of-order-attcomment.xml', mentions: /AttComment.*This element is not expected/ },
    { file: 'out-of-order-header.xml', mentions: /MessageType.*This element is not expected/ },
    { file: 'wrong-root-namespace.xml', mentions: /\{http:\/\/schemas\.egov\.bg\/messaging\/v2\}Message.*No matching global declaration/ },
  ];

  for (const { file, mentions } of cases) {
    for (const schema of ['ours', 'official'] as const) {
      it(`${file} fails ${schema} with GW_ERR_SCHEMA_INVALID`, async () => {
        const error = await gatewayError(validateWithXmllint(readBad(file), schema));
        expect(error.code).toBe('GW_ERR_SCHEMA_INVALID');
        expect(error.detail).toMatch(mentions);
        // The temp file is reported as "message.xml", never by its real path.
        expect(error.detail).toContain('message.xml');
        expect(error.detail).not.toContain('seos-xmllint-');
      });
    }
  }

  it('reports malformed XML as GW_ERR_SCHEMA_INVALID too', async () => {
    const error = await gatewayError(validateWithXmllint(readBad('malformed-mismatched-tag.xml'), 'ours'));
    expect(error.code).toBe('GW_ERR_SCHEMA_INVALID');
    expect(error.detail).toMatch(/^message\.xml:\d+: parser error : Opening and ending tag mismatch/);
  });

  it('rejects an unbound namespace prefix although xmllint itself exits 0 for it', async () => {
    const error = await gatewayError(validateWithXmllint(readBad('unbound-namespace-prefix.xml'), 'ours'));
    expect(error.code).toBe('GW_ERR_SCHEMA_INVALID');
    expect(error.detail).toMatch(/namespace error : Namespace prefix ext on Data is not defined/);
  });

  it('rejects DocumentURI children placed in the messaging namespace instead of 0009-000001', async () => {
    const xml = edit(readValid('08-uppercase-guids-version-1.xml').toString('utf8'),
      '<RegisterIndex xmlns="http://ereg.egov.bg/segment/0009-000001">12</RegisterIndex>', '<RegisterIndex>12</RegisterIndex>');
    for (const schema of ['ours', 'official'] as const) {
      const error = await gatewayError(validateWithXmllint(xml, schema));
      expect(error.code).toBe('GW_ERR_SCHEMA_INVALID');
      expect(error.detail).toMatch(/\{http:\/\/schemas\.egov\.bg\/messaging\/v1\}RegisterIndex.*not expected/);
    }
  });

  it('keeps at most 20 lines of xmllint output in the detail', async () => {
    // 30 correspondents without CorCity give 30 validity errors.
    const many = '<Corespondent><CorName>Иван</CorName></Corespondent>'.repeat(30);
    const xml = edit(minimal(), '<Corespondent><CorName>Иван Петров Иванов</CorName><CorCity>София</CorCity></Corespondent>', many);
    const error = await gatewayError(validateWithXmllint(xml, 'official'));
    expect(error.code).toBe('GW_ERR_SCHEMA_INVALID');
    const lines = error.detail!.split('\n');
    expect(lines).toHaveLength(20);
    expect(lines.every((l) => l.startsWith('message.xml:'))).toBe(true);
  });
});

describe('where our schema is stricter than the official one', () => {
  it('rejects Version "2" (only "1" and "1.0" exist) while the official schema accepts any string', async () => {
    const xml = readBad('version-2.xml');
    const error = await gatewayError(validateWithXmllint(xml, 'ours'));
    expect(error.code).toBe('GW_ERR_SCHEMA_INVALID');
    expect(error.detail).toMatch(/Version.*'2' is not an element of the set \{'1', '1\.0'\}/);
    await expect(validateWithXmllint(xml, 'official')).resolves.toEqual({ valid: true });
  });

  it('accepts both protocol versions "1" and "1.0"', async () => {
    await expect(validateWithXmllint(edit(minimal(), '<Version>1.0</Version>', '<Version>1</Version>'), 'ours')).resolves.toEqual({ valid: true });
    await expect(validateWithXmllint(minimal(), 'ours')).resolves.toEqual({ valid: true });
  });

  it('requires a time zone on MessageDate while the official schema accepts a local dateTime', async () => {
    const xml = edit(minimal(), '2024-05-06T10:11:12.123+03:00', '2024-05-06T10:11:12.123');
    const error = await gatewayError(validateWithXmllint(xml, 'ours'));
    expect(error.detail).toMatch(/MessageDate.*pattern/);
    await expect(validateWithXmllint(xml, 'official')).resolves.toEqual({ valid: true });
    const utc = edit(minimal(), '2024-05-06T10:11:12.123+03:00', '2024-05-06T07:11:12.1234567Z');
    await expect(validateWithXmllint(utc, 'ours')).resolves.toEqual({ valid: true });
  });
});

describe('signature positions in our schema (lax xmldsig wildcard, no xmldsig schema loaded)', () => {
  const DSIG = '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><Whatever/></SignedInfo><SignatureValue>AA==</SignatureValue></Signature>';

  it('accepts a Signature as the last child of Message and at the end of Document', async () => {
    const messageSigned = edit(minimal(), '</Body></Message>', `</Body>${DSIG}</Message>`);
    await expect(validateWithXmllint(messageSigned, 'ours')).resolves.toEqual({ valid: true });
    const docSigned = edit(minimal(), '</DocAttachmentList></Document>', `</DocAttachmentList>${DSIG}</Document>`);
    await expect(validateWithXmllint(docSigned, 'ours')).resolves.toEqual({ valid: true });
  });

  it('rejects a Signature before Body and a second Signature after the first', async () => {
    const early = edit(minimal(), '</Header><Body>', `</Header>${DSIG}<Body>`);
    expect((await gatewayError(validateWithXmllint(early, 'ours'))).code).toBe('GW_ERR_SCHEMA_INVALID');
    const twice = edit(minimal(), '</Body></Message>', `</Body>${DSIG}${DSIG}</Message>`);
    expect((await gatewayError(validateWithXmllint(twice, 'ours'))).code).toBe('GW_ERR_SCHEMA_INVALID');
  });

  it('rejects a non-dsig element in the signature position', async () => {
    const foreign = edit(minimal(), '</Body></Message>', '</Body><Signature xmlns="urn:example:not-dsig"/></Message>');
    expect((await gatewayError(validateWithXmllint(foreign, 'ours'))).code).toBe('GW_ERR_SCHEMA_INVALID');
  });
});

describe('tooling failures', () => {
  it('reports a missing xmllint (explicit path in an empty folder) as GW_ERR_TOOL_MISSING with the package to install', async () => {
    const empty = join(scratch, 'no-tools');
    mkdirSync(empty, { recursive: true });
    const error = await gatewayError(validateWithXmllint(minimal(), 'ours', { xmllintPath: join(empty, 'xmllint') }));
    expect(error.code).toBe('GW_ERR_TOOL_MISSING');
    expect(error.detail).toBe('xmllint not found: apt-get install libxml2-utils');
  });

  it('reports GW_ERR_TOOL_MISSING when PATH holds no xmllint', async () => {
    const empty = join(scratch, 'empty-path');
    mkdirSync(empty, { recursive: true });
    const saved = { PATH: process.env.PATH, override: process.env.SEOS_GATEWAY_XMLLINT };
    process.env.PATH = empty;
    delete process.env.SEOS_GATEWAY_XMLLINT;
    try {
      const error = await gatewayError(validateWithXmllint(minimal(), 'ours'));
      expect(error.code).toBe('GW_ERR_TOOL_MISSING');
      expect(error.message).toContain('apt-get install libxml2-utils');
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.override !== undefined) process.env.SEOS_GATEWAY_XMLLINT = saved.override;
    }
  });

  it('reports a missing official schema folder as a configuration error, not as an invalid document', async () => {
    const error = await gatewayError(validateWithXmllint(minimal(), 'official', { officialDir: join(scratch, 'nowhere') }));
    expect(error.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(error.detail).toContain(join(scratch, 'nowhere', 'all.xsd'));
  });

  it('validates against an explicit XSD path and removes its temporary files', async () => {
    const tmp = join(scratch, 'tmp');
    mkdirSync(tmp, { recursive: true });
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await expect(validateWithXmllint(minimal(), { xsdPath: schemaPath('ours') })).resolves.toEqual({ valid: true });
      await gatewayError(validateWithXmllint(readBad('missing-comment.xml'), { xsdPath: schemaPath('ours') }));
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});

describe('fixtures/bad manifest', () => {
  const manifest = JSON.parse(readFileSync(join(BAD_DIR, 'manifest.json'), 'utf8')) as Array<{ file: string; expect: string; why: string }>;

  it('lists every bad file exactly once, with a known code and a reason', () => {
    const onDisk = readdirSync(BAD_DIR).filter((f) => f.endsWith('.xml')).sort();
    expect(manifest.map((e) => e.file).sort()).toEqual(onDisk);
    for (const entry of manifest) {
      expect(entry.expect === 'OK_UNSIGNED_PARSE' || entry.expect in ERRORS, `${entry.file}: ${entry.expect}`).toBe(true);
      expect(entry.why.length).toBeGreaterThan(20);
      expect(readBad(entry.file).length).toBeLessThan(1024 * 1024);
    }
  });
});
