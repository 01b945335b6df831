/**
 * Makes a throw-away test PKI for trying the gateway out (see certs/README.md).
 *
 *   npx tsx certs/make-certs.ts --out certs/out --demo
 *   npx tsx certs/make-certs.ts --out /tmp/pki --admin "obshtina-gama:000000003:Община Гама" --force
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_P12_PASSWORD, DEMO_ADMINS, makeTestPki, type TestPkiAdmin } from './test-pki.ts';

const USAGE = `Употреба (usage):
  npx tsx certs/make-certs.ts --out <папка> [--demo] [--force] [--password <парола>] [--admin <име:ЕИК:наименование>]...

  --out       папка за файловете, задължително (output folder, required), напр. certs/out
  --demo      маркира сертификатите като демонстрационни (mark certificates as DEMO - NOT FOR PRODUCTION)
  --force     създава ги наново, дори ако вече съществуват (regenerate even if manifest.json exists)
  --password  парола за .p12 файловете (password of the .p12 files), по подразбиране "${DEFAULT_P12_PASSWORD}"
  --admin     администрация, може да се повтаря (administration, repeatable); по подразбиране
              ${DEMO_ADMINS.map((a) => `${a.name}:${a.eik}:${a.commonName}`).join(', ')}
`;

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parseAdmin(spec: string): TestPkiAdmin {
  const [name, eik, ...rest] = spec.split(':');
  if (!name || !eik || !/^\d{9}(\d{4})?$/.test(eik)) {
    fail(`Грешно зададена администрация "${spec}" (invalid --admin, expected name:EIK:Common Name, EIK of 9 or 13 digits)\n\n${USAGE}`, 2);
  }
  const commonName = rest.join(':').trim();
  return { name, eik, ...(commonName ? { commonName } : {}) };
}

function main(): void {
  let values: { out?: string; demo?: boolean; force?: boolean; password?: string; admin?: string[]; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: 'string' },
        demo: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        password: { type: 'string' },
        admin: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(`Грешно извикване: ${(err as Error).message} (wrong arguments)\n\n${USAGE}`, 2);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!values.out) fail(`Липсва --out: посочете папка за тестовите сертификати (--out is required).\n\n${USAGE}`, 2);

  const out = path.resolve(values.out);
  const manifestPath = path.join(out, 'manifest.json');
  if (fs.existsSync(manifestPath) && !values.force) {
    process.stdout.write(
      `Тестовите сертификати вече съществуват в ${out} (test certificates already exist). `
      + 'Нищо не е променено; използвайте --force, за да ги създадете наново (nothing changed; use --force to regenerate).\n',
    );
    return;
  }

  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const ignoredOut = path.join(repoRoot, 'certs', 'out');
  const inside = (dir: string, parent: string) => dir === parent || dir.startsWith(parent + path.sep);
  if (inside(out, repoRoot) && !inside(out, ignoredOut)) {
    process.stderr.write(
      `ВНИМАНИЕ: ${out} е в хранилището, но не в certs/out/, която git пропуска; не добавяйте ключовете в git `
      + '(WARNING: this folder is inside the repository but outside the git-ignored certs/out/; never commit these keys).\n',
    );
  }

  const admins = values.admin?.length ? values.admin.map(parseAdmin) : [...DEMO_ADMINS];
  const manifest = makeTestPki({
    out,
    admins,
    demo: values.demo ?? false,
    ...(values.password !== undefined ? { password: values.password } : {}),
  });

  const lines = [
    `Създадени са тестови сертификати в ${out} (test certificates created):`,
    `  Удостоверител (CA): ${manifest.ca.certPath}`,
    ...manifest.admins.map((a) => `  ${a.commonName} (ЕИК ${a.eik}): ${a.p12Path}, сериен номер (serial) ${a.serialHex}`),
    `  Описание (manifest): ${manifest.manifestPath}`,
    `  Парола за .p12 (p12 password): ${manifest.p12Password === DEFAULT_P12_PASSWORD ? DEFAULT_P12_PASSWORD : '(зададената с --password / as given)'}`,
    manifest.demo
      ? 'Това са ДЕМОНСТРАЦИОННИ сертификати - не ги използвайте за реална работа (DEMO certificates, not for production).'
      : 'Това са тестови сертификати от измислен удостоверител - само за тестове (test certificates from a made-up CA, tests only).',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

try {
  main();
} catch (err) {
  fail(`Грешка при създаване на сертификатите (failed to create the certificates): ${(err as Error).message}`, 1);
}
