/** PEM armour: find the blocks of a given label in a text that may hold several (a chain, a key and a cert). */

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!;
    // Encrypted legacy PEM keys carry "Proc-Type:" headers; their body is not plain base64 of DER. The caller
    // hands those to Node as text, so here we only need the label.
    const headerless = body.includes(':') ? '' : body.replace(/\s+/g, '');
    out.push({ label: m[1]!, der: Buffer.from(headerless, 'base64') });
  }
  return out;
}

/**
 * True when the data is PEM text rather than DER. DER certificates, keys and PFX files start with 0x30
 * (SEQUENCE); PEM may come after free text such as the "Bag Attributes" lines `openssl pkcs12 -nodes` writes.
 */
export function looksLikePem(data: Buffer | string): boolean {
  if (typeof data === 'string') return true;
  return data.length > 0 && (data[0] !== 0x30 || data.includes('-----BEGIN '));
}

export function asText(data: Buffer | string): string {
  return typeof data === 'string' ? data : data.toString('utf8');
}
