/**
 * Distinguished names printed the way .NET prints `X500DistinguishedName.Name` (which is what the SEOS reference
 * implementation writes into X509IssuerName and shows to operators): RDNs in reverse order of the encoding
 * (most specific first, "CN=..., O=..., C=BG"), joined by ", ", multi-valued RDNs joined by " + ", Windows short
 * names (S for stateOrProvinceName, E for emailAddress, T for title, ...), "OID.x.y.z" for attribute types
 * Windows has no name for (e.g. OID.2.5.4.97 for organizationIdentifier), values in double quotes when they
 * contain , + = " newline < > # ; or start/end with whitespace (inner quotes doubled), string values verbatim
 * (UTF-8 Cyrillic stays Cyrillic), and non-string values as "#" + uppercase hex of their encoding.
 */
import { DerError, TAG, children, content, decodeOid, expectTag, type DerNode } from './der.ts';

const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'S',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'T',
  '2.5.4.13': 'Description',
  '2.5.4.17': 'PostalCode',
  '2.5.4.18': 'POBox',
  '2.5.4.20': 'Phone',
  '2.5.4.42': 'G',
  '2.5.4.43': 'I',
  '2.5.4.46': 'dnQualifier',
  '1.2.840.113549.1.9.1': 'E',
  '1.2.840.113549.1.9.2': 'UnstructuredName',
  '1.2.840.113549.1.9.8': 'UnstructuredAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};

const QUOTE_NEEDING = /[,+="\n<>#;]/;

function isQuotableWhitespace(c: string): boolean {
  const code = c.charCodeAt(0);
  return c === ' ' || (code >= 0x09 && code <= 0x0d);
}

function needsQuoting(value: string): boolean {
  return value.length === 0 || isQuotableWhitespace(value[0]!) || isQuotableWhitespace(value[value.length - 1]!)
    || QUOTE_NEEDING.test(value);
}

function decodeBmp(bytes: Buffer): string {
  if (bytes.length % 2 !== 0) throw new DerError('BMPString of odd length');
  const swapped = Buffer.from(bytes);
  swapped.swap16();
  return swapped.toString('utf16le');
}

function quote(a: NameAttribute): string {
  return !a.binary && needsQuoting(a.value) ? `"${a.value.replace(/"/g, '""')}"` : a.value;
}

/** Decodes an attribute value; `binary` is true when .NET would print it as #hex instead of text. */
function attributeValue(buf: Buffer, node: DerNode): { text: string; binary: boolean } {
  const bytes = content(buf, node);
  switch (node.tag) {
    case TAG.UTF8_STRING: {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return { text: text.replace(/\0+$/, ''), binary: false };
    }
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.NUMERIC_STRING:
    case TAG.T61_STRING:
      return { text: bytes.toString('latin1').replace(/\0+$/, ''), binary: false };
    case TAG.BMP_STRING:
      return { text: decodeBmp(bytes).replace(/\0+$/, ''), binary: false };
    case TAG.OCTET_STRING:
      return { text: '#' + bytes.toString('hex').toUpperCase(), binary: true };
    default:
      return { text: '#' + buf.subarray(node.start, node.end).toString('hex').toUpperCase(), binary: true };
  }
}

export interface NameAttribute {
  readonly oid: string;
  /** The short name .NET prints ("CN", "O", "S", ...), or "OID.<oid>". */
  readonly name: string;
  /** The decoded text, unquoted; for non-string values "#" + hex. */
  readonly value: string;
  /** True when the value is not a character string and is shown as "#" + hex. */
  readonly binary: boolean;
}

/** The attributes of a Name (RDNSequence) in encoding order, each RDN as an array (usually of one). */
export function readName(buf: Buffer, nameNode: DerNode): NameAttribute[][] {
  expectTag(nameNode, TAG.SEQUENCE, 'Name');
  return children(buf, nameNode).map((rdn) => {
    expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
    const atvs = children(buf, rdn);
    if (atvs.length === 0) throw new DerError('empty RelativeDistinguishedName');
    return atvs.map((atv) => {
      expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue');
      const [typeNode, valueNode, ...rest] = children(buf, atv);
      const oid = decodeOid(content(buf, expectTag(typeNode, TAG.OID, 'AttributeType')));
      if (!valueNode || rest.length > 0) throw new DerError('AttributeTypeAndValue must have exactly a type and a value');
      const { text, binary } = attributeValue(buf, valueNode);
      return { oid, name: SHORT_NAMES[oid] ?? `OID.${oid}`, value: text, binary };
    });
  });
}

/** Formats a Name the .NET way (see the module comment). */
export function formatName(rdns: NameAttribute[][]): string {
  return [...rdns]
    .reverse()
    .map((rdn) => rdn.map((a) => `${a.name}=${quote(a)}`).join(' + '))
    .join(', ');
}
