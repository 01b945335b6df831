import fs from 'node:fs';
import { GatewayError } from '../errors/index.ts';
import type { Secret } from './secret.ts';

/**
 * The files of a TLS section of the configuration (client certificates for SEOS, the registry, SSEV and
 * eJournal), read when a client is built. The password is revealed here only; a missing file is a
 * configuration error naming the section.
 */
export interface TlsFileSettings {
  readonly caPath?: string;
  readonly certPath?: string;
  readonly keyPath?: string;
  readonly pkcs12Path?: string;
  readonly password?: Secret;
}

export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly pfx?: Buffer;
  readonly passphrase?: string;
}

export function readTlsFiles(tls: TlsFileSettings | undefined, section: string): TlsMaterial | undefined {
  if (!tls) return undefined;
  const read = (p: string) => {
    try {
      return fs.readFileSync(p);
    } catch (cause) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', `${section}: TLS file ${p} cannot be read`, { cause });
    }
  };
  return {
    ...(tls.caPath ? { ca: read(tls.caPath) } : {}),
    ...(tls.certPath ? { cert: read(tls.certPath) } : {}),
    ...(tls.keyPath ? { key: read(tls.keyPath) } : {}),
    ...(tls.pkcs12Path ? { pfx: read(tls.pkcs12Path) } : {}),
    ...(tls.password ? { passphrase: tls.password.reveal() } : {}),
  };
}
