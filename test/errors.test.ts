import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, GatewayError } from '../src/errors/index.ts';
import { renderErrorCatalogue } from '../src/errors/document.ts';

describe('the error catalogue', () => {
  it('matches docs/errors.md (run npm run docs:errors after changing the catalogue)', () => {
    expect(fs.readFileSync('docs/errors.md', 'utf8')).toBe(renderErrorCatalogue());
  });

  it('has stable, well-formed codes with a Bulgarian and an English text and a valid HTTP status', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^GW_ERR_[A-Z0-9_]+$/);
      expect(spec.bg).toMatch(/[А-Яа-я]/);
      expect(spec.en.length).toBeGreaterThan(10);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
    }
  });

  it('gives a GatewayError its status, Bulgarian description with detail, and a JSON form without stack', () => {
    const e = new GatewayError('GW_ERR_SEOS_BAD_GUID', '/Message/Header/MessageGUID');
    expect(e.status).toBe(400);
    expect(e.descriptionBg).toBe(`${ERRORS.GW_ERR_SEOS_BAD_GUID.bg} (/Message/Header/MessageGUID)`);
    expect(e.seosKey).toBe('InvalidXSDSchema');
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      code: 'GW_ERR_SEOS_BAD_GUID', message: ERRORS.GW_ERR_SEOS_BAD_GUID.bg, messageEn: ERRORS.GW_ERR_SEOS_BAD_GUID.en, detail: '/Message/Header/MessageGUID',
    });
  });
});
