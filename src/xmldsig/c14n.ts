import {
  XML_NS,
  namespacesInScope,
  type XmlAttribute,
  type XmlDocument,
  type XmlElement,
  type XmlProcessingInstruction,
  type XmlText,
} from '../xml/tree.ts';

/**
 * Inclusive Canonical XML 1.0 without comments (http://www.w3.org/TR/2001/REC-xml-c14n-20010315), the only
 * canonicalization SEOS uses, over our light tree. Two entry points cover what XMLDSig needs here:
 *  - the whole document minus one element (Reference URI="" with the enveloped-signature transform);
 *  - one element's subtree as a document subset (SignedInfo), which renders the namespaces and xml:* attributes
 *    it inherits from ancestors.
 * Output goes to a sink in chunks; a text node whose source bytes are already canonical is passed as a Buffer view
 * of the input, so hashing a 200 MiB attachment copies nothing.
 */
export type C14nSink = (chunk: string | Buffer) => void;

export const C14N_10 = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';

/**
 * Text nodes whose canonical bytes live outside the tree: a skeleton document (src/xml/skeleton.ts) stands a short
 * placeholder in for each large base64 run of a message held in a file. `lookup` names the external content of a
 * node (undefined for an ordinary one); `emit` receives it in output order, after everything before it has been
 * flushed to the sink, so a caller can collect the output as a list of chunks and external pieces.
 */
export interface ExternalText<T> {
  lookup(node: XmlText): T | undefined;
  emit(external: T): void;
}

export function canonicalizeDocument<T>(doc: XmlDocument, sink: C14nSink, exclude?: XmlElement, external?: ExternalText<T>): void {
  const out = new ChunkedWriter(sink, external);
  for (const pi of doc.prolog) {
    writePi(out, pi);
    out.str('\n');
  }
  writeElement(out, doc.root, new Map(), exclude, null);
  for (const pi of doc.epilog) {
    out.str('\n');
    writePi(out, pi);
  }
  out.flush();
}

export function canonicalizeSubtree(apex: XmlElement, sink: C14nSink): void {
  const out = new ChunkedWriter(sink);
  writeElement(out, apex, new Map(), undefined, collectInheritedXmlAttributes(apex));
  out.flush();
}

/**
 * The canonical form of an element's content (its children, not the element itself) as it would appear inside
 * that element, given the namespaces in scope there. Used to write DocAddData content we did not produce.
 */
export function canonicalizeContent(el: XmlElement, sink: C14nSink): void {
  const out = new ChunkedWriter(sink);
  const scope = namespacesInScope(el);
  for (const child of el.children) {
    if (child.type === 'element') writeElement(out, child, scope, undefined, null);
    else if (child.type === 'text') writeText(out, child);
    else writePi(out, child);
  }
  out.flush();
}

export function canonicalSubtreeString(apex: XmlElement): string {
  const parts: Array<string | Buffer> = [];
  canonicalizeSubtree(apex, (c) => parts.push(c));
  return parts.map((p) => (typeof p === 'string' ? p : p.toString('utf8'))).join('');
}

/** Escaping rules of C14N 1.0 §2.3, exported for writers that emit canonical XML directly. */
export function escapeCanonicalText(s: string): string {
  if (!/[&<>\r]/.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

export function escapeCanonicalAttribute(s: string): string {
  if (!/[&<"\t\n\r]/.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')
    .replace(/\t/g, '&#x9;').replace(/\n/g, '&#xA;').replace(/\r/g, '&#xD;');
}

class ChunkedWriter {
  private pending = '';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  constructor(private readonly sink: C14nSink, readonly external?: ExternalText<any>) {}
  str(s: string): void {
    this.pending += s;
    if (this.pending.length > 65536) this.flush();
  }
  bytes(b: Buffer): void {
    this.flush();
    this.sink(b);
  }
  flush(): void {
    if (this.pending) {
      this.sink(this.pending);
      this.pending = '';
    }
  }
}

/**
 * @param parentScope the namespace bindings rendered/in scope at the nearest output ancestor
 * @param apexXmlAttrs for a document-subset apex: xml:* attributes inherited from ancestors outside the subset
 */
function writeElement(
  out: ChunkedWriter,
  el: XmlElement,
  parentScope: Map<string, string>,
  exclude: XmlElement | undefined,
  apexXmlAttrs: XmlAttribute[] | null,
): void {
  if (el === exclude) return;
  let scope = parentScope;
  const rendered: Array<{ prefix: string; uri: string }> = [];
  if (apexXmlAttrs) {
    // Apex of a document subset: every namespace in scope is rendered, except an empty default.
    scope = namespacesInScope(el);
    for (const [prefix, uri] of scope) if (!(prefix === '' && uri === '')) rendered.push({ prefix, uri });
  } else if (el.namespaceDeclarations.length > 0) {
    scope = new Map(parentScope);
    for (const { prefix, uri } of el.namespaceDeclarations) {
      const inherited = parentScope.get(prefix) ?? '';
      if (inherited !== uri) rendered.push({ prefix, uri });
      scope.set(prefix, uri);
    }
  }
  let tag = `<${el.qname}`;
  if (rendered.length > 1) rendered.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  for (const { prefix, uri } of rendered) {
    tag += prefix === '' ? ` xmlns="${escapeCanonicalAttribute(uri)}"` : ` xmlns:${prefix}="${escapeCanonicalAttribute(uri)}"`;
  }
  let attrs: readonly XmlAttribute[] = el.attributes;
  if (apexXmlAttrs && apexXmlAttrs.length > 0) {
    const own = new Set(el.attributes.filter((a) => a.ns === XML_NS).map((a) => a.local));
    attrs = [...el.attributes, ...apexXmlAttrs.filter((a) => !own.has(a.local))];
  }
  if (attrs.length > 1) attrs = [...attrs].sort(compareAttributes);
  for (const a of attrs) tag += ` ${a.qname}="${escapeCanonicalAttribute(a.value)}"`;
  out.str(tag + '>');
  for (const child of el.children) {
    if (child.type === 'element') writeElement(out, child, scope, exclude, null);
    else if (child.type === 'text') writeText(out, child);
    else writePi(out, child);
  }
  out.str(`</${el.qname}>`);
}

function compareAttributes(a: XmlAttribute, b: XmlAttribute): number {
  if (a.ns !== b.ns) return a.ns < b.ns ? -1 : 1;
  return a.local < b.local ? -1 : a.local > b.local ? 1 : 0;
}

function writeText(out: ChunkedWriter, node: XmlText): void {
  const external = out.external?.lookup(node);
  if (external !== undefined) {
    out.flush();
    out.external!.emit(external);
    return;
  }
  if (node.verbatim) {
    const slice = node.source.subarray(node.start, node.end);
    // Verbatim text has no '&' and no CR; only '>' may still need escaping.
    if (slice.indexOf(0x3e) === -1) {
      if (slice.length > 4096) out.bytes(slice);
      else out.str(slice.toString('utf8'));
      return;
    }
    out.str(escapeCanonicalText(slice.toString('utf8')));
    return;
  }
  out.str(escapeCanonicalText(node.decoded ?? ''));
}

function writePi(out: ChunkedWriter, pi: XmlProcessingInstruction): void {
  out.str(pi.data ? `<?${pi.target} ${pi.data}?>` : `<?${pi.target}?>`);
}

function collectInheritedXmlAttributes(apex: XmlElement): XmlAttribute[] {
  const found = new Map<string, XmlAttribute>();
  for (let cur = apex.parent; cur; cur = cur.parent) {
    for (const a of cur.attributes) if (a.ns === XML_NS && !found.has(a.local)) found.set(a.local, a);
  }
  return [...found.values()];
}
