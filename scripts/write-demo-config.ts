/**
 * Writes the quick start's configuration: the demo municipality Община Алфа signing with its DEMO certificate,
 * its data under ./data, the SEOS endpoint on loopback port 8443, and Община Бета (the other demo certificate)
 * as a known participant. Usage: tsx scripts/write-demo-config.ts <demo-certs-dir> <config-file>
 */
import fs from 'node:fs';
import path from 'node:path';

const [certsDir, configFile] = process.argv.slice(2);
if (!certsDir || !configFile) {
  process.stderr.write('usage: write-demo-config.ts <demo-certs-dir> <config-file>\n');
  process.exit(2);
}
const manifest = JSON.parse(fs.readFileSync(path.join(certsDir, 'manifest.json'), 'utf8')) as {
  p12Password: string; admins: Array<{ name: string; eik: string; commonName: string; p12Path: string; serialHex: string }>;
};
const alfa = manifest.admins.find((a) => a.name === 'obshtina-alfa')!;
const beta = manifest.admins.find((a) => a.name === 'obshtina-beta')!;
const config = {
  dataDir: path.resolve(path.dirname(configFile)),
  self: { eik: alfa.eik, name: alfa.commonName, guid: '{0a1f0000-0000-4000-8000-000000000001}' },
  signing: { pkcs12Path: alfa.p12Path, password: manifest.p12Password },
  seos: { endpoint: { port: 8443 }, client: { allowInsecureHttp: true } },
  registry: {
    participants: [
      { guid: '{0b2e0000-0000-4000-8000-000000000002}', eik: beta.eik, name: beta.commonName, certificateSN: beta.serialHex, endpointUrl: 'http://127.0.0.1:9443/seos' },
    ],
  },
};
fs.writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
process.stderr.write(`quickstart: wrote ${configFile} (DEMO configuration for ${alfa.commonName})\n`);
