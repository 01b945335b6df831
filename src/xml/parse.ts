import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../errors/index.ts';
import {
  XML_NS,
  type NamespaceDeclaration,
  type XmlAttribute,
  type XmlDocument,
  type XmlElement,
  type XmlNode,
  type XmlProcessingInstruction,
  type XmlText,
} from './tree.ts';

/**
 * A safe, non-validating XML 1.0 + Namespaces parser for what other administrations send us.
 *
 * Why our own: we must refuse DOCTYPE and entity declarations outright (no XXE, no entity expansion, no network
 * or file access — there is simply no code here that could resolve anything), bound size, depth and attribute
 * counts, and keep byte offsets so canonicalization can hash a large base64 body straight from the input buffer.
 * Every refusal is a GatewayError; the parser never throws anything else on bad input.
 */
export interface XmlLimits {
  /** Total input size in bytes. */
  readonly maxBytes: number;
  /** Maximum element nesting depth. */
  readonly maxDepth: number;
  /** Maximum attributes (namespace declarations included) on one element. */
  readonly maxAttributes: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = {
  maxBytes: 512 * 1024 * 1024,
  maxDepth: 64,
  maxAttributes: 64,
};

const LT = 0x3c, GT = 0x3e, AMP = 0x26, CR = 0x0d, SLASH = 0x2f, QMARK = 0x3f, BANG = 0x21;
const EQ = 0x3d, QUOT = 0x22, APOS = 0x27;
const NON_CHARACTER_FFFE = Buffer.from([0xef, 0xbf, 0xbe]);
const NON_CHARACTER_FFFF = Buffer.from([0xef, 0xbf, 0xbf]);

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/** Name characters, approximated on bytes: ASCII per the XML Name production, any non-ASCII byte accepted. */
function isNameStartByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || b === 0x5f || b === 0x3a || b >= 0x80;
}
function isNameByte(b: number): boolean {
  return isNameStartByte(b) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e;
}

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function parseXml(input: Buffer | string, limits: Partial<XmlLimits> = {}): XmlDocument {
  const lim: XmlLimits = { ...DEFAULT_XML_LIMITS, ...limits };
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  if (buf.length > lim.maxBytes) {
    throw new GatewayError('GW_ERR_XML_TOO_LARGE', `${buf.length} bytes, limit ${lim.maxBytes}`);
  }
  return new Parser(buf, lim).parse();
}

class Parser {
  private pos = 0;
  private readonly stack: Array<{ el: XmlElement; scope: Map<string, string> }> = [];
  private root: XmlElement | null = null;
  private readonly prolog: XmlProcessingInstruction[] = [];
  private readonly epilog: XmlProcessingInstruction[] = [];

  constructor(private readonly buf: Buffer, private readonly lim: XmlLimits) {}

  parse(): XmlDocument {
    const buf = this.buf;
    if (buf.length >= 2 && ((buf[0] === 0xfe && buf[1] === 0xff) || (buf[0] === 0xff && buf[1] === 0xfe))) {
      throw new GatewayError('GW_ERR_XML_ENCODING', 'UTF-16 byte order mark');
    }
    if (!isUtf8(buf)) throw new GatewayError('GW_ERR_XML_ENCODING', 'the input is not valid UTF-8');
    if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) this.pos = 3;
    if (this.startsWith('<?xml') && (isSpace(buf[this.pos + 5]) || buf[this.pos + 5] === QMARK)) this.xmlDeclaration();

    while (this.pos < buf.length) {
      const lt = buf.indexOf(LT, this.pos);
      const textEnd = lt === -1 ? buf.length : lt;
      if (textEnd > this.pos) this.text(this.pos, textEnd);
      if (lt === -1) break;
      this.pos = lt;
      this.markup();
    }
    if (this.stack.length > 0) this.fail(`element <${this.stack[this.stack.length - 1].el.qname}> is not closed`);
    if (!this.root) this.fail('no root element');
    return { source: buf, root: this.root!, prolog: this.prolog, epilog: this.epilog };
  }

  // ── markup dispatch ──

  private markup(): void {
    const next = this.buf[this.pos + 1];
    if (next === SLASH) return this.endTag();
    if (next === QMARK) return this.processingInstruction();
    if (next === BANG) {
      if (this.startsWith('<!--')) return this.comment();
      if (this.startsWith('<![CDATA[')) return this.cdata();
      if (this.startsWith('<!DOCTYPE') || this.startsWith('<!ENTITY') || this.startsWith('<!ELEMENT') ||
          this.startsWith('<!ATTLIST') || this.startsWith('<!NOTATION')) {
        throw new GatewayError('GW_ERR_XML_DOCTYPE', `at ${this.where(this.pos)}`);
      }
      this.fail('unexpected "<!"');
    }
    this.startTag();
  }

  private startTag(): void {
    const buf = this.buf;
    const tagStart = this.pos;
    if (this.root && this.stack.length === 0) this.fail('content after the root element');
    this.pos++;
    const qname = this.name();
    const rawAttrs: Array<{ qname: string; value: string }> = [];
    let selfClosing = false;
    for (;;) {
      const hadSpace = this.skipSpace();
      const b = buf[this.pos];
      if (b === GT) { this.pos++; break; }
      if (b === SLASH) {
        if (buf[this.pos + 1] !== GT) this.fail('expected "/>"');
        this.pos += 2;
        selfClosing = true;
        break;
      }
      if (this.pos >= buf.length) this.fail(`unterminated start tag <${qname}>`);
      if (!hadSpace) this.fail(`expected whitespace before an attribute in <${qname}>`);
      const attrName = this.name();
      this.skipSpace();
      if (buf[this.pos] !== EQ) this.fail(`expected "=" after attribute ${attrName}`);
      this.pos++;
      this.skipSpace();
      rawAttrs.push({ qname: attrName, value: this.attributeValue() });
      if (rawAttrs.length > this.lim.maxAttributes) {
        throw new GatewayError('GW_ERR_XML_TOO_MANY_ATTRIBUTES', `more than ${this.lim.maxAttributes} on <${qname}>`);
      }
    }

    const parentFrame = this.stack[this.stack.length - 1];
    const parentScope = parentFrame ? parentFrame.scope : new Map<string, string>();
    const declarations: NamespaceDeclaration[] = [];
    const plain: Array<{ qname: string; value: string }> = [];
    const seen = new Set<string>();
    for (const a of rawAttrs) {
      if (seen.has(a.qname)) this.fail(`duplicate attribute ${a.qname} on <${qname}>`);
      seen.add(a.qname);
      if (a.qname === 'xmlns') {
        if (a.value === XML_NS || a.value === 'http://www.w3.org/2000/xmlns/') {
          throw new GatewayError('GW_ERR_XML_NAMESPACE', `reserved namespace bound as default on <${qname}>`);
        }
        declarations.push({ prefix: '', uri: a.value });
      } else if (a.qname.startsWith('xmlns:')) {
        const prefix = a.qname.slice(6);
        if (prefix === 'xmlns' || (prefix === 'xml' && a.value !== XML_NS) || (prefix !== 'xml' && a.value === XML_NS)) {
          throw new GatewayError('GW_ERR_XML_NAMESPACE', `invalid declaration of prefix "${prefix}" on <${qname}>`);
        }
        if (a.value === '') throw new GatewayError('GW_ERR_XML_NAMESPACE', `prefix "${prefix}" bound to an empty URI`);
        // The xml prefix may be declared (to its own URI) but is never a rendered namespace node.
        if (prefix !== 'xml') declarations.push({ prefix, uri: a.value });
      } else {
        plain.push(a);
      }
    }
    let scope = parentScope;
    if (declarations.length > 0) {
      scope = new Map(parentScope);
      for (const d of declarations) scope.set(d.prefix, d.uri);
    }

    const [prefix, local] = this.splitQName(qname);
    const ns = this.resolve(prefix, scope, true, qname);
    const attributes: XmlAttribute[] = [];
    const expanded = new Set<string>();
    for (const a of plain) {
      const [ap, al] = this.splitQName(a.qname);
      const ans = ap === '' ? '' : this.resolve(ap, scope, false, a.qname);
      const key = `${ans}\u0000${al}`;
      if (expanded.has(key)) this.fail(`attribute ${a.qname} appears twice on <${qname}> after namespace resolution`);
      expanded.add(key);
      attributes.push({ qname: a.qname, prefix: ap, local: al, ns: ans, value: a.value });
    }

    const parent = parentFrame ? parentFrame.el : null;
    const el: XmlElement = {
      type: 'element', qname, prefix, local, ns, attributes, namespaceDeclarations: declarations,
      children: [], parent, start: tagStart, end: this.pos,
      path: `${parent ? parent.path : ''}/${qname}`,
    };
    if (parent) parent.children.push(el);
    else this.root = el;
    if (!selfClosing) {
      if (this.stack.length + 1 > this.lim.maxDepth) {
        throw new GatewayError('GW_ERR_XML_TOO_DEEP', `deeper than ${this.lim.maxDepth} at ${el.path.slice(0, 200)}`);
      }
      this.stack.push({ el, scope });
    }
  }

  private endTag(): void {
    const start = this.pos;
    this.pos += 2;
    const qname = this.name();
    this.skipSpace();
    if (this.buf[this.pos] !== GT) this.fail(`expected ">" to close </${qname}>`);
    this.pos++;
    const frame = this.stack.pop();
    if (!frame) this.fail(`end tag </${qname}> without a start tag`, start);
    if (frame!.el.qname !== qname) this.fail(`end tag </${qname}> does not match <${frame!.el.qname}>`, start);
    frame!.el.end = this.pos;
  }

  private comment(): void {
    const end = this.buf.indexOf('-->', this.pos + 4);
    if (end === -1) this.fail('unterminated comment');
    const dashes = this.buf.indexOf('--', this.pos + 4);
    if (dashes !== end) this.fail('"--" inside a comment');
    this.pos = end + 3;
  }

  private processingInstruction(): void {
    const start = this.pos;
    this.pos += 2;
    const target = this.name();
    if (target.toLowerCase() === 'xml') this.fail('XML declaration not at the start of the document', start);
    if (target.includes(':')) throw new GatewayError('GW_ERR_XML_NAMESPACE', `colon in processing instruction target ${target}`);
    const end = this.buf.indexOf('?>', this.pos);
    if (end === -1) this.fail('unterminated processing instruction', start);
    if (end > this.pos && !isSpace(this.buf[this.pos])) this.fail('expected whitespace after the PI target', start);
    let dataStart = this.pos;
    while (dataStart < end && isSpace(this.buf[dataStart])) dataStart++;
    const data = this.normalizeNewlines(this.buf.toString('utf8', dataStart, end));
    this.pos = end + 2;
    const pi: XmlProcessingInstruction = { type: 'pi', target, data };
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.el.children.push(pi);
    else if (this.root) this.epilog.push(pi);
    else this.prolog.push(pi);
  }

  private cdata(): void {
    const parent = this.stack[this.stack.length - 1];
    if (!parent) this.fail('CDATA section outside the root element');
    const contentStart = this.pos + 9;
    const end = this.buf.indexOf(']]>', contentStart);
    if (end === -1) this.fail('unterminated CDATA section');
    const value = this.checkChars(this.normalizeNewlines(this.buf.toString('utf8', contentStart, end)), contentStart);
    const node: XmlText = { type: 'text', source: this.buf, start: contentStart, end, verbatim: false, decoded: value };
    this.pos = end + 3;
    this.appendText(parent!.el, node);
  }

  private xmlDeclaration(): void {
    const end = this.buf.indexOf('?>', this.pos);
    if (end === -1) this.fail('unterminated XML declaration');
    const decl = this.buf.toString('utf8', this.pos + 5, end);
    const version = /\bversion\s*=\s*(["'])([^"']*)\1/.exec(decl);
    if (!version || !/^1\.\d+$/.test(version[2])) this.fail('XML declaration without a valid version');
    const encoding = /\bencoding\s*=\s*(["'])([^"']*)\1/.exec(decl);
    if (encoding && !/^utf-?8$/i.test(encoding[2])) {
      throw new GatewayError('GW_ERR_XML_ENCODING', `declared encoding "${encoding[2].slice(0, 40)}"`);
    }
    this.pos = end + 2;
  }

  // ── text ──

  private text(start: number, end: number): void {
    const parent = this.stack[this.stack.length - 1];
    if (!parent) {
      for (let i = start; i < end; i++) if (!isSpace(this.buf[i])) this.fail('text outside the root element', i);
      return;
    }
    const slice = this.buf.subarray(start, end);
    if (slice.indexOf(']]>') !== -1) this.fail('"]]>" in character data', start + slice.indexOf(']]>'));
    if (slice.indexOf(AMP) === -1 && slice.indexOf(CR) === -1) {
      this.checkControlBytes(slice, start);
      this.appendText(parent.el, { type: 'text', source: this.buf, start, end, verbatim: true });
      return;
    }
    const raw = this.normalizeNewlines(slice.toString('utf8'));
    const value = this.checkChars(this.expandReferences(raw, start), start);
    this.appendText(parent.el, { type: 'text', source: this.buf, start, end, verbatim: false, decoded: value });
  }

  private appendText(parent: XmlElement, node: XmlText): void {
    parent.children.push(node);
  }

  /**
   * Control bytes other than TAB, LF, CR are not XML characters (verbatim text only; decoded text is checked by
   * code point). Large base64 bodies dominate, so whole 32-bit words are tested at once (a word with no byte
   * below 0x20 needs no further look) and only suspicious words are checked byte by byte.
   */
  private checkControlBytes(slice: Buffer, offset: number): void {
    const nonChar = Math.max(slice.indexOf(NON_CHARACTER_FFFE), slice.indexOf(NON_CHARACTER_FFFF));
    if (nonChar !== -1) this.fail('U+FFFE/U+FFFF in text', offset + nonChar);
    const len = slice.length;
    let i = 0;
    for (; i < len && ((slice.byteOffset + i) & 3) !== 0; i++) this.checkControlByte(slice[i], offset + i);
    if (i >= len) return;
    const words = new Uint32Array(slice.buffer, slice.byteOffset + i, (len - i) >>> 2);
    for (let w = 0; w < words.length; w++) {
      const x = words[w];
      if (((x - 0x20202020) & ~x & 0x80808080) !== 0) {
        const at = i + w * 4;
        for (let k = 0; k < 4; k++) this.checkControlByte(slice[at + k], offset + at + k);
      }
    }
    for (i += words.length * 4; i < len; i++) this.checkControlByte(slice[i], offset + i);
  }

  private checkControlByte(b: number, offset: number): void {
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) this.fail('control character in text', offset);
  }

  private checkChars(value: string, offset: number): string {
    for (const ch of value) {
      if (!isXmlChar(ch.codePointAt(0)!)) this.fail('a character not allowed in XML', offset);
    }
    return value;
  }

  private normalizeNewlines(s: string): string {
    return s.indexOf('\r') === -1 ? s : s.replace(/\r\n?/g, '\n');
  }

  private expandReferences(s: string, offset: number): string {
    if (s.indexOf('&') === -1) return s;
    return s.replace(/&([^;&<]*)(;?)/g, (_m, name: string, semi: string) => {
      if (!semi) this.fail('"&" not starting a reference (use &amp;)', offset);
      return this.reference(name, offset);
    });
  }

  private reference(name: string, offset: number): string {
    if (name.startsWith('#')) {
      const cp = name[1] === 'x' ? /^#x[0-9a-fA-F]{1,6}$/.test(name) ? parseInt(name.slice(2), 16) : NaN
        : /^#[0-9]{1,7}$/.test(name) ? parseInt(name.slice(1), 10) : NaN;
      if (!Number.isFinite(cp) || !isXmlChar(cp)) this.fail(`invalid character reference &${name.slice(0, 12)};`, offset);
      return String.fromCodePoint(cp);
    }
    const value = PREDEFINED[name];
    if (value === undefined) {
      if (/^[A-Za-z_:][\w.:-]*$/.test(name)) {
        throw new GatewayError('GW_ERR_XML_UNKNOWN_ENTITY', `&${name.slice(0, 40)}; at ${this.where(offset)}`);
      }
      this.fail('malformed reference', offset);
    }
    return value;
  }

  private attributeValue(): string {
    const quote = this.buf[this.pos];
    if (quote !== QUOT && quote !== APOS) this.fail('attribute value without quotes');
    const start = this.pos + 1;
    const end = this.buf.indexOf(quote, start);
    if (end === -1) this.fail('unterminated attribute value');
    const slice = this.buf.subarray(start, end);
    if (slice.indexOf(LT) !== -1) this.fail('"<" in an attribute value', start + slice.indexOf(LT));
    this.pos = end + 1;
    let raw = this.normalizeNewlines(slice.toString('utf8'));
    // Attribute-value normalization (XML 1.0 §3.3.3): literal whitespace becomes a space before references expand.
    raw = raw.replace(/[\t\n]/g, ' ');
    return this.checkChars(this.expandReferences(raw, start), start);
  }

  // ── names and namespaces ──

  private name(): string {
    const start = this.pos;
    const buf = this.buf;
    if (!isNameStartByte(buf[this.pos] ?? 0)) this.fail('expected a name');
    this.pos++;
    while (this.pos < buf.length && isNameByte(buf[this.pos])) this.pos++;
    return buf.toString('utf8', start, this.pos);
  }

  private splitQName(qname: string): [string, string] {
    const colon = qname.indexOf(':');
    if (colon === -1) return ['', qname];
    const prefix = qname.slice(0, colon);
    const local = qname.slice(colon + 1);
    if (!prefix || !local || local.includes(':')) {
      throw new GatewayError('GW_ERR_XML_NAMESPACE', `"${qname.slice(0, 80)}" is not a valid qualified name`);
    }
    return [prefix, local];
  }

  private resolve(prefix: string, scope: Map<string, string>, isElement: boolean, qname: string): string {
    if (prefix === 'xml') return XML_NS;
    if (prefix === 'xmlns') throw new GatewayError('GW_ERR_XML_NAMESPACE', `reserved prefix in ${qname}`);
    const uri = scope.get(prefix);
    if (prefix === '') return isElement ? (uri ?? '') : '';
    if (uri === undefined || uri === '') {
      throw new GatewayError('GW_ERR_XML_NAMESPACE', `prefix "${prefix.slice(0, 40)}" of ${qname.slice(0, 80)} is not declared`);
    }
    return uri;
  }

  // ── helpers ──

  private skipSpace(): boolean {
    const start = this.pos;
    while (this.pos < this.buf.length && isSpace(this.buf[this.pos])) this.pos++;
    return this.pos > start;
  }

  private startsWith(s: string): boolean {
    for (let i = 0; i < s.length; i++) if (this.buf[this.pos + i] !== s.charCodeAt(i)) return false;
    return true;
  }

  private where(offset: number): string {
    let line = 1, lineStart = 0;
    const limit = Math.min(offset, this.buf.length);
    for (let i = this.buf.indexOf(0x0a); i !== -1 && i < limit; i = this.buf.indexOf(0x0a, i + 1)) {
      line++;
      lineStart = i + 1;
    }
    return `line ${line}, column ${limit - lineStart + 1}`;
  }

  private fail(what: string, offset = this.pos): never {
    throw new GatewayError('GW_ERR_XML_MALFORMED', `${what} at ${this.where(offset)}`);
  }
}

export type { XmlNode };
