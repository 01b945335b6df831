/**
 * The light tree our safe parser produces. It keeps what canonicalization and the SEOS parser need and nothing
 * more: comments are dropped (we only ever canonicalize without comments), text keeps its byte range in the
 * source so that a 200 MiB base64 body is never copied into a JS string unless someone asks for it.
 */
export const XML_NS = 'http://www.w3.org/XML/1998/namespace';

export interface XmlAttribute {
  readonly qname: string;
  readonly prefix: string;
  readonly local: string;
  /** Namespace URI; '' for an unprefixed attribute. */
  readonly ns: string;
  readonly value: string;
}

export interface NamespaceDeclaration {
  /** '' for the default namespace. */
  readonly prefix: string;
  /** '' only for `xmlns=""` (undeclaring the default namespace). */
  readonly uri: string;
}

export interface XmlElement {
  readonly type: 'element';
  readonly qname: string;
  readonly prefix: string;
  readonly local: string;
  readonly ns: string;
  readonly attributes: XmlAttribute[];
  readonly namespaceDeclarations: NamespaceDeclaration[];
  readonly children: XmlNode[];
  readonly parent: XmlElement | null;
  /** Byte offset of '<' of the start tag and one past '>' of the end tag in the source. */
  readonly start: number;
  end: number;
  /** Element path from the root, for error messages: /Message/Body/... */
  readonly path: string;
}

export interface XmlText {
  readonly type: 'text';
  readonly source: Buffer;
  readonly start: number;
  readonly end: number;
  /**
   * True when the source bytes are the character data verbatim (no reference, no CR, no CDATA), so the value is
   * simply their UTF-8 decoding. Otherwise `decoded` holds the value.
   */
  readonly verbatim: boolean;
  readonly decoded?: string;
}

export interface XmlProcessingInstruction {
  readonly type: 'pi';
  readonly target: string;
  readonly data: string;
}

export type XmlNode = XmlElement | XmlText | XmlProcessingInstruction;

export interface XmlDocument {
  readonly source: Buffer;
  readonly root: XmlElement;
  /** Processing instructions before and after the root (comments are dropped). */
  readonly prolog: XmlProcessingInstruction[];
  readonly epilog: XmlProcessingInstruction[];
}

export function textValue(node: XmlText): string {
  return node.verbatim ? node.source.toString('utf8', node.start, node.end) : (node.decoded ?? '');
}

/** The concatenated character data of an element's direct text children. */
export function elementText(el: XmlElement): string {
  let out = '';
  for (const child of el.children) if (child.type === 'text') out += textValue(child);
  return out;
}

export function childElements(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of el.children) if (child.type === 'element') out.push(child);
  return out;
}

/** Every element in document order, the given one first. */
export function* descendantsAndSelf(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const child of el.children) if (child.type === 'element') yield* descendantsAndSelf(child);
}

/** The namespace bindings in scope at `el` (nearest declaration wins), the implicit xml prefix excluded. */
export function namespacesInScope(el: XmlElement): Map<string, string> {
  const chain: XmlElement[] = [];
  for (let cur: XmlElement | null = el; cur; cur = cur.parent) chain.push(cur);
  const scope = new Map<string, string>();
  for (let i = chain.length - 1; i >= 0; i--) {
    for (const decl of chain[i].namespaceDeclarations) scope.set(decl.prefix, decl.uri);
  }
  return scope;
}
