import { ERRORS, type ErrorSpec } from './catalogue.ts';

/**
 * docs/errors.md is generated from the catalogue (`npm run docs:errors`), and a test compares the two, so the
 * reference IT staff read never drifts from what the code reports.
 */
export function renderErrorCatalogue(): string {
  const rows = Object.entries(ERRORS).map(([code, spec]: [string, ErrorSpec]) =>
    `| \`${code}\` | ${spec.status} | ${spec.seos ?? ''} | ${spec.bg.replace(/\|/g, '\\|')} | ${spec.en.replace(/\|/g, '\\|')} |`);
  return [
    '# Error codes',
    '',
    'Generated from `src/errors/catalogue.ts` by `npm run docs:errors`; a test fails when the two differ.',
    '',
    'Every error the gateway reports carries one of these stable codes. The Bulgarian text is what municipal staff',
    'see (and what goes into the `ErrorDescription` of a SEOS `MSG_Error`, followed by a technical detail); the',
    'SEOS column names the matching description of the government reference implementation where there is one.',
    '',
    '| code | HTTP | SEOS | описание | description |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
