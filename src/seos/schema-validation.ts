/**
 * XSD validation of SEOS messages with xmllint (libxml2-utils).
 *
 * Two schema sets are known by name:
 *  - `ours`: the project's own schema, `schemas/seos/seos-message.xsd` (stricter in a few documented places);
 *  - `official`: the official SEOS set, loaded through `all.xsd` in `../shared/reference/seos/` next to the repository
 *    (or in `opts.officialDir`).
 *
 * This is a cross-check for tests, tooling and outgoing messages; it is not the parser that protects the gateway
 * from hostile input (xmllint transcodes other encodings and tolerates some namespace errors, for example).
 * xmllint runs with --nonet, so neither the schema nor the document can cause a network fetch.
 *
 * When xmllint is not installed the call fails with GW_ERR_TOOL_MISSING (it never skips validation).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { GatewayError } from '../errors/index.ts';

export type SchemaName = 'ours' | 'official';
export type SchemaChoice = SchemaName | { xsdPath: string };

export interface XmllintOptions {
  /** Folder holding the official schema set (its `all.xsd` is loaded). Default: `<repo>/../shared/reference/seos`. */
  officialDir?: string;
  /**
   * The xmllint executable: a command name looked up in PATH or a path. Default: the environment variable
   * `SEOS_GATEWAY_XMLLINT`, else `xmllint`. Tests point it at a missing file to simulate a machine without xmllint.
   */
  xmllintPath?: string;
}

/** Lines of xmllint output kept in the error detail. */
const MAX_ERROR_LINES = 20;
/** Name that replaces the temporary file's path in error lines. */
const REPORTED_NAME = 'message.xml';
/** xmllint prints one line per problem; this is ample for any real document and bounds memory. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const INSTALL_HINT = 'xmllint not found: apt-get install libxml2-utils';

/** Root of the repository (this file is `<repo>/src/seos/schema-validation.ts`). */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Absolute path of the main XSD of a named schema set. */
export function schemaPath(name: SchemaName, opts: { officialDir?: string } = {}): string {
  switch (name) {
    case 'ours':
      return join(REPO_ROOT, 'schemas', 'seos', 'seos-message.xsd');
    case 'official':
      return join(resolve(opts.officialDir ?? join(REPO_ROOT, '..', 'shared', 'reference', 'seos')), 'all.xsd');
    default: {
      const unknown: never = name;
      throw new GatewayError('GW_ERR_CONFIG_INVALID', `unknown schema set ${JSON.stringify(unknown)}`);
    }
  }
}

interface RunResult {
  exitCode: number;
  stderr: string;
}

function runXmllint(command: string, args: string[]): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      command,
      args,
      { encoding: 'utf8', maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true },
      (error, _stdout, stderr) => {
        if (!error) {
          resolvePromise({ exitCode: 0, stderr });
          return;
        }
        const err = error as NodeJS.ErrnoException & { code?: string | number };
        if (err.code === 'ENOENT') {
          reject(new GatewayError('GW_ERR_TOOL_MISSING', INSTALL_HINT, { cause: error }));
          return;
        }
        if (err.code === 'EACCES') {
          reject(new GatewayError('GW_ERR_TOOL_MISSING', `xmllint at ${command} cannot be executed (EACCES): apt-get install libxml2-utils`, { cause: error }));
          return;
        }
        if (typeof err.code === 'number') {
          resolvePromise({ exitCode: err.code, stderr });
          return;
        }
        if (err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
          // So much output means a great many errors; what was collected is enough to report.
          resolvePromise({ exitCode: -1, stderr });
          return;
        }
        reject(error);
      },
    );
  });
}

/** xmllint's output, cleaned for an error detail: temp path replaced, blank lines dropped, at most 20 lines. */
function errorLines(stderr: string, tempPath: string): string {
  return stderr
    .split(tempPath).join(REPORTED_NAME)
    .split(encodeURI(tempPath)).join(REPORTED_NAME)
    .split(/\r?\n/)
    .map((line) => line.trimEnd())
    .filter((line) => line.length > 0)
    .slice(0, MAX_ERROR_LINES)
    .join('\n');
}

/**
 * Validate one XML document against a schema set with
 * `xmllint --noout --huge --nonet --schema <xsd> <file>`.
 *
 * Resolves with `{ valid: true }`. Throws GatewayError:
 *  - GW_ERR_SCHEMA_INVALID with xmllint's error lines (first 20, the temp path shown as "message.xml") when the
 *    document is not well-formed or not valid. xmllint exits 0 after some recoverable errors (an unbound namespace
 *    prefix, a blocked network entity); any "error" line on its output counts as a failure too;
 *  - GW_ERR_TOOL_MISSING when xmllint is not installed;
 *  - GW_ERR_CONFIG_INVALID when the schema file is missing or does not compile.
 */
export async function validateWithXmllint(
  xml: Buffer | string,
  schema: SchemaChoice,
  opts: XmllintOptions = {},
): Promise<{ valid: true }> {
  const xsdPath = typeof schema === 'string' ? schemaPath(schema, opts) : resolve(schema.xsdPath);
  if (!existsSync(xsdPath)) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `schema file not found: ${xsdPath}`);
  }
  const command = opts.xmllintPath ?? process.env.SEOS_GATEWAY_XMLLINT ?? 'xmllint';

  const dir = await mkdtemp(join(tmpdir(), 'seos-xmllint-'));
  const file = join(dir, REPORTED_NAME);
  try {
    await writeFile(file, typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml);
    const { exitCode, stderr } = await runXmllint(command, ['--noout', '--huge', '--nonet', '--schema', xsdPath, file]);

    if (exitCode === 5) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', `schema ${xsdPath} failed to compile:\n${errorLines(stderr, file)}`);
    }
    const reportsError = stderr.split(/\r?\n/).some((line) => /\berror\b/i.test(line));
    if (exitCode !== 0 || reportsError) {
      const lines = errorLines(stderr, file);
      throw new GatewayError('GW_ERR_SCHEMA_INVALID', lines || `xmllint exited with status ${exitCode}`);
    }
    return { valid: true };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
