/**
 * A minimal, strict DER reader: just enough to take a certificate apart into the fields the gateway needs
 * (serial bytes, issuer and subject names, validity) exactly as they were encoded. Node's X509Certificate
 * reformats these (it drops the serial's leading zero byte, prints names in OpenSSL's own order and escaping),
 * while .NET peers compare the raw forms, so we read them ourselves.
 *
 * Every function throws `DerError` on malformed input; callers turn it into a GatewayError.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface DerNode {
  /** The identifier octet (class, constructed bit, tag number); only single-octet tags are supported. */
  readonly tag: number;
  /** Offset of the identifier octet in the buffer. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads the TLV that starts at `offset` and must end no later than `limit`. */
export function readNode(buf: Buffer, offset: number, limit: number = buf.length): DerNode {
  if (offset >= limit) throw new DerError(`expected a DER element at offset ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-octet tag at offset ${offset}`);
  let pos = offset + 1;
  if (pos >= limit) throw new DerError(`truncated length at offset ${pos}`);
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`indefinite length at offset ${offset} (BER, not DER)`);
    if (count > 4) throw new DerError(`length of ${count} octets at offset ${offset}`);
    if (pos + count > limit) throw new DerError(`truncated length at offset ${pos}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
  }
  const end = pos + length;
  if (end > limit) throw new DerError(`element at offset ${offset} runs past its container`);
  return { tag, start: offset, contentStart: pos, end };
}

/** The children of a constructed element, in order. */
export function children(buf: Buffer, node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) throw new DerError(`element at offset ${node.start} is not constructed`);
  const out: DerNode[] = [];
  let pos = node.contentStart;
  while (pos < node.end) {
    const child = readNode(buf, pos, node.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`missing ${what}`);
  if (node.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  }
  return node;
}

export function content(buf: Buffer, node: DerNode): Buffer {
  return buf.subarray(node.contentStart, node.end);
}

export function decodeOid(bytes: Buffer): string {
  if (bytes.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const arcs: bigint[] = [];
  let value = 0n;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    value = (value << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(value);
      value = 0n;
    } else if (i === bytes.length - 1) {
      throw new DerError('truncated OBJECT IDENTIFIER');
    }
  }
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].map(String).join('.');
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as DER requires them (UTC, with seconds). */
export function decodeTime(buf: Buffer, node: DerNode): Date {
  const text = content(buf, node).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!m) throw new DerError(`malformed UTCTime "${text}"`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 section 4.1.2.5.1
  } else if (node.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text);
    if (!m) throw new DerError(`malformed GeneralizedTime "${text}"`);
    year = Number(m[1]);
  } else {
    throw new DerError(`expected a time, found tag 0x${node.tag.toString(16)}`);
  }
  const date = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  if (Number.isNaN(date.getTime())) throw new DerError(`invalid time "${text}"`);
  return date;
}
